"""Scheduling meetings and series through HTTP: create, list, read, change by scope, cancel."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Any

from tests.meetings.conftest import (
    HK,
    ONLINE,
    body,
    move_to_past,
    occurrences,
    schedule,
    series_of,
    start_in,
)
from tests.working_groups.conftest import assert_problem, error_fields, event_data


def _parse(value: str) -> datetime:
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


async def test_a_single_meeting_is_created_read_and_listed(client, room, database):
    start = start_in(20, "15:30")
    meeting = await schedule(
        client, room, start_local=start, location=ONLINE, description="Kick-off"
    )
    assert meeting["series_id"] is None
    assert meeting["start_local"] == start
    assert meeting["timezone"] == HK
    starts_at = _parse(meeting["starts_at"])
    assert starts_at == datetime.fromisoformat(start + "+08:00")
    assert _parse(meeting["ends_at"]) - starts_at == timedelta(minutes=120)
    assert meeting["status"] == "scheduled"
    assert meeting["sequence"] == 0
    assert meeting["recurrence_id"] is None
    assert meeting["is_exception"] is False
    assert meeting["reminders_minutes_before"] == [10080, 1440]
    assert meeting["my_rsvp"] is None
    assert meeting["location"] == {**ONLINE, "venue": None, "address": None}
    read = await client.get(f"/v1/meetings/{meeting['id']}", headers=room.member.headers)
    assert read.status_code == 200
    assert read.headers["etag"]
    assert read.json() == meeting
    listed = await occurrences(client, room, room.observer)
    assert [m["id"] for m in listed] == [meeting["id"]]
    for actor in (room.facilitator, room.member, room.observer):
        [event] = await event_data(database, actor, "meeting.scheduled")
        assert event == {
            "meeting_id": meeting["id"],
            "series_id": None,
            "working_group_id": room.id,
            "title": "Quarterly meeting",
            "starts_at": meeting["starts_at"],
            "occurrences": 1,
        }
    assert await event_data(database, room.outsider, "meeting.scheduled") == []


async def test_a_quarterly_series_in_hong_kong(client, room):
    first = await schedule(
        client, room, rrule="FREQ=MONTHLY;INTERVAL=3;COUNT=4", start_local=start_in(10)
    )
    assert first["series_id"]
    assert first["recurrence_id"] == first["starts_at"]
    listed = await series_of(client, room, first["series_id"])
    assert len(listed) == 4
    assert listed[0] == first
    assert {m["start_local"][11:] for m in listed} == {"10:00"}
    assert len({m["id"] for m in listed}) == 4
    series = await client.get(
        f"/v1/meeting-series/{first['series_id']}", headers=room.member.headers
    )
    assert series.status_code == 200
    assert series.headers["etag"]
    assert series.json() | {"created_at": None, "updated_at": None} == {
        "id": first["series_id"],
        "working_group_id": room.id,
        "title": "Quarterly meeting",
        "rrule": "FREQ=MONTHLY;INTERVAL=3;COUNT=4",
        "timezone": HK,
        "start_local": first["start_local"],
        "duration_minutes": 120,
        "occurrences": 4,
        "until": None,
        "sequence": 0,
        "created_at": None,
        "updated_at": None,
    }


async def test_the_window_and_status_filter_and_paging(client, room):
    first = await schedule(client, room, rrule="FREQ=WEEKLY;COUNT=5", start_local=start_in(3))
    listed = await series_of(client, room, first["series_id"])
    second = listed[1]["starts_at"]
    fourth = listed[3]["starts_at"]
    window = await client.get(
        f"{room.path}/meetings",
        params={"from": second, "to": fourth},
        headers=room.member.headers,
    )
    assert [m["id"] for m in window.json()["items"]] == [listed[1]["id"], listed[2]["id"]]
    # The default window starts now and lasts a year.
    default = await client.get(f"{room.path}/meetings", headers=room.member.headers)
    assert [m["id"] for m in default.json()["items"]] == [m["id"] for m in listed]
    page = await client.get(
        f"{room.path}/meetings", params={"limit": 2}, headers=room.member.headers
    )
    assert len(page.json()["items"]) == 2
    assert 'rel="next"' in page.headers["link"]
    rest = await client.get(
        f"{room.path}/meetings",
        params={"limit": 200, "cursor": page.json()["next_cursor"]},
        headers=room.member.headers,
    )
    assert [m["id"] for m in page.json()["items"] + rest.json()["items"]] == [
        m["id"] for m in listed
    ]
    await client.post(
        f"/v1/meetings/{listed[2]['id']}/cancel", json={}, headers=room.facilitator.headers
    )
    scheduled = await occurrences(client, room, status="scheduled")
    cancelled = await occurrences(client, room, status="cancelled")
    assert [m["id"] for m in cancelled] == [listed[2]["id"]]
    assert listed[2]["id"] not in {m["id"] for m in scheduled}
    assert len(await occurrences(client, room)) == 5
    bad = await client.get(
        f"{room.path}/meetings", params={"from": fourth, "to": second}, headers=room.member.headers
    )
    assert "to" in error_fields(assert_problem(bad, 422))
    naive = await client.get(
        f"{room.path}/meetings", params={"from": "2027-01-01T00:00:00"}, headers=room.member.headers
    )
    assert "from" in error_fields(assert_problem(naive, 422))


async def test_bad_values_are_422_naming_the_field(client, room):
    next_year = datetime.now(UTC).year + 1
    # The second Sunday of March: New York's clocks jump from 02:00 to 03:00.
    march = date(next_year, 3, 1)
    gap_day = march + timedelta(days=(6 - march.weekday()) % 7 + 7)
    cases: list[tuple[dict[str, Any], str]] = [
        ({"timezone": "Mars/Olympus"}, "timezone"),
        ({"rrule": "FREQ=HOURLY;COUNT=3"}, "rrule"),
        ({"rrule": "FREQ=WEEKLY;BYDAY=XX"}, "rrule"),
        ({"rrule": "FREQ=DAILY;COUNT=501"}, "rrule"),
        ({"rrule": "FREQ=DAILY"}, "rrule"),
        ({"rrule": "FREQ=WEEKLY;UNTIL=20991231"}, "rrule"),
        ({"timezone": "America/New_York", "start_local": f"{gap_day}T02:30"}, "start_local"),
        ({"start_local": start_in(-2)}, "start_local"),
        ({"start_local": "2027-02-30T10:00"}, "start_local"),
        ({"start_local": "next tuesday"}, "start_local"),
        ({"duration_minutes": 4}, "duration_minutes"),
        ({"duration_minutes": 1441}, "duration_minutes"),
        ({"reminders_minutes_before": [4]}, "reminders_minutes_before"),
        ({"reminders_minutes_before": [43201]}, "reminders_minutes_before"),
        ({"reminders_minutes_before": [60, 60]}, "reminders_minutes_before"),
        ({"reminders_minutes_before": [60, 120, 180, 240, 300, 360]}, "reminders_minutes_before"),
        ({"location": {"mode": "online"}}, "location.online_url"),
        ({"location": {"mode": "in_person"}}, "location.venue"),
        ({"title": "   "}, "title"),
    ]
    for fields, field in cases:
        response = await client.post(
            f"{room.path}/meetings", json=body(**fields), headers=room.facilitator.headers
        )
        problem = assert_problem(response, 422)
        assert any(f.startswith(field) for f in error_fields(problem)), (fields, problem)
    # A rule on another weekday than the start's cannot start on it.
    start = start_in(40)
    weekday = ["MO", "TU", "WE", "TH", "FR", "SA", "SU"][date.fromisoformat(start[:10]).weekday()]
    other = "MO" if weekday != "MO" else "TU"
    response = await client.post(
        f"{room.path}/meetings",
        json=body(start_local=start, rrule=f"FREQ=WEEKLY;BYDAY={other};COUNT=3"),
        headers=room.facilitator.headers,
    )
    assert "start_local" in error_fields(assert_problem(response, 422))
    unknown = await client.post(
        f"{room.path}/meetings",
        json=body(tenant_id=str(room.member.id)),
        headers=room.facilitator.headers,
    )
    assert "tenant_id" in error_fields(assert_problem(unknown, 400))
    wrong_type = await client.post(
        f"{room.path}/meetings", json=body(duration_minutes="60"), headers=room.facilitator.headers
    )
    assert_problem(wrong_type, 400)
    assert await occurrences(client, room) == []


async def test_this_changes_one_occurrence_into_an_exception(client, room, database):
    first = await schedule(client, room, rrule="FREQ=WEEKLY;COUNT=3", start_local=start_in(7))
    second = (await series_of(client, room, first["series_id"]))[1]
    read = await client.get(f"/v1/meetings/{second['id']}", headers=room.facilitator.headers)
    stale = await client.patch(
        f"/v1/meetings/{second['id']}",
        json={"title": "Stale"},
        headers={**room.facilitator.headers, "If-Match": '"nope"'},
    )
    assert_problem(stale, 412)
    new_start = second["start_local"][:11] + "14:00"
    response = await client.patch(
        f"/v1/meetings/{second['id']}",
        json={"title": "Moved", "start_local": new_start, "duration_minutes": 90},
        headers={**room.facilitator.headers, "If-Match": read.headers["etag"]},
    )
    assert response.status_code == 200, response.text
    changed = response.json()
    assert changed["id"] == second["id"]
    assert changed["title"] == "Moved"
    assert changed["start_local"] == new_start
    assert changed["is_exception"] is True
    assert changed["sequence"] == 1
    assert changed["recurrence_id"] == second["recurrence_id"]
    assert _parse(changed["ends_at"]) - _parse(changed["starts_at"]) == timedelta(minutes=90)
    others = [
        m for m in await series_of(client, room, first["series_id"]) if m["id"] != second["id"]
    ]
    assert {(m["title"], m["sequence"], m["is_exception"]) for m in others} == {
        ("Quarterly meeting", 0, False)
    }
    rrule = await client.patch(
        f"/v1/meetings/{second['id']}",
        json={"rrule": "FREQ=DAILY;COUNT=2"},
        headers=room.facilitator.headers,
    )
    assert "rrule" in error_fields(assert_problem(rrule, 422))
    [event] = await event_data(database, room.member, "meeting.updated")
    assert event["meeting_id"] == second["id"]
    assert event["title"] == "Moved"
    assert event["starts_at"] == changed["starts_at"]


async def test_series_changes_every_occurrence_but_exceptions(client, room):
    first = await schedule(client, room, rrule="FREQ=WEEKLY;COUNT=4", start_local=start_in(7))
    listed = await series_of(client, room, first["series_id"])
    exception = (
        await client.patch(
            f"/v1/meetings/{listed[2]['id']}",
            json={"title": "Own title"},
            headers=room.facilitator.headers,
        )
    ).json()
    later = listed[0]["start_local"][:11] + "11:30"
    response = await client.patch(
        f"/v1/meetings/{listed[1]['id']}",
        json={"scope": "series", "title": "Renamed", "start_local": later},
        headers=room.facilitator.headers,
    )
    assert response.status_code == 200, response.text
    assert response.json()["id"] == listed[1]["id"]
    after = await series_of(client, room, first["series_id"])
    assert [m["id"] for m in after] == [m["id"] for m in listed]
    assert [m["title"] for m in after] == ["Renamed", "Renamed", "Own title", "Renamed"]
    assert [m["start_local"][11:] for m in after] == ["11:30", "11:30", "10:00", "11:30"]
    assert [m["sequence"] for m in after] == [1, 1, exception["sequence"] + 1, 1]
    # The exception follows the rule's new RECURRENCE-ID for its position.
    assert after[2]["recurrence_id"] != listed[2]["recurrence_id"]
    assert after[2]["recurrence_id"][11:16] == "03:30"
    series = (
        await client.get(f"/v1/meeting-series/{first['series_id']}", headers=room.member.headers)
    ).json()
    assert series["sequence"] == 1
    assert series["start_local"] == later
    # A new rule: fewer occurrences drop the last ones, more add new ones.
    response = await client.patch(
        f"/v1/meetings/{listed[0]['id']}",
        json={"scope": "series", "rrule": "FREQ=WEEKLY;COUNT=6"},
        headers=room.facilitator.headers,
    )
    assert response.status_code == 200, response.text
    grown = await series_of(client, room, first["series_id"])
    assert len(grown) == 6
    assert [m["id"] for m in grown[:4]] == [m["id"] for m in listed]


async def test_this_and_following_splits_the_series_keeping_ids_and_rsvps(client, room):
    first = await schedule(client, room, rrule="FREQ=WEEKLY;COUNT=6", start_local=start_in(7))
    listed = await series_of(client, room, first["series_id"])
    rsvp = await client.put(
        f"/v1/meetings/{listed[3]['id']}/rsvp",
        json={"response": "accepted"},
        headers=room.member.headers,
    )
    assert rsvp.status_code == 200
    new_time = listed[2]["start_local"][:11] + "16:00"
    response = await client.patch(
        f"/v1/meetings/{listed[2]['id']}",
        json={"scope": "this_and_following", "start_local": new_time, "title": "Afternoons"},
        headers=room.facilitator.headers,
    )
    assert response.status_code == 200, response.text
    changed = response.json()
    new_series = changed["series_id"]
    assert new_series != first["series_id"]
    assert changed["id"] == listed[2]["id"]
    old = (
        await client.get(f"/v1/meeting-series/{first['series_id']}", headers=room.member.headers)
    ).json()
    new = (await client.get(f"/v1/meeting-series/{new_series}", headers=room.member.headers)).json()
    assert old["rrule"] == "FREQ=WEEKLY;COUNT=2"
    assert old["occurrences"] == 2
    assert old["sequence"] == 1
    assert new["rrule"] == "FREQ=WEEKLY;COUNT=4"
    assert new["occurrences"] == 4
    assert new["start_local"] == new_time
    assert new["sequence"] == 1
    moved = await series_of(client, room, new_series)
    assert [m["id"] for m in moved] == [m["id"] for m in listed[2:]]
    assert {m["start_local"][11:] for m in moved} == {"16:00"}
    assert {m["title"] for m in moved} == {"Afternoons"}
    assert all(m["sequence"] == 1 for m in moved)
    kept = await series_of(client, room, first["series_id"])
    assert [(m["id"], m["title"], m["sequence"]) for m in kept] == [
        (m["id"], "Quarterly meeting", 1) for m in listed[:2]
    ]
    read = await client.get(f"/v1/meetings/{listed[3]['id']}", headers=room.member.headers)
    assert read.json()["my_rsvp"] == "accepted"


async def test_this_and_following_keeps_until(client, room):
    first = await schedule(client, room, rrule="FREQ=WEEKLY", start_local=start_in(7))
    listed = await series_of(client, room, first["series_id"])
    assert 100 <= len(listed) <= 106
    until = _parse(listed[9]["starts_at"]) + timedelta(hours=1)
    await client.patch(
        f"/v1/meetings/{first['id']}",
        json={"scope": "series", "rrule": f"FREQ=WEEKLY;UNTIL={until:%Y%m%dT%H%M%SZ}"},
        headers=room.facilitator.headers,
    )
    assert len(await series_of(client, room, first["series_id"])) == 10
    response = await client.patch(
        f"/v1/meetings/{listed[4]['id']}",
        json={"scope": "this_and_following", "duration_minutes": 60},
        headers=room.facilitator.headers,
    )
    new = (
        await client.get(
            f"/v1/meeting-series/{response.json()['series_id']}", headers=room.member.headers
        )
    ).json()
    old = (
        await client.get(f"/v1/meeting-series/{first['series_id']}", headers=room.member.headers)
    ).json()
    assert _parse(new["until"]) == until
    assert new["occurrences"] == 6
    assert old["occurrences"] == 4
    assert _parse(old["until"]) < _parse(listed[4]["starts_at"])


async def test_cancel_one_or_the_rest(client, room, database):
    first = await schedule(client, room, rrule="FREQ=WEEKLY;COUNT=4", start_local=start_in(7))
    listed = await series_of(client, room, first["series_id"])
    one = await client.post(
        f"/v1/meetings/{listed[1]['id']}/cancel",
        json={"reason": "Typhoon"},
        headers=room.facilitator.headers,
    )
    assert one.status_code == 200, one.text
    assert one.json()["status"] == "cancelled"
    assert one.json()["cancel_reason"] == "Typhoon"
    assert one.json()["sequence"] == 1
    assert one.json()["is_exception"] is True
    [event] = await event_data(database, room.observer, "meeting.cancelled")
    assert event["meeting_id"] == listed[1]["id"]
    rest = await client.post(
        f"/v1/meetings/{listed[2]['id']}/cancel",
        json={"scope": "this_and_following"},
        headers=room.facilitator.headers,
    )
    assert rest.status_code == 200
    after = await series_of(client, room, first["series_id"])
    assert [m["status"] for m in after] == ["scheduled", "cancelled", "cancelled", "cancelled"]
    assert [m["sequence"] for m in after] == [1, 2, 1, 1]
    changed = await client.patch(
        f"/v1/meetings/{listed[1]['id']}", json={"title": "Back"}, headers=room.facilitator.headers
    )
    assert_problem(changed, 409)


async def test_an_ended_occurrence_cannot_change_or_cancel_alone(client, room, database):
    first = await schedule(client, room, rrule="FREQ=WEEKLY;COUNT=3", start_local=start_in(7))
    await move_to_past(database, first["id"])
    for method, path, payload in (
        ("PATCH", f"/v1/meetings/{first['id']}", {"title": "Late"}),
        ("POST", f"/v1/meetings/{first['id']}/cancel", {}),
    ):
        response = await client.request(
            method, path, json=payload, headers=room.facilitator.headers
        )
        assert assert_problem(response, 409)["type"] == "/problems/meeting-in-the-past"
    rsvp = await client.put(
        f"/v1/meetings/{first['id']}/rsvp",
        json={"response": "accepted"},
        headers=room.member.headers,
    )
    assert rsvp.status_code == 200
    # A single meeting cannot be moved into the past either.
    single = await schedule(client, room, start_local=start_in(5))
    back = await client.patch(
        f"/v1/meetings/{single['id']}",
        json={"start_local": start_in(-3)},
        headers=room.facilitator.headers,
    )
    assert "start_local" in error_fields(assert_problem(back, 422))


async def test_stockholm_series_keeps_its_wall_time_across_dst(client, room):
    first = await schedule(
        client,
        room,
        timezone="Europe/Stockholm",
        start_local=start_in(3, "09:00", "Europe/Stockholm"),
        rrule="FREQ=WEEKLY;COUNT=40",
        location=ONLINE,
    )
    listed = await series_of(client, room, first["series_id"])
    assert {m["start_local"][11:] for m in listed} == {"09:00"}
    # Forty weeks cross at least one change: UTC hours 07 (summer) and 08 (winter) both occur.
    assert {m["starts_at"][11:13] for m in listed} == {"07", "08"}


async def test_series_changes_and_cuts_are_announced_to_every_member(client, room, database):
    first = await schedule(client, room, rrule="FREQ=WEEKLY;COUNT=4", start_local=start_in(7))
    listed = await series_of(client, room, first["series_id"])
    await client.patch(
        f"/v1/meetings/{listed[1]['id']}",
        json={"scope": "series", "title": "Renamed"},
        headers=room.facilitator.headers,
    )
    cut = await client.patch(
        f"/v1/meetings/{listed[2]['id']}",
        json={"scope": "this_and_following", "duration_minutes": 60},
        headers=room.facilitator.headers,
    )
    await client.post(
        f"/v1/meetings/{listed[0]['id']}/cancel",
        json={"scope": "series", "reason": "Moved online"},
        headers=room.facilitator.headers,
    )
    for actor in (room.facilitator, room.member, room.observer):
        updated = await event_data(database, actor, "meeting.updated")
        assert [(e["meeting_id"], e["scope"], e["series_id"]) for e in updated] == [
            (listed[1]["id"], "series", first["series_id"]),
            (listed[2]["id"], "this_and_following", cut.json()["series_id"]),
        ]
        [cancelled] = await event_data(database, actor, "meeting.cancelled")
        assert cancelled["scope"] == "series"
        assert cancelled["reason"] == "Moved online"
    # Cancelling the first series leaves the split-off one as it was.
    statuses = {m["id"]: m["status"] for m in await occurrences(client, room)}
    assert [statuses[m["id"]] for m in listed] == [
        "cancelled",
        "cancelled",
        "scheduled",
        "scheduled",
    ]


async def test_create_honours_idempotency_keys(client, room):
    headers = {**room.facilitator.headers, "Idempotency-Key": "meeting-1"}
    first = await client.post(f"{room.path}/meetings", json=body(), headers=headers)
    again = await client.post(f"{room.path}/meetings", json=body(), headers=headers)
    assert first.status_code == again.status_code == 201
    assert again.headers["idempotent-replayed"] == "true"
    assert again.json() == first.json()
    assert len(await occurrences(client, room)) == 1
    other = await client.post(f"{room.path}/meetings", json=body(title="Other"), headers=headers)
    assert_problem(other, 422)


async def test_changes_are_checked_like_a_new_meeting(client, room):
    next_year = datetime.now(UTC).year + 1
    march = date(next_year, 3, 1)
    gap_day = march + timedelta(days=(6 - march.weekday()) % 7 + 7)
    single = await schedule(client, room, timezone="America/New_York", start_local=start_in(5))
    url = f"/v1/meetings/{single['id']}"
    for change, field in (
        ({"start_local": f"{gap_day}T02:30"}, "start_local"),
        ({"timezone": "Nowhere/Else"}, "timezone"),
        ({"reminders_minutes_before": [30, 30]}, "reminders_minutes_before"),
        ({"scope": "series", "rrule": "FREQ=WEEKLY;COUNT=2"}, "rrule"),
        ({"location": {"mode": "online"}}, "location.online_url"),
    ):
        response = await client.patch(url, json=change, headers=room.facilitator.headers)
        assert field in error_fields(assert_problem(response, 422)), change
    assert_problem(
        await client.patch(url, json={"colour": "red"}, headers=room.facilitator.headers), 400
    )
    assert_problem(
        await client.patch(url, json={"scope": "all"}, headers=room.facilitator.headers), 422
    )
    unchanged = await client.get(url, headers=room.facilitator.headers)
    assert unchanged.json() == single
