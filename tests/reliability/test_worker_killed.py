"""The scheduler leader killed with SIGKILL while two `wg-api worker` processes run: the other
takes over within 10 s, and every job runs once: the backlog both were working through, and the
runs scheduled after the kill, each done exactly once (a run the dead worker had claimed is
claimed again after the job timeout, and its uncommitted work was rolled back with it)."""

from __future__ import annotations

import asyncio
import os
import signal
import time
from collections import Counter
from datetime import UTC, datetime, timedelta

import sqlalchemy as sa

from tests.platform.test_jobs import WorkerProcess, eventually, job_rows
from wg_api.platform.jobs import current_leader, enqueue
from wg_api.platform.models import jobs

BACKLOG = 60


async def test_the_leader_killed_hands_over_within_10_s_and_every_job_runs_once(
    database, settings, admin_url
):
    env = {
        **os.environ,
        "DATABASE_URL": admin_url.render_as_string(hide_password=False),
        "WG_DATA_DIR": str(settings.data_dir),
        "WG_LOG_LEVEL": "INFO",
        "WG_JOB_INTERVAL_SECONDS": "1",
        "WG_JOB_POLL_SECONDS": "0.2",
        "WG_JOB_TIMEOUT_SECONDS": "3",
        "WG_LEADER_RETRY_SECONDS": "0.5",
    }
    # A backlog in a year of its own, so rows of other tests never mix in.
    base = datetime(1990 + os.getpid() % 7, 1, 1, tzinfo=UTC)
    backlog = [base + timedelta(seconds=i) for i in range(BACKLOG)]
    workers = [await WorkerProcess.start(env) for _ in range(2)]
    by_id = {w.worker_id: w for w in workers}
    try:

        async def leader() -> str | None:
            async with database.system_transaction() as session:
                return await current_leader(session)

        first = await eventually(leader, within=30, workers=workers)
        assert first in by_id

        async def both_started() -> bool:
            return all(w.logged("worker started") for w in workers)

        await eventually(both_started, within=30, workers=workers)
        async with database.system_transaction() as session:
            for fire_time in backlog:
                assert await enqueue(session, "purge-rate-limit-windows", fire_time)
        in_backlog = jobs.c.fire_time.in_(backlog)

        async def leader_is_working() -> bool:
            return any(entry.get("job_id") is not None for entry in by_id[first].logged("job done"))

        await eventually(leader_is_working, within=10, workers=workers)
        killed_wall = datetime.now(UTC)
        killed = time.monotonic()
        by_id[first].process.send_signal(signal.SIGKILL)
        await by_id[first].process.wait()
        survivor = next(w for w in workers if w.worker_id != first)

        async def new_leader() -> str | None:
            current = await leader()
            return current if current not in (None, first) else None

        assert await eventually(new_leader, within=10, workers=workers) == survivor.worker_id
        handover = time.monotonic() - killed
        print(f"leader handover after SIGKILL: {handover:.2f} s")
        assert handover < 10

        async def backlog_done() -> bool:
            rows = await job_rows(database, in_backlog)
            return len(rows) == BACKLOG and all(row.status == "done" for row in rows)

        await eventually(backlog_done, within=20, workers=workers)

        async def scheduled_after_kill() -> bool:
            rows = await job_rows(
                database, sa.and_(jobs.c.fire_time > killed_wall, jobs.c.status == "done")
            )
            return len({row.name for row in rows}) >= 2

        await eventually(scheduled_after_kill, within=10, workers=workers)

        rows = await job_rows(database, sa.or_(in_backlog, jobs.c.fire_time > killed_wall))
        done_logs = Counter(
            entry["job_id"] for worker in workers for entry in worker.logged("job done")
        )
        for row in rows:
            if row.status != "done":
                continue
            # Done once: by the process that holds the claim, logged by it once; the dead
            # worker may have committed a run without living to log it, never a second one.
            assert done_logs[row.id] <= 1, row
            if row.claimed_by == survivor.worker_id:
                assert done_logs[row.id] == 1, row
        # (name, fire_time) is unique: a scheduled run exists once, whoever led when it fell due.
        assert len({(row.name, row.fire_time) for row in rows}) == len(rows)
        assert {row.claimed_by for row in rows if row.fire_time in set(backlog)} <= set(by_id)
    finally:
        for worker in workers:
            await worker.stop()
        await asyncio.sleep(0)
