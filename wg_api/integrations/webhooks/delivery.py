"""The worker side: turn the feed into deliveries, send them signed, record what happened.

At least once, never lost: a delivery is leased (`webhook_claim`, FOR UPDATE SKIP LOCKED) before
it is sent and recorded after (`webhook_record`, only while the lease is still this worker's), so
a worker that dies in between leaves it to be claimed again when the lease runs out (twice the
timeout), with the same `webhook-id`. Many endpoints share a worker fairly: each endpoint has a
few deliveries in flight at most (one, in feed order, when `ordered`), so a slow or dead endpoint
holds back only itself. All three functions belong to the owner; the worker's role has no
privilege on the tables.
"""

from __future__ import annotations

import asyncio
import contextlib
import email.utils
import logging
import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import msgspec
import sqlalchemy as sa
from standardwebhooks import Webhook

from wg_api.integrations.webhooks.secrets import SecretBox, SecretUnreadable
from wg_api.platform.database import Database
from wg_api.platform.outbound import OutboundClient, OutboundError
from wg_api.settings import Settings

log = logging.getLogger("wg_api.webhooks")

# After the 1st, 2nd, ... failed attempt of a delivery (api.md), times WG_WEBHOOK_RETRY_SCALE.
RETRY_SCHEDULE = (
    timedelta(seconds=5),
    timedelta(minutes=5),
    timedelta(minutes=30),
    timedelta(hours=2),
    timedelta(hours=5),
    timedelta(hours=10),
    timedelta(hours=14),
    timedelta(hours=20),
    timedelta(hours=24),
)
DISABLE_AFTER = timedelta(days=5)
# A Retry-After longer than this is read as this.
MAX_RETRY_AFTER = timedelta(hours=24)
# Only the status matters; the body is read this far and dropped.
RESPONSE_BYTES = 4096
# Events turned into deliveries per endpoint and call.
FAN_OUT_BATCH = 1000
ERROR_CHARS = 500


class WebhookEvent(msgspec.Struct):
    """The body of a delivery: the event as the feed shows it."""

    id: uuid.UUID
    type: str
    occurred_at: datetime
    data: msgspec.Raw


@dataclass(frozen=True)
class Claimed:
    tenant_id: uuid.UUID
    delivery_id: uuid.UUID
    endpoint_id: uuid.UUID
    url: str
    secret: bytes
    previous_secret: bytes | None
    event_id: uuid.UUID
    event_type: str
    occurred_at: datetime | None
    data: str | None
    attempt: int
    retries: int
    lease_token: uuid.UUID


@dataclass(frozen=True)
class Outcome:
    claimed: Claimed
    succeeded: bool
    response_status: int | None
    duration_ms: int
    error: str | None
    attempted_at: datetime
    next_attempt_at: datetime | None
    gone: bool


def retry_delay(retries: int, scale: float, retry_after: timedelta | None) -> timedelta | None:
    """When to try again after the attempt that follows `retries` earlier failures; None when
    the schedule is spent. A `Retry-After` later than the schedule wins."""
    if retries >= len(RETRY_SCHEDULE):
        return None
    delay = RETRY_SCHEDULE[retries] * scale
    if retry_after is not None:
        delay = max(delay, min(retry_after, MAX_RETRY_AFTER))
    return delay


def parse_retry_after(value: str | None, now: datetime) -> timedelta | None:
    """`Retry-After` in seconds or as an HTTP date; None when absent or unreadable."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return timedelta(seconds=int(value))
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(when - now, timedelta(0))


def signature_header(signers: list[Webhook], msg_id: str, timestamp: datetime, payload: str) -> str:
    return " ".join(signer.sign(msg_id, timestamp, payload) for signer in signers)


class WebhookDispatcher:
    """One per worker process; `run` until stopped, or `run_once` (tests, the bench)."""

    def __init__(
        self,
        database: Database,
        settings: Settings,
        outbound: OutboundClient,
        box: SecretBox,
    ) -> None:
        self.database = database
        self.settings = settings
        self.outbound = outbound
        self.box = box
        self.lease_seconds = max(2 * settings.webhook_timeout_seconds, 1.0)
        self._signers: dict[tuple[uuid.UUID, bytes], Webhook] = {}
        self._done: list[Outcome] = []

    async def fan_out(self) -> int:
        async with self.database.system_transaction() as session:
            made = await session.scalar(
                sa.text("SELECT webhook_fan_out(:batch)"), {"batch": FAN_OUT_BATCH}
            )
        return int(made or 0)

    async def claim(self, limit: int) -> list[Claimed]:
        async with self.database.system_transaction() as session:
            rows = (
                await session.execute(
                    sa.text("SELECT * FROM webhook_claim(:limit, :per_endpoint, :lease)"),
                    {
                        "limit": limit,
                        "per_endpoint": self.settings.webhook_endpoint_concurrency,
                        "lease": self.lease_seconds,
                    },
                )
            ).all()
        return [
            Claimed(
                tenant_id=r.tenant_id,
                delivery_id=r.delivery_id,
                endpoint_id=r.endpoint_id,
                url=r.url,
                secret=bytes(r.secret),
                previous_secret=bytes(r.previous_secret) if r.previous_secret else None,
                event_id=r.event_id,
                event_type=r.event_type,
                occurred_at=r.occurred_at,
                data=r.data,
                attempt=r.attempt,
                retries=r.retries,
                lease_token=r.lease_token,
            )
            for r in rows
        ]

    def _signer(self, claimed: Claimed, sealed: bytes) -> Webhook:
        key = (claimed.endpoint_id, sealed)
        signer = self._signers.get(key)
        if signer is None:
            if len(self._signers) > 10_000:
                self._signers.clear()
            secret = self.box.open(sealed, claimed.tenant_id, claimed.endpoint_id)
            signer = self._signers[key] = Webhook(secret)
        return signer

    async def deliver(self, claimed: Claimed) -> Outcome:
        attempted_at = datetime.now(UTC)
        started = time.perf_counter()
        status: int | None = None
        error: str | None = None
        retry_after: timedelta | None = None
        if claimed.data is None or claimed.occurred_at is None:
            return self._outcome(
                claimed,
                attempted_at,
                started,
                None,
                "the event is past the feed's retention",
                final=True,
            )
        try:
            signers = [self._signer(claimed, claimed.secret)]
            if claimed.previous_secret is not None:
                signers.append(self._signer(claimed, claimed.previous_secret))
        except SecretUnreadable as exc:
            return self._outcome(claimed, attempted_at, started, None, str(exc))
        payload = msgspec.json.encode(
            WebhookEvent(
                id=claimed.event_id,
                type=claimed.event_type,
                occurred_at=claimed.occurred_at,
                data=msgspec.Raw(claimed.data.encode()),
            )
        )
        msg_id = str(claimed.event_id)
        headers = {
            "content-type": "application/json",
            "webhook-id": msg_id,
            "webhook-timestamp": str(int(attempted_at.timestamp())),
            "webhook-signature": signature_header(signers, msg_id, attempted_at, payload.decode()),
        }
        try:
            response = await self.outbound.post(
                claimed.url,
                content=payload,
                headers=headers,
                timeout=self.settings.webhook_timeout_seconds,
                max_bytes=RESPONSE_BYTES,
                truncate=True,
            )
        except OutboundError as exc:
            error = str(exc)[:ERROR_CHARS]
        else:
            status = response.status
            if not 200 <= status < 300:
                error = f"answered {status}"
                if 300 <= status < 400:
                    error += " (redirects are not followed)"
                retry_after = parse_retry_after(
                    response.headers.get("retry-after"), datetime.now(UTC)
                )
        return self._outcome(claimed, attempted_at, started, status, error, retry_after)

    def _outcome(
        self,
        claimed: Claimed,
        attempted_at: datetime,
        started: float,
        status: int | None,
        error: str | None,
        retry_after: timedelta | None = None,
        *,
        final: bool = False,
    ) -> Outcome:
        succeeded = error is None
        gone = status == 410
        next_attempt_at = None
        if not succeeded and not gone and not final:
            delay = retry_delay(claimed.retries, self.settings.webhook_retry_scale, retry_after)
            if delay is not None:
                next_attempt_at = datetime.now(UTC) + delay
        return Outcome(
            claimed=claimed,
            succeeded=succeeded,
            response_status=status,
            duration_ms=round((time.perf_counter() - started) * 1000),
            error=error,
            attempted_at=attempted_at,
            next_attempt_at=next_attempt_at,
            gone=gone,
        )

    async def record(self, outcomes: list[Outcome]) -> int:
        if not outcomes:
            return 0
        async with self.database.system_transaction() as session:
            recorded = await session.scalar(
                sa.text(
                    "SELECT webhook_record(CAST(:tenants AS uuid[]), CAST(:ids AS uuid[]), "
                    "CAST(:tokens AS uuid[]), CAST(:succeeded AS boolean[]), "
                    "CAST(:statuses AS int[]), CAST(:durations AS int[]), "
                    "CAST(:errors AS text[]), CAST(:attempted AS timestamptz[]), "
                    "CAST(:next AS timestamptz[]), CAST(:gone AS boolean[]), :disable_after)"
                ),
                {
                    "tenants": [o.claimed.tenant_id for o in outcomes],
                    "ids": [o.claimed.delivery_id for o in outcomes],
                    "tokens": [o.claimed.lease_token for o in outcomes],
                    "succeeded": [o.succeeded for o in outcomes],
                    "statuses": [o.response_status for o in outcomes],
                    "durations": [o.duration_ms for o in outcomes],
                    "errors": [o.error for o in outcomes],
                    "attempted": [o.attempted_at for o in outcomes],
                    "next": [o.next_attempt_at for o in outcomes],
                    "gone": [o.gone for o in outcomes],
                    "disable_after": DISABLE_AFTER.total_seconds(),
                },
            )
        return int(recorded or 0)

    async def run_once(self) -> int:
        """Fan out, then send everything due now and record it; how many were sent."""
        await self.fan_out()
        sent = 0
        while claimed := await self.claim(self.settings.webhook_concurrency):
            outcomes = await asyncio.gather(*(self.deliver(c) for c in claimed))
            await self.record(list(outcomes))
            sent += len(outcomes)
        return sent

    async def _deliver_into(self, claimed: Claimed, ready: asyncio.Event) -> None:
        try:
            outcome = await self.deliver(claimed)
        except Exception:  # a bug must not lose the lease's delivery: the lease runs out
            log.exception(
                "delivery failed unexpectedly", extra={"delivery": str(claimed.delivery_id)}
            )
            return
        self._done.append(outcome)
        ready.set()

    async def run(self, stop: asyncio.Event) -> None:
        """Deliver until `stop` is set; deliveries in flight then finish and are recorded."""
        in_flight: set[asyncio.Task[None]] = set()
        ready = asyncio.Event()
        poll = self.settings.webhook_poll_seconds
        last_fan_out = 0.0
        while not stop.is_set():
            try:
                if self._done:
                    done, self._done = self._done, []
                    try:
                        await self.record(done)
                    except Exception:
                        self._done = done + self._done
                        raise
                free = self.settings.webhook_concurrency - len(in_flight)
                claimed: list[Claimed] = []
                if free > 0:
                    if time.monotonic() - last_fan_out >= min(poll, 0.1):
                        last_fan_out = time.monotonic()
                        await self.fan_out()
                    claimed = await self.claim(free)
                for item in claimed:
                    task = asyncio.create_task(self._deliver_into(item, ready))
                    in_flight.add(task)
                    task.add_done_callback(in_flight.discard)
                if claimed and len(claimed) == free:
                    continue
            except Exception:
                log.exception("webhook dispatch failed; trying again")
            ready.clear()
            if self._done:
                continue
            waiters = [asyncio.ensure_future(stop.wait()), asyncio.ensure_future(ready.wait())]
            try:
                await asyncio.wait(waiters, timeout=poll, return_when=asyncio.FIRST_COMPLETED)
            finally:
                for waiter in waiters:
                    waiter.cancel()
        if in_flight:
            await asyncio.wait(in_flight, timeout=self.settings.webhook_timeout_seconds + 1)
        with contextlib.suppress(Exception):
            await self.record(self._done)
        self._done = []


async def run_webhook_deliveries(settings: Settings, stop: asyncio.Event) -> None:
    """The worker's delivery loop, with its own pool (the job runner and the scheduler leader
    keep theirs) and its own outbound client."""
    from wg_api.identity.keys import SigningKeys
    from wg_api.platform.database import resolve_admin_url

    database = Database.connect(resolve_admin_url(settings), settings)
    outbound = OutboundClient(allow_loopback=settings.outbound_allow_loopback)
    try:
        if not await _migrated(database, settings, stop):
            return
        box = SecretBox(SigningKeys.load_or_create(settings.key_file).secrets())
        await WebhookDispatcher(database, settings, outbound, box).run(stop)
    finally:
        await outbound.aclose()
        await database.dispose()


async def _migrated(database: Database, settings: Settings, stop: asyncio.Event) -> bool:
    """Wait until the worker's migration reached this code's head; False when stopped first."""
    from wg_api.platform.migrate import head_revision

    head = head_revision(settings)
    while not stop.is_set():
        with contextlib.suppress(Exception):
            async with database.system_transaction() as session:
                version = await session.scalar(sa.text("SELECT version_num FROM alembic_version"))
            if version == head:
                return True
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), settings.webhook_poll_seconds)
    return False
