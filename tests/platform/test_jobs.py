"""The job worker: leader election, exactly-once runs, handover, retries and the purge jobs.

The first test runs two real `wg-api worker` processes against the test database and kills the
leader; the others drive the same claim-and-run code in-process.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import os
import signal
import socket
import sys
import time
import uuid
from collections import Counter
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import sqlalchemy as sa

from tests.conftest import superuser_transaction
from wg_api.platform.jobs import (
    JobContext,
    JobRegistry,
    JobRunner,
    Schedule,
    current_leader,
    enqueue,
    registry,
)
from wg_api.platform.models import events, idempotency_keys, jobs

INTERVAL_SECONDS = 1
PURGE_JOBS = [
    "purge-idempotency-keys",
    "purge-events",
    "purge-rate-limit-windows",
    "purge-finished-jobs",
]


class WorkerProcess:
    """One `wg-api worker` subprocess whose JSON log lines are collected as they come."""

    def __init__(self, process: asyncio.subprocess.Process) -> None:
        self.process = process
        self.worker_id = f"{socket.gethostname()}:{process.pid}"
        self.logs: list[dict[str, Any]] = []
        self._reader = asyncio.create_task(self._read())

    @classmethod
    async def start(cls, env: dict[str, str]) -> WorkerProcess:
        process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "wg_api.cli",
            "worker",
            env=env,
            stdout=asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.PIPE,
        )
        return cls(process)

    async def _read(self) -> None:
        assert self.process.stderr is not None
        async for line in self.process.stderr:
            try:
                self.logs.append(json.loads(line))
            except ValueError:
                self.logs.append({"message": line.decode(errors="replace").rstrip()})

    def logged(self, message: str) -> list[dict[str, Any]]:
        return [entry for entry in self.logs if entry.get("message") == message]

    async def stop(self) -> None:
        if self.process.returncode is None:
            self.process.kill()
            await self.process.wait()
        await self._reader


async def eventually(
    probe: Any, *, within: float, every: float = 0.1, workers: Sequence[WorkerProcess] = ()
) -> Any:
    deadline = time.monotonic() + within
    while True:
        value = await probe()
        if value:
            return value
        if time.monotonic() > deadline:
            state = "\n".join(
                f"{w.worker_id} (exit {w.process.returncode}): {w.logs[-20:]}" for w in workers
            )
            raise AssertionError(f"not true within {within} s: {probe.__name__}\n{state}")
        await asyncio.sleep(every)


async def job_rows(database: Any, where: Any) -> list[Any]:
    async with database.system_transaction() as session:
        return list((await session.execute(sa.select(jobs).where(where))).all())


async def test_two_workers_run_each_job_once_and_a_standby_takes_over(
    database, settings, admin_url
):
    env = {
        **os.environ,
        "DATABASE_URL": admin_url.render_as_string(hide_password=False),
        "WG_DATA_DIR": str(settings.data_dir),
        "WG_LOG_LEVEL": "INFO",
        "WG_JOB_INTERVAL_SECONDS": str(INTERVAL_SECONDS),
        "WG_JOB_POLL_SECONDS": "0.2",
    }
    started_at = datetime.now(UTC)
    workers = [await WorkerProcess.start(env) for _ in range(2)]
    by_id = {w.worker_id: w for w in workers}
    try:

        async def leader() -> str | None:
            async with database.system_transaction() as session:
                return await current_leader(session)

        async def both_started() -> bool:
            return all(w.logged("worker started") for w in workers)

        first_leader = await eventually(leader, within=30, workers=workers)
        assert first_leader in by_id
        await eventually(both_started, within=30, workers=workers)
        [worker_jobs] = {tuple(w.logged("worker started")[0]["jobs"]) for w in workers}
        assert set(registry.names) <= set(worker_jobs)

        # A backlog both workers race for, on top of what the leader schedules every second.
        backlog = [datetime(2000, 1, 1, tzinfo=UTC) + timedelta(seconds=i) for i in range(60)]
        async with database.system_transaction() as session:
            for fire_time in backlog:
                assert await enqueue(session, "purge-rate-limit-windows", fire_time)
        await asyncio.sleep(3 * INTERVAL_SECONDS)
        cutoff = datetime.now(UTC) - timedelta(seconds=0.5)
        ours = sa.or_(jobs.c.fire_time >= started_at, jobs.c.fire_time.in_(backlog))
        settled = sa.and_(ours, jobs.c.fire_time <= cutoff, jobs.c.name.in_(worker_jobs))

        async def all_settled() -> bool:
            rows = await job_rows(database, settled)
            return all(row.status == "done" for row in rows)

        await eventually(all_settled, within=10, workers=workers)
        rows = await job_rows(database, settled)
        scheduled = [row for row in rows if row.fire_time >= started_at]
        assert {row.name for row in scheduled} == set(worker_jobs)
        for name in worker_jobs:
            fire_times = {row.fire_time for row in scheduled if row.name == name}
            assert len(fire_times) >= 2, (name, fire_times)
            assert all(t.microsecond == 0 and t.second % INTERVAL_SECONDS == 0 for t in fire_times)
        assert {(row.status, row.attempts) for row in rows} == {("done", 1)}
        # Each row ran once, in the process that claimed it, and both processes did work.
        runs = Counter(
            (entry["job_id"], worker.worker_id)
            for worker in workers
            for entry in worker.logged("job done")
        )
        for row in rows:
            assert runs[(row.id, row.claimed_by)] == 1, row
            other = next(w for w in by_id if w != row.claimed_by)
            assert runs[(row.id, other)] == 0, row
        assert {row.claimed_by for row in rows} == set(by_id)

        # The leader's lock connection is cut while the process lives on: it notices, steps
        # down, and one of the two (whichever is first) leads again.
        async with database.system_transaction() as session:
            cut = await session.scalar(
                sa.text(
                    "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                    "WHERE datname = current_database() AND application_name = :name"
                ),
                {"name": f"wg-api-leader {first_leader}"},
            )
        assert cut == 1

        async def stepped_down() -> bool:
            return bool(by_id[first_leader].logged("lost the leader lock; stepping down"))

        await eventually(stepped_down, within=10, workers=workers)
        current_leader_id = await eventually(leader, within=10, workers=workers)

        # Kill the leader outright: its connection drops and the standby takes over.
        survivor = next(w for w in workers if w.worker_id != current_leader_id)
        killed_wall = datetime.now(UTC)
        killed = time.monotonic()
        by_id[current_leader_id].process.send_signal(signal.SIGKILL)
        await by_id[current_leader_id].process.wait()

        async def new_leader() -> str | None:
            current = await leader()
            return current if current not in (None, current_leader_id) else None

        assert await eventually(new_leader, within=10, workers=workers) == survivor.worker_id
        handover = time.monotonic() - killed
        print(f"leader handover took {handover:.2f} s")
        assert handover < 10
        assert survivor.logged("became the scheduler leader")

        after_kill = sa.and_(
            jobs.c.fire_time > killed_wall,
            jobs.c.status == "done",
            jobs.c.claimed_by == survivor.worker_id,
        )

        async def survivor_runs_every_job() -> bool:
            rows = await job_rows(database, after_kill)
            return {row.name for row in rows} == set(worker_jobs)

        await eventually(survivor_runs_every_job, within=10, workers=workers)

        # A graceful stop releases the lock at once and exits cleanly.
        survivor.process.send_signal(signal.SIGTERM)
        assert await asyncio.wait_for(survivor.process.wait(), 15) == 0
        assert await leader() is None
        assert survivor.logged("stepped down as the scheduler leader")
    finally:
        for worker in workers:
            await worker.stop()


async def test_purge_jobs_delete_what_expired_and_keep_the_rest(database, settings, make_tenant):
    tenant = await make_tenant()
    now = datetime.now(UTC)
    bucket = f"test:{uuid.uuid4().hex}"
    old_type, fresh_type = f"test.old.{uuid.uuid4().hex[:8]}", f"test.fresh.{uuid.uuid4().hex[:8]}"
    async with superuser_transaction(database) as session:
        for key, expires_at in (
            ("expired", now - timedelta(minutes=1)),
            ("fresh", now + timedelta(hours=1)),
        ):
            await session.execute(
                sa.insert(idempotency_keys).values(
                    tenant_id=tenant.id,
                    key=key,
                    request_hash=b"h",
                    status_code=201,
                    headers={},
                    body=b"{}",
                    expires_at=expires_at,
                )
            )
        # Past the retention and the purge's hour of margin: positioned, or never read.
        old = now - timedelta(days=settings.event_retention_days, hours=2)
        for type_, values in (
            (old_type, {"visible_at": old, "position": 1, "positioned_at": old}),
            (old_type, {"visible_at": old}),
            (fresh_type, {"visible_at": old, "position": 2, "positioned_at": now}),
            (fresh_type, {"visible_at": now}),
        ):
            await session.execute(
                sa.insert(events).values(tenant_id=tenant.id, type=type_, data={}, **values)
            )
        for window_start in (now - timedelta(days=2), now - timedelta(minutes=1)):
            await session.execute(
                sa.text("INSERT INTO rate_limit_windows VALUES (:bucket, :start, 1)"),
                {"bucket": bucket, "start": window_start},
            )
        finished = {
            "old-done": ("done", now - timedelta(days=8)),
            "recent-done": ("done", now - timedelta(days=1)),
            "old-failed": ("failed", now - timedelta(days=8)),
        }
        history = datetime(2001, 1, 1, tzinfo=UTC)
        seeded = {}
        for offset, (label, (status, finished_at)) in enumerate(finished.items()):
            seeded[label] = await session.scalar(
                sa.insert(jobs)
                .values(
                    name="purge-events",
                    fire_time=history + timedelta(hours=offset),
                    status=status,
                    attempts=1,
                    finished_at=finished_at,
                )
                .returning(jobs.c.id)
            )

    fire_time = datetime(2002, 1, 1, tzinfo=UTC)
    async with database.system_transaction() as session:
        for name in PURGE_JOBS:
            assert await enqueue(session, name, fire_time)
    runner = JobRunner(database, settings, registry, worker_id="test-purge")
    while await runner.run_one():
        pass

    rows = await job_rows(database, jobs.c.fire_time == fire_time)
    assert {(row.name, row.status, row.attempts) for row in rows} == {
        (name, "done", 1) for name in PURGE_JOBS
    }
    assert all(row.result["deleted"] >= 1 for row in rows), [row.result for row in rows]

    async with superuser_transaction(database) as session:
        keys = await session.scalars(
            sa.select(idempotency_keys.c.key).where(idempotency_keys.c.tenant_id == tenant.id)
        )
        assert list(keys) == ["fresh"]
        windows = await session.scalars(
            sa.text("SELECT window_start FROM rate_limit_windows WHERE bucket = :b"), {"b": bucket}
        )
        assert [w > now - timedelta(hours=1) for w in windows] == [True]
        left = set(
            await session.scalars(sa.select(jobs.c.id).where(jobs.c.id.in_(seeded.values())))
        )
        assert left == {seeded["recent-done"], seeded["old-failed"]}
        kept = await session.scalars(
            sa.select(events.c.type).where(events.c.type.in_([old_type, fresh_type]))
        )
        assert list(kept) == [fresh_type, fresh_type]


def _bucket_registry(name: str, behaviour: Any, max_attempts: int = 5) -> tuple[JobRegistry, str]:
    """A registry with one job that records each attempt through its session, then `behaviour`.

    The record is a row of `jobs` under a name no worker runs (the one table the system role
    writes directly)."""
    bucket = f"test-attempt-{uuid.uuid4().hex}"
    jobs_registry = JobRegistry()

    @jobs_registry.job(name, every=timedelta(hours=1), max_attempts=max_attempts)
    async def handler(job: JobContext) -> dict[str, int]:
        await job.session.execute(
            sa.insert(jobs).values(
                name=bucket,
                fire_time=datetime(2000, 1, 1, tzinfo=UTC) + timedelta(seconds=job.attempt),
                status="failed",
                attempts=job.attempt,
            )
        )
        await behaviour(job)
        return {"attempt": job.attempt}

    return jobs_registry, bucket


async def attempts_written(database: Any, bucket: str) -> list[int]:
    async with superuser_transaction(database) as session:
        return list(
            await session.scalars(
                sa.select(jobs.c.attempts).where(jobs.c.name == bucket).order_by(jobs.c.attempts)
            )
        )


async def test_a_failed_job_is_retried_after_a_backoff_and_its_writes_are_rolled_back(
    database, settings
):
    async def fail_first(job: JobContext) -> None:
        if job.attempt == 1:
            raise RuntimeError("supplier registry unreachable")

    name = f"test-flaky-{uuid.uuid4().hex[:8]}"
    jobs_registry, bucket = _bucket_registry(name, fail_first)
    runner = JobRunner(
        database, dataclasses.replace(settings, job_retry_seconds=0.5), jobs_registry, "w1"
    )
    fire_time = datetime(2003, 1, 1, tzinfo=UTC)
    async with database.system_transaction() as session:
        await enqueue(session, name, fire_time)
        assert not await enqueue(session, name, fire_time)

    assert await runner.run_one()
    [row] = await job_rows(database, jobs.c.name == name)
    assert (row.status, row.attempts) == ("pending", 1)
    assert row.last_error == "RuntimeError: supplier registry unreachable"
    assert await attempts_written(database, bucket) == []
    assert not await runner.run_one()  # still backing off

    await asyncio.sleep(0.6)
    assert await runner.run_one()
    [row] = await job_rows(database, jobs.c.name == name)
    assert (row.status, row.attempts, row.last_error, row.result) == (
        "done",
        2,
        None,
        {"attempt": 2},
    )
    assert await attempts_written(database, bucket) == [2]
    assert not await runner.run_one()


async def test_a_job_that_keeps_failing_is_marked_failed(database, settings):
    async def always_fail(job: JobContext) -> None:
        raise ValueError("bad input")

    name = f"test-broken-{uuid.uuid4().hex[:8]}"
    jobs_registry, _ = _bucket_registry(name, always_fail, max_attempts=2)
    runner = JobRunner(
        database, dataclasses.replace(settings, job_retry_seconds=0.01), jobs_registry, "w1"
    )
    async with database.system_transaction() as session:
        await enqueue(session, name, datetime(2003, 1, 1, tzinfo=UTC))
    assert await runner.run_one()
    await asyncio.sleep(0.05)
    assert await runner.run_one()
    [row] = await job_rows(database, jobs.c.name == name)
    assert (row.status, row.attempts, row.last_error) == ("failed", 2, "ValueError: bad input")
    await asyncio.sleep(0.05)
    assert not await runner.run_one()


async def test_a_job_that_runs_too_long_is_cancelled_and_its_writes_rolled_back(database, settings):
    async def hang(job: JobContext) -> None:
        await asyncio.sleep(30)

    name = f"test-slow-{uuid.uuid4().hex[:8]}"
    jobs_registry, bucket = _bucket_registry(name, hang, max_attempts=1)
    runner = JobRunner(
        database, dataclasses.replace(settings, job_timeout_seconds=0.3), jobs_registry, "w1"
    )
    async with database.system_transaction() as session:
        await enqueue(session, name, datetime(2003, 1, 1, tzinfo=UTC))
    started = time.monotonic()
    assert await runner.run_one()
    assert time.monotonic() - started < 5
    [row] = await job_rows(database, jobs.c.name == name)
    assert (row.status, row.attempts, row.last_error) == ("failed", 1, "timed out after 0.3 s")
    assert await attempts_written(database, bucket) == []


async def test_a_job_whose_worker_died_is_claimed_again_after_the_timeout(database, settings):
    async def succeed(job: JobContext) -> None:
        return None

    name = f"test-orphan-{uuid.uuid4().hex[:8]}"
    jobs_registry, bucket = _bucket_registry(name, succeed)
    runner = JobRunner(
        database, dataclasses.replace(settings, job_timeout_seconds=60), jobs_registry, "w2"
    )
    async with database.system_transaction() as session:
        await enqueue(session, name, datetime(2003, 1, 1, tzinfo=UTC))
        await session.execute(
            sa.update(jobs)
            .where(jobs.c.name == name)
            .values(status="running", attempts=1, claimed_by="w-dead", claimed_at=sa.func.now())
        )
    assert not await runner.run_one()  # claimed a moment ago: its worker may still be at it

    async with database.system_transaction() as session:
        await session.execute(
            sa.update(jobs)
            .where(jobs.c.name == name)
            .values(claimed_at=sa.func.now() - timedelta(minutes=2))
        )
    assert await runner.run_one()
    [row] = await job_rows(database, jobs.c.name == name)
    assert (row.status, row.attempts, row.claimed_by) == ("done", 2, "w2")
    assert await attempts_written(database, bucket) == [2]


async def test_a_run_whose_claim_was_taken_over_commits_nothing(database, settings):
    async def lose_the_claim(job: JobContext) -> None:
        # Another worker decides this one is dead and claims the row while it is still running.
        async with job.database.system_transaction() as session:
            await session.execute(
                sa.update(jobs)
                .where(jobs.c.name == job.name)
                .values(claimed_by="w-other", attempts=jobs.c.attempts + 1)
            )

    name = f"test-stolen-{uuid.uuid4().hex[:8]}"
    jobs_registry, bucket = _bucket_registry(name, lose_the_claim)
    runner = JobRunner(database, settings, jobs_registry, "w3")
    async with database.system_transaction() as session:
        await enqueue(session, name, datetime(2003, 1, 1, tzinfo=UTC))
    assert await runner.run_one()
    [row] = await job_rows(database, jobs.c.name == name)
    assert (row.status, row.attempts, row.claimed_by) == ("running", 2, "w-other")
    assert await attempts_written(database, bucket) == []


def test_fire_times_depend_on_the_schedule_only():
    hourly = Schedule(every=timedelta(hours=1))
    at = datetime(2026, 3, 9, 10, 17, 5, 300_000, tzinfo=UTC)
    assert hourly.latest_fire_time(at) == datetime(2026, 3, 9, 10, tzinfo=UTC)
    assert hourly.latest_fire_time(at + timedelta(minutes=42)) == datetime(
        2026, 3, 9, 10, tzinfo=UTC
    )
    assert hourly.latest_fire_time(datetime(2026, 3, 9, 11, tzinfo=UTC)) == datetime(
        2026, 3, 9, 11, tzinfo=UTC
    )
    quarterly = Schedule(cron="*/15 * * * *")
    assert quarterly.latest_fire_time(at) == datetime(2026, 3, 9, 10, 15, tzinfo=UTC)
    nightly = Schedule(cron="0 3 * * *")
    assert nightly.latest_fire_time(at) == datetime(2026, 3, 9, 3, tzinfo=UTC)
    assert Schedule(cron="0 3 1 1 *").latest_fire_time(at) is None  # nothing within a day


@pytest.mark.parametrize(
    ("kwargs", "problem"),
    [
        ({}, "exactly one"),
        ({"every": timedelta(seconds=1), "cron": "* * * * *"}, "exactly one"),
        ({"every": timedelta(0)}, "whole number of seconds"),
        ({"every": timedelta(seconds=1.5)}, "whole number of seconds"),
        ({"cron": "not a cron line"}, "Wrong number of fields"),
    ],
)
def test_a_schedule_must_be_one_valid_interval_or_cron_line(kwargs, problem):
    with pytest.raises(ValueError, match=problem):
        Schedule(**kwargs)


def test_a_job_name_is_registered_once():
    jobs_registry = JobRegistry()

    async def handler(job: JobContext) -> None:
        return None

    jobs_registry.job("nightly", cron="0 3 * * *")(handler)
    with pytest.raises(ValueError, match="already registered"):
        jobs_registry.job("nightly", every=timedelta(hours=1))(handler)
    with pytest.raises(ValueError, match="must match"):
        jobs_registry.job("Nightly Report", every=timedelta(hours=1))(handler)
