"""Scheduled jobs: one leader schedules, every worker runs.

Every `wg-api worker` process tries to take a PostgreSQL session advisory lock on a connection of
its own; the one that holds it is the leader and runs an APScheduler 3 `AsyncIOScheduler`. The
others stand by and try again every `leader_retry_seconds`; when the leader dies its connection
drops, the server releases the lock and a standby takes over. A leader that loses its lock
connection steps down.

The scheduler never runs a job itself: at each fire time it inserts a row keyed by (job name, fire
time), where the fire time is derived from the schedule alone (the interval boundary, or the cron
time), so two leaders overlapping during a handover insert the same key and `ON CONFLICT DO
NOTHING` keeps one. A new leader also inserts the latest fire time at once, so a fire that fell in
the handover gap is not lost. Every worker, leader included, claims due rows with `FOR UPDATE SKIP
LOCKED` and runs the registered handler. The handler's own writes commit in the same transaction
that marks the row done, and only while the claim is still this worker's: a job's effects land
once even if a worker is presumed dead and its row is claimed again.

Domains register their jobs on `registry` (`@registry.job("name", every=timedelta(hours=1))`);
this module imports no domain.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import re
import signal
import socket
import time
from collections.abc import Awaitable, Callable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import sqlalchemy as sa
from apscheduler.schedulers.asyncio import AsyncIOScheduler
from apscheduler.triggers.cron import CronTrigger
from apscheduler.triggers.interval import IntervalTrigger
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncConnection

from wg_api.platform.database import Database, resolve_admin_url
from wg_api.platform.events import purge_events
from wg_api.platform.migrate import migrate
from wg_api.platform.models import jobs
from wg_api.platform.observability import count_job
from wg_api.platform.roles import check_logins
from wg_api.settings import Settings

log = logging.getLogger("wg_api.jobs")

# Any constant every worker agrees on; "wgjobs" in ASCII. Advisory locks are per database.
LEADER_LOCK_KEY = 0x7767_6A6F_6273
# Interval fire times are counted from here, so every leader computes the same boundaries.
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_JOB_NAME = re.compile(r"^[a-z0-9][a-z0-9.-]{0,99}$")
_CRON_LOOKBACK = timedelta(days=1)


@dataclass(frozen=True)
class JobContext:
    """What a handler gets. `session` runs as the system role, in the transaction that also marks
    the job done: write through it and the writes commit exactly once with the job. The system role
    has no BYPASSRLS and no privilege on tenants' tables: it reaches them through SECURITY DEFINER
    functions granted to it (or work for one tenant uses `database.transaction(tenant_id)`)."""

    session: AsyncConnection
    database: Database
    settings: Settings
    name: str
    fire_time: datetime
    attempt: int


JobHandler = Callable[[JobContext], Awaitable[Mapping[str, Any] | None]]


@dataclass(frozen=True)
class Schedule:
    """Either a fixed interval (whole seconds, aligned to the Unix epoch) or a cron line in UTC."""

    every: timedelta | None = None
    cron: str | None = None

    def __post_init__(self) -> None:
        if (self.every is None) == (self.cron is None):
            raise ValueError("a schedule needs exactly one of `every` and `cron`")
        if self.every is not None and (
            self.every < timedelta(seconds=1) or self.every % timedelta(seconds=1)
        ):
            raise ValueError("`every` must be a whole number of seconds, at least one")
        if self.cron is not None:
            self.trigger()

    def trigger(self) -> Any:
        if self.every is not None:
            return IntervalTrigger(
                seconds=self.every.total_seconds(), start_date=EPOCH, timezone=UTC
            )
        return CronTrigger.from_crontab(self.cron, timezone=UTC)

    def latest_fire_time(self, now: datetime) -> datetime | None:
        """The last fire time at or before `now`: the key of the run that `now` belongs to."""
        if self.every is not None:
            return EPOCH + ((now - EPOCH) // self.every) * self.every
        trigger = self.trigger()
        window = timedelta(minutes=1)
        while True:
            fire: datetime | None = trigger.get_next_fire_time(None, now - window)
            if fire is not None and fire <= now:
                while True:
                    following = trigger.get_next_fire_time(fire, fire + timedelta(microseconds=1))
                    if following is None or following > now:
                        return fire.astimezone(UTC)
                    fire = following
            if window >= _CRON_LOOKBACK:
                return None
            window *= 2


@dataclass(frozen=True)
class JobDefinition:
    name: str
    handler: JobHandler
    schedule: Schedule
    max_attempts: int = 5

    def schedule_for(self, settings: Settings) -> Schedule:
        if settings.job_interval_seconds > 0:
            return Schedule(every=timedelta(seconds=settings.job_interval_seconds))
        return self.schedule


class JobRegistry:
    """The jobs a worker knows. A worker only claims rows of jobs it has registered."""

    def __init__(self) -> None:
        self._jobs: dict[str, JobDefinition] = {}

    def job(
        self,
        name: str,
        *,
        every: timedelta | None = None,
        cron: str | None = None,
        max_attempts: int = 5,
    ) -> Callable[[JobHandler], JobHandler]:
        schedule = Schedule(every=every, cron=cron)

        def register(handler: JobHandler) -> JobHandler:
            self.add(JobDefinition(name, handler, schedule, max_attempts))
            return handler

        return register

    def add(self, definition: JobDefinition) -> None:
        if not _JOB_NAME.match(definition.name):
            raise ValueError(f"job name {definition.name!r} must match {_JOB_NAME.pattern}")
        if definition.name in self._jobs:
            raise ValueError(f"job {definition.name!r} is already registered")
        if definition.max_attempts < 1:
            raise ValueError("max_attempts must be at least 1")
        self._jobs[definition.name] = definition

    def get(self, name: str) -> JobDefinition | None:
        return self._jobs.get(name)

    @property
    def names(self) -> list[str]:
        return sorted(self._jobs)

    def __iter__(self) -> Iterator[JobDefinition]:
        return iter(self._jobs.values())


registry = JobRegistry()


# The purges of rows of every tenant go through the owner's functions (migration 0008): the system
# role has no privilege on those tables and no BYPASSRLS.
@registry.job("purge-idempotency-keys", every=timedelta(hours=1))
async def purge_idempotency_keys(job: JobContext) -> dict[str, int]:
    deleted = await job.session.scalar(sa.text("SELECT purge_idempotency_keys()"))
    return {"deleted": int(deleted or 0)}


@registry.job("purge-events", every=timedelta(hours=1))
async def purge_expired_events(job: JobContext) -> dict[str, int]:
    return {"deleted": await purge_events(job.session, job.settings.event_retention_days)}


@registry.job("purge-finished-jobs", every=timedelta(days=1))
async def purge_finished_jobs(job: JobContext) -> dict[str, int]:
    result = await job.session.execute(
        sa.delete(jobs).where(
            jobs.c.status == "done", jobs.c.finished_at < sa.func.now() - timedelta(days=7)
        )
    )
    return {"deleted": int(result.rowcount or 0)}


async def enqueue(session: AsyncConnection, name: str, fire_time: datetime) -> bool:
    """Insert the row of one run; False when that (name, fire time) exists already."""
    statement = (
        insert(jobs)
        .values(name=name, fire_time=fire_time)
        .on_conflict_do_nothing(index_elements=["name", "fire_time"])
        .returning(jobs.c.id)
    )
    return (await session.scalar(statement)) is not None


# Due: pending and past its retry backoff, or running for longer than the timeout (its worker died).
_CLAIM = sa.text(
    """
    WITH candidate AS (
        SELECT id FROM jobs
        WHERE name = ANY(CAST(:names AS text[]))
          AND CASE status
                WHEN 'pending' THEN finished_at IS NULL OR finished_at
                    <= now() - CAST(:retry_seconds AS float8) * 2 ^ (attempts - 1) * interval '1 s'
                WHEN 'running' THEN claimed_at < now() - CAST(:timeout AS float8) * interval '1 s'
                ELSE false
              END
        ORDER BY fire_time, id
        LIMIT 1
        FOR UPDATE SKIP LOCKED
    )
    UPDATE jobs
    SET status = 'running', attempts = jobs.attempts + 1, claimed_by = :worker,
        claimed_at = now(), finished_at = NULL
    FROM candidate
    WHERE jobs.id = candidate.id
    RETURNING jobs.id, jobs.name, jobs.fire_time, jobs.attempts
    """
)


@dataclass(frozen=True)
class ClaimedJob:
    id: int
    name: str
    fire_time: datetime
    attempt: int


class _ClaimLost(Exception):
    """Another worker claimed the row meanwhile; this run's writes must not commit."""


def default_worker_id() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


@dataclass
class JobRunner:
    """Claims due job rows one at a time and runs them."""

    database: Database
    settings: Settings
    registry: JobRegistry
    worker_id: str = field(default_factory=default_worker_id)
    _wake: asyncio.Event = field(default_factory=asyncio.Event)

    def wake(self) -> None:
        self._wake.set()

    async def claim(self) -> ClaimedJob | None:
        async with self.database.system_transaction() as session:
            row = (
                await session.execute(
                    _CLAIM,
                    {
                        "names": self.registry.names,
                        "worker": self.worker_id,
                        "retry_seconds": float(self.settings.job_retry_seconds),
                        "timeout": float(self.settings.job_timeout_seconds),
                    },
                )
            ).first()
        if row is None:
            return None
        return ClaimedJob(id=row.id, name=row.name, fire_time=row.fire_time, attempt=row.attempts)

    async def run_one(self) -> bool:
        """Claim and run one due job; False when none is due."""
        claimed = await self.claim()
        if claimed is None:
            return False
        definition = self.registry.get(claimed.name)
        assert definition is not None  # the claim only picks registered names
        if claimed.attempt > definition.max_attempts:
            count_job(claimed.name, "failed")
            await self._finish_failed(
                claimed, "gave up: the worker of the last attempt stopped responding", final=True
            )
            return True
        started = time.perf_counter()
        try:
            async with self.database.system_transaction() as session:
                context = JobContext(
                    session=session,
                    database=self.database,
                    settings=self.settings,
                    name=claimed.name,
                    fire_time=claimed.fire_time,
                    attempt=claimed.attempt,
                )
                async with asyncio.timeout(self.settings.job_timeout_seconds):
                    result = await definition.handler(context)
                done = await session.scalar(
                    self._own_row(claimed)
                    .values(
                        status="done",
                        finished_at=sa.func.now(),
                        result=dict(result) if result is not None else None,
                        last_error=None,
                    )
                    .returning(jobs.c.id)
                )
                if done is None:
                    raise _ClaimLost
        except _ClaimLost:
            count_job(claimed.name, "claim_lost")
            log.warning(
                "job claimed by another worker; its writes were rolled back",
                extra=self._log(claimed),
            )
            return True
        except Exception as exc:
            final = claimed.attempt >= definition.max_attempts
            count_job(claimed.name, "failed" if final else "retry")
            log.exception("job failed", extra={**self._log(claimed), "final": final})
            error = (
                f"timed out after {self.settings.job_timeout_seconds:g} s"
                if isinstance(exc, TimeoutError)
                else f"{type(exc).__name__}: {exc}"[:2000]
            )
            await self._finish_failed(claimed, error, final=final)
            return True
        seconds = time.perf_counter() - started
        count_job(claimed.name, "done", seconds)
        log.info(
            "job done",
            extra={**self._log(claimed), "duration_ms": round(seconds * 1000, 2), "result": result},
        )
        return True

    def _own_row(self, claimed: ClaimedJob) -> sa.Update:
        return sa.update(jobs).where(
            jobs.c.id == claimed.id,
            jobs.c.status == "running",
            jobs.c.claimed_by == self.worker_id,
            jobs.c.attempts == claimed.attempt,
        )

    async def _finish_failed(self, claimed: ClaimedJob, error: str, *, final: bool) -> None:
        # A retry waits `job_retry_seconds * 2^(attempt-1)` after `finished_at` (see _CLAIM).
        async with self.database.system_transaction() as session:
            await session.execute(
                self._own_row(claimed).values(
                    status="failed" if final else "pending",
                    finished_at=sa.func.now(),
                    last_error=error,
                )
            )

    def _log(self, claimed: ClaimedJob) -> dict[str, Any]:
        return {
            "job": claimed.name,
            "job_id": claimed.id,
            "fire_time": claimed.fire_time.isoformat().replace("+00:00", "Z"),
            "attempt": claimed.attempt,
            "worker": self.worker_id,
        }

    async def run(self, stop: asyncio.Event) -> None:
        """Run due jobs until `stop` is set; a job in progress finishes first."""
        while not stop.is_set():
            try:
                if await self.run_one():
                    continue
            except Exception:
                log.exception("claiming a job failed", extra={"worker": self.worker_id})
            self._wake.clear()
            await _wait_any(stop, self._wake, seconds=self.settings.job_poll_seconds)


_LOCK_HELD = sa.text(
    """
    SELECT EXISTS (
        SELECT 1 FROM pg_locks
        WHERE locktype = 'advisory' AND pid = pg_backend_pid() AND granted
          AND classid = :high AND objid = :low AND objsubid = 1
    )
    """
)
_LEADER = sa.text(
    """
    SELECT a.application_name FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid
    WHERE l.locktype = 'advisory' AND l.granted AND l.database = (
            SELECT oid FROM pg_database WHERE datname = current_database())
      AND l.classid = :high AND l.objid = :low AND l.objsubid = 1
    """
)
_LOCK_PARTS = {"high": LEADER_LOCK_KEY >> 32, "low": LEADER_LOCK_KEY & 0xFFFF_FFFF}
LEADER_APPLICATION_PREFIX = "wg-api-leader "


async def current_leader(session: AsyncConnection) -> str | None:
    """The worker id of the scheduler leader of this database, or None while there is none."""
    name = await session.scalar(_LEADER, _LOCK_PARTS)
    if name is None or not str(name).startswith(LEADER_APPLICATION_PREFIX):
        return None
    return str(name).removeprefix(LEADER_APPLICATION_PREFIX)


@dataclass
class Leadership:
    """Contends for the leader lock; while it holds it, runs the scheduler."""

    database: Database
    settings: Settings
    registry: JobRegistry
    runner: JobRunner

    @property
    def worker_id(self) -> str:
        return self.runner.worker_id

    async def run(self, stop: asyncio.Event) -> None:
        retry = self.settings.leader_retry_seconds
        while not stop.is_set():
            try:
                connection = await self._try_lock()
            except Exception:
                log.exception("could not reach the database to contend for leadership")
                connection = None
            if connection is not None:
                await self._lead(connection, stop)
            await _wait_any(stop, seconds=retry)

    async def _try_lock(self) -> AsyncConnection | None:
        connection = await self.database.system_engine.connect()
        try:
            # Autocommit: the session-level lock outlives statements, and no snapshot stays open.
            connection = await connection.execution_options(isolation_level="AUTOCOMMIT")
            # The leader names its session in the same statement, so `current_leader` can tell.
            acquired = await connection.scalar(
                sa.text(
                    "SELECT CASE WHEN pg_try_advisory_lock(:key) "
                    "THEN set_config('application_name', :name, false) END"
                ),
                {"key": LEADER_LOCK_KEY, "name": (LEADER_APPLICATION_PREFIX + self.worker_id)[:63]},
            )
            if acquired is None:
                await connection.close()
                return None
        except BaseException:
            await _discard(connection)
            raise
        return connection

    async def _lead(self, connection: AsyncConnection, stop: asyncio.Event) -> None:
        log.info("became the scheduler leader", extra={"worker": self.worker_id})
        scheduler = AsyncIOScheduler(timezone=UTC)
        for definition in self.registry:
            scheduler.add_job(
                self._fire,
                trigger=definition.schedule_for(self.settings).trigger(),
                args=[definition],
                id=definition.name,
                coalesce=True,
                max_instances=1,
                misfire_grace_time=None,
            )
        scheduler.start()
        try:
            # Whatever fell due while no one led (a handover, a restart) runs once now.
            for definition in self.registry:
                await self._fire(definition)
            while not stop.is_set():
                await _wait_any(stop, seconds=self.settings.leader_retry_seconds)
                if stop.is_set():
                    break
                if not await self._still_leader(connection):
                    log.warning(
                        "lost the leader lock; stepping down", extra={"worker": self.worker_id}
                    )
                    await _discard(connection)
                    return
            with contextlib.suppress(Exception):
                async with asyncio.timeout(5):
                    await connection.execute(
                        sa.text("SELECT pg_advisory_unlock(:key)"), {"key": LEADER_LOCK_KEY}
                    )
            await _discard(connection)
            log.info("stepped down as the scheduler leader", extra={"worker": self.worker_id})
        finally:
            scheduler.shutdown(wait=False)

    async def _still_leader(self, connection: AsyncConnection) -> bool:
        try:
            async with asyncio.timeout(max(5.0, self.settings.leader_retry_seconds * 2)):
                return bool(await connection.scalar(_LOCK_HELD, _LOCK_PARTS))
        except Exception:
            log.warning("the leader lock connection failed", exc_info=True)
            return False

    async def _fire(self, definition: JobDefinition) -> None:
        """The scheduled function: insert this fire time's row, nothing else."""
        fire_time = definition.schedule_for(self.settings).latest_fire_time(datetime.now(UTC))
        if fire_time is None:
            return
        try:
            async with asyncio.timeout(30), self.database.system_transaction() as session:
                inserted = await enqueue(session, definition.name, fire_time)
        except Exception:
            log.exception("could not enqueue a job", extra={"job": definition.name})
            return
        if inserted:
            self.runner.wake()


async def _discard(connection: AsyncConnection) -> None:
    """Close a lock connection for good: never hand a connection that held the lock back to the
    pool, and never wait long on a connection that may be dead."""
    with contextlib.suppress(Exception):
        async with asyncio.timeout(5):
            await connection.invalidate()
    with contextlib.suppress(Exception):
        async with asyncio.timeout(5):
            await connection.close()


async def _wait_any(*events: asyncio.Event, seconds: float) -> None:
    waiters = [asyncio.ensure_future(event.wait()) for event in events]
    try:
        await asyncio.wait(waiters, timeout=seconds, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for waiter in waiters:
            waiter.cancel()


async def run_worker(settings: Settings, jobs_registry: JobRegistry | None = None) -> None:
    """`wg-api worker`: migrate, then contend for leadership and run jobs until SIGTERM/SIGINT."""
    logging.getLogger("apscheduler").setLevel(logging.WARNING)
    admin_url = resolve_admin_url(settings)
    await migrate(admin_url, settings)
    database = Database.connect(admin_url, settings)
    try:
        await check_logins(database.app_engine, database.system_engine, settings.owner_role)
    except BaseException:
        await database.dispose()
        raise
    known = jobs_registry or registry
    runner = JobRunner(database, settings, known)
    leadership = Leadership(database, settings, known, runner)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    signals = (signal.SIGTERM, signal.SIGINT)
    for signum in signals:
        loop.add_signal_handler(signum, stop.set)
    log.info("worker started", extra={"worker": runner.worker_id, "jobs": known.names})
    try:
        await asyncio.gather(leadership.run(stop), runner.run(stop))
    finally:
        for signum in signals:
            loop.remove_signal_handler(signum)
        await database.dispose()
        log.info("worker stopped", extra={"worker": runner.worker_id})
