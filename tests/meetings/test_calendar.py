"""A group's calendar.ics: expanded by a standard library it is exactly the API's list, with
series as RRULEs, moved and cancelled occurrences as overrides, split series, DST zones; ETags."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Any

from tests.meetings.conftest import ONLINE, local_day, schedule, start_in
from tests.meetings.test_calendar_text import (
    events_by_uid,
    expand,
    fetch_calendar,
    listed,
    text_of,
)
from tests.working_groups.conftest import assert_problem

STOCKHOLM = "Europe/Stockholm"
NEW_YORK = "America/New_York"
# Rules kept two years ahead are compared inside that horizon.
WINDOW = timedelta(days=700)


def _second_thursday_after(days_ahead: int) -> date:
    earliest = local_day(days_ahead, NEW_YORK)
    month = earliest.replace(day=1)
    while True:
        second = month + timedelta(days=(3 - month.weekday()) % 7 + 7)
        if second >= earliest:
            return second
        month = (month.replace(day=28) + timedelta(days=4)).replace(day=1)


async def _api_list(client, room, start: datetime, end: datetime) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = []
    params: dict[str, Any] = {
        "from": start.isoformat().replace("+00:00", "Z"),
        "to": end.isoformat().replace("+00:00", "Z"),
        "limit": 200,
    }
    while True:
        response = await client.get(
            f"{room.path}/meetings", params=params, headers=room.member.headers
        )
        assert response.status_code == 200, response.text
        items.extend(response.json()["items"])
        if response.json()["next_cursor"] is None:
            return items
        params["cursor"] = response.json()["next_cursor"]


async def _patch(client, room, meeting_id: str, **fields: Any) -> dict[str, Any]:
    response = await client.patch(
        f"/v1/meetings/{meeting_id}", json=fields, headers=room.facilitator.headers
    )
    assert response.status_code == 200, response.text
    changed: dict[str, Any] = response.json()
    return changed


async def _occurrences_of(client, room, series_id: str) -> list[dict[str, Any]]:
    now = datetime.now(UTC)
    return [
        m
        for m in await _api_list(client, room, now - timedelta(days=1), now + WINDOW)
        if m["series_id"] == series_id
    ]


async def _busy_group(client, room) -> dict[str, Any]:
    """Series in three zones (two with DST), a moved, a cancelled and a split occurrence,
    an open-ended rule and a single meeting."""
    stockholm = await schedule(
        client,
        room,
        title="Stockholm weekly",
        timezone=STOCKHOLM,
        start_local=start_in(3, "09:00", STOCKHOLM),
        rrule="FREQ=WEEKLY;COUNT=40",
        location=ONLINE,
    )
    thursday = _second_thursday_after(5)
    new_york = await schedule(
        client,
        room,
        title="New York second Thursdays",
        timezone=NEW_YORK,
        start_local=f"{thursday.isoformat()}T08:30",
        rrule="FREQ=MONTHLY;BYDAY=2TH;COUNT=14",
        description="Agenda: remediation progress; summer programme. " * 4,
    )
    hong_kong = await schedule(
        client,
        room,
        title="Hong Kong quarterly 香港季度會議",
        start_local=start_in(12, "10:00"),
        rrule="FREQ=MONTHLY;INTERVAL=3",
    )
    single = await schedule(client, room, title="Kick-off", start_local=start_in(8, "15:30"))
    weekly = await _occurrences_of(client, room, stockholm["series_id"])
    # Move one occurrence an hour later, cancel another, split the series at a third.
    await _patch(client, room, weekly[2]["id"], start_local=weekly[2]["start_local"][:11] + "10:00")
    cancelled = await client.post(
        f"/v1/meetings/{weekly[4]['id']}/cancel",
        json={"reason": "Public holiday"},
        headers=room.facilitator.headers,
    )
    assert cancelled.status_code == 200, cancelled.text
    await _patch(
        client,
        room,
        weekly[20]["id"],
        scope="this_and_following",
        start_local=weekly[20]["start_local"][:11] + "13:00",
        title="Stockholm weekly (afternoons)",
    )
    monthly = await _occurrences_of(client, room, new_york["series_id"])
    await _patch(client, room, monthly[3]["id"], title="New York special session")
    return {"stockholm": stockholm, "new_york": new_york, "hong_kong": hong_kong, "single": single}


async def test_the_calendar_expands_to_exactly_the_listed_occurrences(client, room):
    made = await _busy_group(client, room)
    response = await fetch_calendar(client, f"{room.path}/calendar.ics", room.member.headers)
    assert response.status_code == 200, response.text
    now = datetime.now(UTC)
    start, end = now - timedelta(days=1), now + WINDOW
    api = await _api_list(client, room, start, end)
    assert len(api) == 40 + 14 + 8 + 1
    assert {m["status"] for m in api} == {"scheduled", "cancelled"}
    assert expand(response.content, start, end) == listed(api)

    by_uid = events_by_uid(response.content)
    stockholm = by_uid[f"{made['stockholm']['series_id']}@wg-api"]
    master = next(e for e in stockholm if "RECURRENCE-ID" not in e)
    series = await client.get(
        f"/v1/meeting-series/{made['stockholm']['series_id']}", headers=room.member.headers
    )
    assert master.sequence == series.json()["sequence"] == 1
    assert text_of(master, "RRULE") == "FREQ=WEEKLY;COUNT=20"
    overrides = [e for e in stockholm if "RECURRENCE-ID" in e]
    assert sorted(str(e["STATUS"]) for e in overrides) == ["CANCELLED", "CONFIRMED"]
    assert all(e.sequence >= master.sequence for e in overrides)
    # The split made a series of its own, with its own UID.
    split = [uid for uid, events in by_uid.items() if "afternoons" in str(events[0]["SUMMARY"])]
    assert len(split) == 1
    assert split[0] != f"{made['stockholm']['series_id']}@wg-api"
    assert by_uid[f"{made['single']['id']}@wg-api"][0]["SUMMARY"] == "Kick-off"


async def test_uids_and_text_are_stable_across_fetches(client, room):
    await _busy_group(client, room)
    first = await fetch_calendar(client, f"{room.path}/calendar.ics", room.member.headers)
    second = await fetch_calendar(client, f"{room.path}/calendar.ics", room.observer.headers)
    assert first.content == second.content
    assert first.headers["etag"] == second.headers["etag"]


async def test_a_change_changes_the_etag_and_if_none_match_answers_304(client, room):
    meeting = await schedule(client, room, rrule="FREQ=MONTHLY;COUNT=3")
    url = f"{room.path}/calendar.ics"
    first = await fetch_calendar(client, url, room.member.headers)
    etag = first.headers["etag"]
    again = await fetch_calendar(client, url, {**room.member.headers, "If-None-Match": etag})
    assert again.status_code == 304
    assert again.content == b""
    assert again.headers["etag"] == etag
    listed_again = await fetch_calendar(
        client, url, {**room.member.headers, "If-None-Match": f'"other", W/{etag}'}
    )
    assert listed_again.status_code == 304
    await _patch(client, room, meeting["id"], title="Renamed")
    changed = await fetch_calendar(client, url, {**room.member.headers, "If-None-Match": etag})
    assert changed.status_code == 200
    assert changed.headers["etag"] != etag
    assert b"SUMMARY:Renamed" in changed.content


async def test_a_cancelled_single_meeting_stays_with_status_cancelled(client, room):
    meeting = await schedule(client, room)
    response = await client.post(
        f"/v1/meetings/{meeting['id']}/cancel", json={}, headers=room.facilitator.headers
    )
    assert response.status_code == 200
    calendar = await fetch_calendar(client, f"{room.path}/calendar.ics", room.member.headers)
    [event] = events_by_uid(calendar.content)[f"{meeting['id']}@wg-api"]
    assert str(event["STATUS"]) == "CANCELLED"
    assert event.sequence == 1


async def test_an_empty_group_is_an_empty_calendar(client, room):
    response = await fetch_calendar(client, f"{room.path}/calendar.ics", room.observer.headers)
    assert response.status_code == 200
    assert b"BEGIN:VEVENT" not in response.content


async def test_another_tenant_gets_404_like_a_random_group(client, room):
    await schedule(client, room)
    theirs = await client.get(f"{room.path}/calendar.ics", headers=room.outsider.headers)
    random = await client.get(
        "/v1/working-groups/00000000-0000-4000-8000-000000000000/calendar.ics",
        headers=room.outsider.headers,
    )
    assert assert_problem(theirs, 404) == assert_problem(random, 404)
    assert b"BEGIN" not in theirs.content


async def test_the_calendar_needs_meetings_read(client, room):
    token = await room.member.handle.token("findings:read")
    response = await client.get(
        f"{room.path}/calendar.ics", headers={"Authorization": f"Bearer {token}"}
    )
    assert_problem(response, 403)
    anonymous = await client.get(f"{room.path}/calendar.ics")
    assert anonymous.status_code == 401
