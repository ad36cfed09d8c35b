"""Reminders: one `meeting.reminder` per member tenant, occurrence and offset, exactly once, also
with two workers and one of them killed; offsets already past are skipped; a moved meeting is
reminded for its new time. And the job that keeps open-ended series two years ahead."""

from __future__ import annotations

import asyncio
import os
import signal
from collections import Counter
from datetime import UTC, datetime, timedelta
from typing import Any

import sqlalchemy as sa

from tests.conftest import superuser_transaction
from tests.meetings.conftest import schedule, series_of, start_in
from tests.platform.test_jobs import WorkerProcess, eventually
from tests.working_groups.conftest import event_data
from wg_api.meetings import service
from wg_api.meetings.tasks import REMINDERS_JOB
from wg_api.platform.jobs import registry


async def _planned(database, meeting_id: str) -> list[tuple[int, datetime, datetime | None]]:
    async with superuser_transaction(database) as session:
        rows = await session.execute(
            sa.text(
                "SELECT minutes_before, starts_at, sent_at FROM meeting_reminders "
                "WHERE meeting_id = :id ORDER BY minutes_before DESC, starts_at"
            ),
            {"id": meeting_id},
        )
        return [(r.minutes_before, r.starts_at, r.sent_at) for r in rows]


async def _make_due(database, meeting_ids: list[str]) -> None:
    async with superuser_transaction(database) as session:
        await session.execute(
            sa.text(
                "UPDATE meeting_reminders SET due_at = now() - interval '1 second' "
                "WHERE meeting_id = ANY(CAST(:ids AS uuid[])) AND sent_at IS NULL"
            ),
            {"ids": meeting_ids},
        )


async def _send(database) -> dict[str, int]:
    async with database.system_transaction() as session:
        return await service.send_due_reminders(session, datetime.now(UTC))


def _reminders(events: list[dict[str, Any]], meeting_id: str) -> list[int]:
    return sorted(e["minutes_before"] for e in events if e["meeting_id"] == meeting_id)


async def test_each_offset_reminds_every_member_tenant_once(client, room, database):
    meeting = await schedule(
        client, room, start_local=start_in(3), reminders_minutes_before=[10080, 1440, 60]
    )
    # Seven days before a meeting three days ahead has passed: that offset is skipped.
    assert [offset for offset, _, _ in await _planned(database, meeting["id"])] == [1440, 60]
    await _make_due(database, [meeting["id"]])
    sent = await _send(database)
    assert sent["reminders"] >= 2
    for actor in (room.facilitator, room.member, room.observer):
        events = await event_data(database, actor, "meeting.reminder")
        assert _reminders(events, meeting["id"]) == [60, 1440]
        event = next(e for e in events if e["meeting_id"] == meeting["id"])
        assert set(event) == {
            "meeting_id",
            "series_id",
            "working_group_id",
            "title",
            "starts_at",
            "minutes_before",
        }
        assert event["starts_at"] == meeting["starts_at"]
    assert await event_data(database, room.outsider, "meeting.reminder") == []
    await _make_due(database, [meeting["id"]])
    await _send(database)
    assert _reminders(
        await event_data(database, room.member, "meeting.reminder"), meeting["id"]
    ) == [60, 1440]


async def test_a_moved_meeting_is_reminded_for_its_new_time_and_a_cancelled_one_not(
    client, room, database
):
    meeting = await schedule(client, room, start_local=start_in(3), reminders_minutes_before=[60])
    cancelled = await schedule(client, room, start_local=start_in(4), reminders_minutes_before=[60])
    await _make_due(database, [meeting["id"]])
    await _send(database)
    moved = await client.patch(
        f"/v1/meetings/{meeting['id']}",
        json={"start_local": start_in(5)},
        headers=room.facilitator.headers,
    )
    assert moved.status_code == 200
    planned = await _planned(database, meeting["id"])
    assert [(offset, sent is not None) for offset, _, sent in planned] == [(60, True), (60, False)]
    assert planned[1][1].isoformat().replace("+00:00", "Z") == moved.json()["starts_at"]
    await client.post(
        f"/v1/meetings/{cancelled['id']}/cancel", json={}, headers=room.facilitator.headers
    )
    assert await _planned(database, cancelled["id"]) == []
    await _make_due(database, [meeting["id"], cancelled["id"]])
    await _send(database)
    events = await event_data(database, room.member, "meeting.reminder")
    assert sorted(e["starts_at"] for e in events if e["meeting_id"] == meeting["id"]) == sorted(
        [meeting["starts_at"], moved.json()["starts_at"]]
    )
    assert _reminders(events, cancelled["id"]) == []
    # No reminders at all with [].
    quiet = await schedule(client, room, start_local=start_in(6), reminders_minutes_before=[])
    assert await _planned(database, quiet["id"]) == []


async def test_two_workers_and_a_killed_one_send_each_reminder_once(
    client, room, database, settings, admin_url
):
    assert REMINDERS_JOB in registry.names
    env = {
        **os.environ,
        "DATABASE_URL": admin_url.render_as_string(hide_password=False),
        "WG_DATA_DIR": str(settings.data_dir),
        "WG_LOG_LEVEL": "INFO",
        "WG_JOB_INTERVAL_SECONDS": "1",
        "WG_JOB_POLL_SECONDS": "0.2",
    }
    batches = [
        [
            await schedule(
                client, room, start_local=start_in(3 + i), reminders_minutes_before=[1440, 60]
            )
            for i in range(4)
        ]
        for _ in range(2)
    ]
    workers = [await WorkerProcess.start(env) for _ in range(2)]
    try:

        async def both_run_reminders() -> bool:
            return all(w.logged("worker started") for w in workers) and all(
                REMINDERS_JOB in w.logged("worker started")[0]["jobs"] for w in workers
            )

        await eventually(both_run_reminders, within=30, workers=workers)

        async def all_sent(meetings: list[dict[str, Any]]) -> bool:
            planned = [await _planned(database, m["id"]) for m in meetings]
            return all(sent is not None for rows in planned for _, _, sent in rows)

        await _make_due(database, [m["id"] for m in batches[0]])
        await eventually(lambda: all_sent(batches[0]), within=30, workers=workers)
        # One worker dies; the other goes on alone.
        workers[0].process.send_signal(signal.SIGKILL)
        await workers[0].process.wait()
        await _make_due(database, [m["id"] for m in batches[1]])
        await eventually(lambda: all_sent(batches[1]), within=30, workers=workers)
        await asyncio.sleep(2)
    finally:
        for worker in workers:
            await worker.stop()
    for actor in (room.facilitator, room.member, room.observer):
        events = await event_data(database, actor, "meeting.reminder")
        counts = Counter((e["meeting_id"], e["minutes_before"]) for e in events)
        assert counts == {
            (m["id"], offset): 1 for batch in batches for m in batch for offset in (1440, 60)
        }


async def test_open_ended_series_are_kept_two_years_ahead(client, room, database):
    first = await schedule(client, room, rrule="FREQ=WEEKLY", start_local=start_in(2))
    before = await series_of(client, room, first["series_id"])
    horizon = datetime.now(UTC) + timedelta(days=731)
    assert _at(before[-1]) < horizon <= _at(before[-1]) + timedelta(weeks=1)
    async with database.system_transaction() as session:
        added = await service.extend_open_ended_series(
            database, session, datetime.now(UTC) + timedelta(days=70)
        )
    assert added["occurrences_added"] >= 10
    after = await series_of(client, room, first["series_id"])
    assert [m["id"] for m in after[: len(before)]] == [m["id"] for m in before]
    assert len(after) == len(before) + 10
    assert {m["start_local"][11:] for m in after} == {"10:00"}
    async with database.system_transaction() as session:
        again = await service.extend_open_ended_series(
            database, session, datetime.now(UTC) + timedelta(days=70)
        )
    assert len(await series_of(client, room, first["series_id"])) == len(after)
    assert again["occurrences_added"] >= 0


def _at(meeting: dict[str, Any]) -> datetime:
    return datetime.fromisoformat(meeting["starts_at"].replace("Z", "+00:00"))


async def test_a_run_that_dies_before_commit_sends_nothing_and_the_next_sends_all(
    client, room, database
):
    meetings = [
        await schedule(client, room, start_local=start_in(3 + i), reminders_minutes_before=[60])
        for i in range(3)
    ]
    ids = [m["id"] for m in meetings]
    await _make_due(database, ids)
    # A worker marks and writes everything, then dies before its commit: all of it is rolled back.
    async with database.connection(system=True) as session:
        await session.begin()
        dying = await service.send_due_reminders(session, datetime.now(UTC))
        assert dying["reminders"] >= 3
        await session.rollback()
    planned = [row for m in ids for row in await _planned(database, m)]
    assert [sent for _, _, sent in planned] == [None, None, None]
    assert await event_data(database, room.member, "meeting.reminder") == []
    # Two runs at once (two workers): each due reminder is taken by exactly one of them.
    await asyncio.gather(_send(database), _send(database))
    events = await event_data(database, room.member, "meeting.reminder")
    assert Counter(e["meeting_id"] for e in events) == dict.fromkeys(ids, 1)
