"""POST /v1/working-groups/{id}/meeting-slots through HTTP: quarter-hour starts ranked by how many
member tenants can come, each absent tenant with its first reason, daylight saving, holidays,
meetings, in-person hours in Hong Kong, and the usual access and input rules. Dates derive from
the clock."""

from __future__ import annotations

import random
import uuid
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import holidays
import httpx
import sqlalchemy as sa

from tests.meetings.conftest import local_day, schedule
from tests.working_groups.conftest import (
    Actor,
    Room,
    assert_problem,
    create_group,
    error_fields,
    join,
)
from wg_api.meetings import slots
from wg_api.platform.database import Database
from wg_api.working_groups.schemas import TenantRef

HK = "Asia/Hong_Kong"
STOCKHOLM = "Europe/Stockholm"
EVERY_DAY = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"]


async def profile(client: httpx.AsyncClient, actor: Actor, **fields: Any) -> None:
    response = await client.patch("/v1/tenant", json=fields, headers=actor.headers)
    assert response.status_code == 200, response.text


async def ask(
    client: httpx.AsyncClient, room: Room, fields: dict[str, Any], by: Actor | None = None
) -> Any:
    response = await client.post(
        f"{room.path}/meeting-slots",
        json={"duration_minutes": 60, **fields},
        headers=(by or room.facilitator).headers,
    )
    assert response.status_code == 200, response.text
    return response.json()


def instant(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def next_weekday(weekday: int, days_ahead: int, zone: str = "Asia/Hong_Kong") -> date:
    """The first `weekday` (0 = Monday) at least `days_ahead` days from today in `zone`."""
    day = local_day(days_ahead, zone)
    return day + timedelta(days=(weekday - day.weekday()) % 7)


def works(zone: str, start: str, end: str, begin: datetime, finish: datetime) -> bool:
    """Does [begin, finish) lie within start-end of one local day in `zone`? (the test's oracle)"""
    opening, closing = begin.astimezone(ZoneInfo(zone)), finish.astimezone(ZoneInfo(zone))
    return (
        opening.date() == (closing - timedelta(seconds=1)).date()
        and opening.time() >= time.fromisoformat(start)
        and (closing.time() <= time.fromisoformat(end) and closing.date() == opening.date())
    )


def check_shape(answer: dict[str, Any], duration: int, total: int, zone: str) -> None:
    slots = answer["slots"]
    keys = [(-s["available_tenants"], s["starts_at"]) for s in slots]
    assert keys == sorted(keys), "best first, then by time"
    assert len({s["starts_at"] for s in slots}) == len(slots)
    for slot in slots:
        begin, finish = instant(slot["starts_at"]), instant(slot["ends_at"])
        assert begin.minute % 15 == 0
        assert begin.second == 0
        assert finish - begin == timedelta(minutes=duration)
        assert slot["start_local"] == begin.astimezone(ZoneInfo(zone)).strftime("%Y-%m-%dT%H:%M")
        assert slot["total_tenants"] == total
        assert slot["available_tenants"] == total - len(slot["unavailable"]) > 0


async def test_slots_are_quarter_hours_ranked_by_who_can_come_with_reasons(client, room):
    await profile(
        client,
        room.member,
        timezone=STOCKHOLM,
        working_hours={"start": "09:00", "end": "17:00", "days": EVERY_DAY[:5]},
    )
    await profile(client, room.observer, timezone="America/New_York")
    day = next_weekday(2, 14)
    answer = await ask(client, room, {"from": str(day), "to": str(day), "count": 20})
    slots = answer["slots"]
    assert answer["timezone"] == "Asia/Hong_Kong"
    check_shape(answer, 60, 2, "Asia/Hong_Kong")
    assert len(slots) == 20
    # The oracle: every quarter hour of that Hong Kong day, who works through the whole hour.
    hk = ZoneInfo("Asia/Hong_Kong")
    starts = [
        datetime.combine(day, time(0), tzinfo=hk) + timedelta(minutes=15 * i) for i in range(96)
    ]
    both = [
        s.astimezone(UTC)
        for s in starts
        if works("Asia/Hong_Kong", "09:00", "18:00", s, s + timedelta(hours=1))
        and works(STOCKHOLM, "09:00", "17:00", s, s + timedelta(hours=1))
    ]
    assert both, "Hong Kong and Stockholm office hours overlap"
    assert [instant(s["starts_at"]) for s in slots[: len(both)]] == both
    assert all(s["available_tenants"] == 2 and s["unavailable"] == [] for s in slots[: len(both)])
    for slot in slots[len(both) :]:
        assert slot["available_tenants"] == 1
        [absent] = slot["unavailable"]
        assert absent["reason"] == "outside_working_hours"
        assert absent["holiday"] is None
        assert absent["tenant"] in (room.facilitator.ref(), room.member.ref())
    # The observer is never counted nor named, and no outsider is.
    text = str(answer)
    for stranger in (room.observer, room.outsider):
        assert str(stranger.id) not in text
        assert stranger.slug not in text


def next_dst_change(zone: str, days_ahead: int) -> date:
    tz = ZoneInfo(zone)
    day = local_day(days_ahead, zone)
    while True:
        before = datetime.combine(day, time(0), tzinfo=tz).utcoffset()
        after = datetime.combine(day + timedelta(days=1), time(0), tzinfo=tz).utcoffset()
        if before != after:
            return day
        day += timedelta(days=1)


async def test_a_window_across_a_dst_change_keeps_local_hours(client, new_actor):
    lead, other = await new_actor(kind="facilitator"), await new_actor()
    group = await create_group(client, lead, timezone=STOCKHOLM)
    await join(client, lead, group["id"], other, "member")
    hours = {"start": "09:00", "end": "10:00", "days": EVERY_DAY}
    for actor in (lead, other):
        await profile(client, actor, timezone=STOCKHOLM, working_hours=hours)
    change = next_dst_change(STOCKHOLM, 5)
    room = Room(group, lead, other, other, other)
    answer = await ask(
        client,
        room,
        {
            "from": str(change - timedelta(days=3)),
            "to": str(change + timedelta(days=3)),
            "count": 20,
        },
    )
    check_shape(answer, 60, 2, STOCKHOLM)
    slots = answer["slots"]
    days = [change + timedelta(days=d) for d in range(-3, 4)]
    assert [s["start_local"] for s in slots] == [f"{d}T09:00" for d in days]
    offsets = {instant(s["starts_at"]).hour for s in slots}
    assert len(offsets) == 2, "the UTC hour moves by one across the change"
    assert all(s["available_tenants"] == 2 for s in slots)


def next_holiday(country: str, days_ahead: int, zone: str = "Asia/Hong_Kong") -> tuple[date, str]:
    """The next weekday at least `days_ahead` days ahead that is a public holiday in `country`
    and not in Hong Kong."""
    day = local_day(days_ahead, zone)
    for _ in range(800):
        there = holidays.country_holidays(country, years=day.year, language="en_US")
        hong_kong = holidays.country_holidays("HK", years=day.year)
        if day.weekday() < 5 and day in there and day not in hong_kong:
            return day, str(there[day])
        day += timedelta(days=1)
    raise AssertionError(f"no holiday in {country}")


async def test_a_public_holiday_of_one_tenants_country_and_weekends(client, room):
    await profile(client, room.member, country="SE")
    await profile(client, room.facilitator, working_hours={**HOURS, "days": EVERY_DAY})
    day, name = next_holiday("SE", 7)
    answer = await ask(client, room, {"from": str(day), "to": str(day), "count": 20})
    check_shape(answer, 60, 2, "Asia/Hong_Kong")
    assert answer["slots"]
    for slot in answer["slots"]:
        assert slot["available_tenants"] == 1
        assert slot["unavailable"] == [
            {"tenant": room.member.ref(), "reason": "public_holiday", "holiday": name}
        ]
    saturday = next_weekday(5, 7)
    while holidays.country_holidays("SE", years=saturday.year).get(saturday):
        saturday += timedelta(days=7)
    answer = await ask(client, room, {"from": str(saturday), "to": str(saturday)})
    assert answer["slots"]
    for slot in answer["slots"]:
        assert slot["unavailable"] == [
            {"tenant": room.member.ref(), "reason": "weekend", "holiday": None}
        ]


HOURS = {"start": "09:00", "end": "18:00", "days": EVERY_DAY[:5]}


async def test_slots_over_a_meeting_of_the_group_are_not_offered(client, room):
    day = next_weekday(1, 10)
    meeting = await schedule(client, room, start_local=f"{day}T11:00", duration_minutes=90)
    begin, finish = instant(meeting["starts_at"]), instant(meeting["ends_at"])
    answer = await ask(client, room, {"from": str(day), "to": str(day), "count": 20})
    check_shape(answer, 60, 2, "Asia/Hong_Kong")
    offered = [instant(s["starts_at"]) for s in answer["slots"]]
    assert offered
    assert all(s + timedelta(hours=1) <= begin or s >= finish for s in offered), (
        "no slot overlaps the group's meeting"
    )
    assert instant(f"{day}T10:00:00+08:00") in offered
    assert instant(f"{day}T12:30:00+08:00") in offered
    assert instant(f"{day}T10:15:00+08:00") not in offered
    # A cancelled meeting frees its time again.
    cancelled = await client.post(
        f"/v1/meetings/{meeting['id']}/cancel", json={}, headers=room.facilitator.headers
    )
    assert cancelled.status_code == 200, cancelled.text
    again = await ask(client, room, {"from": str(day), "to": str(day), "count": 20})
    assert instant(f"{day}T11:00:00+08:00") in [instant(s["starts_at"]) for s in again["slots"]]


async def test_in_person_keeps_to_hong_kong_hours(client, room):
    hours = {"start": "09:00", "end": "17:00", "days": EVERY_DAY[:5]}
    for actor in (room.facilitator, room.member):
        await profile(client, actor, timezone=STOCKHOLM, working_hours=hours)
    day = next_weekday(3, 14)
    window = {"from": str(day), "to": str(day + timedelta(days=6)), "count": 20}
    anywhere = await ask(client, room, window)
    in_person = await ask(client, room, {**window, "in_person": True})
    hk = ZoneInfo("Asia/Hong_Kong")
    hk_days = holidays.country_holidays("HK", years=[day.year, day.year + 1])
    for slot in in_person["slots"]:
        begin, finish = instant(slot["starts_at"]), instant(slot["ends_at"])
        assert works("Asia/Hong_Kong", "09:00", "18:00", begin, finish)
        assert begin.astimezone(hk).weekday() < 5
        assert begin.astimezone(hk).date() not in hk_days
    assert any(
        not works(
            "Asia/Hong_Kong", "09:00", "18:00", instant(s["starts_at"]), instant(s["ends_at"])
        )
        for s in anywhere["slots"]
    ), "without in_person the best times are after Hong Kong's office hours"


async def test_nobody_available_means_no_slots(client, room):
    for actor in (room.facilitator, room.member):
        await profile(client, actor, working_hours={**HOURS, "days": ["mon"]})
    sunday = next_weekday(6, 7)
    answer = await ask(client, room, {"from": str(sunday), "to": str(sunday)})
    assert answer["slots"] == []


async def test_observers_may_ask_and_outsiders_get_a_random_ids_404(client, room):
    day = str(next_weekday(2, 7))
    window = {"duration_minutes": 60, "from": day, "to": day}
    observed = await ask(client, room, window, room.observer)
    assert observed["slots"]
    assert observed["slots"][0]["total_tenants"] == 2
    real = await client.post(
        f"{room.path}/meeting-slots", json=window, headers=room.outsider.headers
    )
    random = await client.post(
        f"/v1/working-groups/{uuid.uuid4()}/meeting-slots",
        json=window,
        headers=room.outsider.headers,
    )
    assert_problem(real, 404)
    assert real.json() == random.json()
    # A POST like any other: the same Idempotency-Key replays the first answer.
    keyed = {**room.member.headers, "Idempotency-Key": f"slots-{uuid.uuid4()}"}
    first = await client.post(f"{room.path}/meeting-slots", json=window, headers=keyed)
    again = await client.post(f"{room.path}/meeting-slots", json=window, headers=keyed)
    assert first.status_code == again.status_code == 200
    assert again.headers.get("Idempotent-Replayed") == "true"
    assert again.json() == first.json()


async def test_scope_and_bad_input(client, room):
    path = f"{room.path}/meeting-slots"
    day = next_weekday(2, 7)
    good = {"duration_minutes": 60, "from": str(day), "to": str(day)}
    groups_only = await room.facilitator.handle.token("working-groups:read working-groups:write")
    assert_problem(
        await client.post(path, json=good, headers={"Authorization": f"Bearer {groups_only}"}),
        403,
    )
    read_only = await room.member.handle.token("meetings:read")
    allowed = await client.post(path, json=good, headers={"Authorization": f"Bearer {read_only}"})
    assert allowed.status_code == 200, allowed.text
    headers = room.facilitator.headers
    unknown = await client.post(
        path, json={**good, "tenant_id": str(room.member.id)}, headers=headers
    )
    assert_problem(unknown, 400)
    for wrong in ({"count": "5"}, {"duration_minutes": 60.5}, {"in_person": "yes"}):
        assert_problem(await client.post(path, json={**good, **wrong}, headers=headers), 400)
    yesterday = local_day(-1)
    cases: list[tuple[dict[str, Any], str]] = [
        ({"duration_minutes": 14}, "duration_minutes"),
        ({"duration_minutes": 481}, "duration_minutes"),
        ({"count": 0}, "count"),
        ({"count": 21}, "count"),
        ({"to": str(day - timedelta(days=1))}, "to"),
        ({"to": str(day + timedelta(days=93))}, "to"),
        ({"from": str(yesterday), "to": str(yesterday)}, "from"),
        ({"from": "next week"}, "from"),
        ({"from": "9999-12-30", "to": "9999-12-31"}, "from"),
        ({"to": f"{day.year}-02-30"}, "to"),
    ]
    for fields, field in cases:
        problem = assert_problem(
            await client.post(path, json={**good, **fields}, headers=headers), 422
        )
        assert field in error_fields(problem), (fields, problem)
    widest = await client.post(
        path, json={**good, "to": str(day + timedelta(days=92))}, headers=headers
    )
    assert widest.status_code == 200, widest.text


async def busy_times_as(database: Database, actor: Actor, group_id: str, days: int) -> list[Any]:
    """`meeting_slot_busy_times` called by `actor`'s tenant, as the app role."""
    begin = datetime.now(UTC)
    async with database.transaction(actor.id) as session:
        rows = await session.execute(
            sa.text("SELECT * FROM meeting_slot_busy_times(:g, :b, :e)"),
            {"g": group_id, "b": begin, "e": begin + timedelta(days=days)},
        )
        return list(rows)


async def test_a_meeting_of_another_group_is_a_conflict_that_names_nothing_of_it(
    client, room, database
):
    other = await create_group(client, room.outsider, name="Toys working group")
    await join(client, room.outsider, other["id"], room.member, "observer")
    await join(client, room.outsider, other["id"], room.observer, "member")
    elsewhere = Room(other, room.outsider, room.member, room.observer, room.facilitator)
    day = next_weekday(3, 10)
    secret = await schedule(
        client,
        elsewhere,
        title="Toys sourcing review",
        start_local=f"{day}T14:00",
        duration_minutes=60,
    )
    begin, finish = instant(secret["starts_at"]), instant(secret["ends_at"])
    answer = await ask(client, room, {"from": str(day), "to": str(day), "count": 20})
    check_shape(answer, 60, 2, "Asia/Hong_Kong")
    slots = answer["slots"]
    overlapping = [
        s for s in slots if instant(s["starts_at"]) < finish and instant(s["ends_at"]) > begin
    ]
    assert all(s["available_tenants"] == 2 for s in slots if s not in overlapping)
    # 09:00-18:00 has 33 one-hour starts, 7 of them overlap 14:00-15:00: 20 free ones rank first.
    assert overlapping == []
    wider = await ask(
        client, room, {"from": str(day), "to": str(day), "count": 20, "duration_minutes": 480}
    )
    conflicts = [s for s in wider["slots"] if s["unavailable"]]
    assert conflicts, "a full working day overlaps the other group's meeting"
    for slot in conflicts:
        assert slot["unavailable"] == [
            {"tenant": room.member.ref(), "reason": "meeting_conflict", "holiday": None}
        ]
    text = str(answer) + str(wider)
    for hidden in (
        secret["id"],
        secret["title"],
        other["id"],
        other["name"],
        str(room.outsider.id),
    ):
        assert hidden not in text
    # Only a member of the group learns when its tenants are busy, for at most 100 days.
    assert len(await busy_times_as(database, room.observer, room.id, 60)) == 1
    assert await busy_times_as(database, room.outsider, room.id, 60) == []
    assert await busy_times_as(database, room.facilitator, room.id, 101) == []
    # The caller still cannot read that group's meetings.
    assert_problem(
        await client.get(f"/v1/meetings/{secret['id']}", headers=room.facilitator.headers), 404
    )
    # A cancelled meeting there frees the member again.
    cancelled = await client.post(
        f"/v1/meetings/{secret['id']}/cancel", json={}, headers=room.outsider.headers
    )
    assert cancelled.status_code == 200, cancelled.text
    again = await ask(
        client, room, {"from": str(day), "to": str(day), "count": 20, "duration_minutes": 480}
    )
    assert all(s["unavailable"] == [] for s in again["slots"])


def test_the_counts_agree_with_the_reasons_slot_by_slot():
    """The set-based counts (index runs) against the per-slot rules, for random tenants around
    both 2027 DST changes in Europe and the US (a frozen clock: pure computation)."""
    rng = random.Random(13)
    zones = [HK, STOCKHOLM, "America/New_York", "Asia/Kolkata", "Australia/Sydney"]
    for first in (date(2027, 3, 10), date(2027, 3, 26), date(2027, 10, 29)):
        now = datetime.combine(first - timedelta(days=20), time(0), tzinfo=UTC)
        data = slots.SlotsIn(
            duration_minutes=rng.choice([15, 50, 60, 135]),
            from_=first,
            to=first + timedelta(days=4),
        )
        window = slots.window_for(data, slots.zone_info(STOCKHOLM), now)
        attendees = []
        for n in range(8):
            start = rng.choice(["00:00", "07:30", "09:00", "13:15"])
            end = rng.choice(["12:00", "17:45", "23:45"])
            origin = window.origin + rng.randrange(0, 4 * 86400, 300)
            busy = [(origin, origin + rng.choice([900, 3600, 7200]))] if n % 2 else []
            attendees.append(
                slots.Attendee(
                    ref=TenantRef(id=uuid.uuid4(), slug=f"t{n}", name=f"T{n}"),
                    zone=slots.zone_info(rng.choice(zones)),
                    country=rng.choice([None, "SE", "US", "HK", "AU"]),
                    start=time.fromisoformat(start),
                    end=time.fromisoformat(end),
                    days=frozenset(rng.sample(range(7), rng.randint(1, 7))),
                    busy=tuple(busy),
                )
            )
        counts = slots.available_counts(attendees, window)
        for index in range(window.size):
            begin = window.instant(index)
            expected = sum(
                slots.why_not(a, begin, begin + window.duration) is None for a in attendees
            )
            assert counts[index] == expected, (first, index)
