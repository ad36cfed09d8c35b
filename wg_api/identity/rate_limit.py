"""Per-tenant rate limits shared by every API replica.

The counters live in PostgreSQL (one row per bucket and minute, behind `rate_limit_hit`): it is
already the one store all replicas share, so no Redis is needed. To keep it off the hot path, each
replica counts locally and adds its counts to PostgreSQL once a second, reading back the total of
all replicas; a request is refused when that total plus the local unsent count reaches the limit.
Replicas can therefore overshoot by at most one second of traffic. Old windows are deleted by the
worker's `purge-rate-limit-windows` job.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import ipaddress
import logging
import math
import time
from collections import OrderedDict
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime

import sqlalchemy as sa

from wg_api.identity.access import check_access
from wg_api.platform.asgi import ASGIApp, Message, Receive, Scope, Send, send_problem
from wg_api.platform.database import Database
from wg_api.platform.errors import Forbidden, RateLimited, TryAgain, Unauthorized
from wg_api.settings import Settings

log = logging.getLogger("wg_api.rate_limit")

WINDOW_SECONDS = 60


@dataclass
class _Bucket:
    window: int
    known_total: int = 0
    unsent: int = 0


@dataclass
class Decision:
    allowed: bool
    limit: int
    remaining: int
    reset_seconds: int


@dataclass
class RateLimiter:
    database: Database
    flush_seconds: float = 1.0
    clock: Callable[[], float] = time.time
    _buckets: dict[str, _Bucket] = field(default_factory=dict)
    _task: asyncio.Task[None] | None = None
    _flush_lock: asyncio.Lock = field(default_factory=asyncio.Lock)

    def hit(self, bucket: str, limit: int, now: float | None = None) -> Decision:
        now = self.clock() if now is None else now
        window = int(now // WINDOW_SECONDS)
        state = self._buckets.get(bucket)
        if state is None or state.window != window:
            state = self._buckets[bucket] = _Bucket(window=window)
        used = state.known_total + state.unsent
        reset = max(1, math.ceil((window + 1) * WINDOW_SECONDS - now))
        if used >= limit:
            return Decision(False, limit, 0, reset)
        state.unsent += 1
        return Decision(True, limit, max(0, limit - used - 1), reset)

    async def flush(self) -> None:
        """Add local counts to the shared windows and learn every replica's total."""
        async with self._flush_lock:  # the timer and an explicit call must not send twice
            await self._flush()

    async def _flush(self) -> None:
        # Sorted, so two replicas lock the same rows in the same order and never deadlock.
        pending = sorted((key, b.window, b.unsent) for key, b in self._buckets.items())
        if not pending:
            return
        current = int(self.clock() // WINDOW_SECONDS)
        async with self.database.transaction() as session:
            for key, window, unsent in pending:
                if window < current and unsent == 0:
                    self._buckets.pop(key, None)
                    continue
                started = datetime.fromtimestamp(window * WINDOW_SECONDS, UTC)
                total = await session.scalar(
                    sa.text("SELECT rate_limit_hit(:bucket, :window_start, :hits)"),
                    {"bucket": key, "window_start": started, "hits": unsent},
                )
                state = self._buckets.get(key)
                if state is not None and state.window == window:
                    state.unsent -= unsent
                    state.known_total = int(total or 0)

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(self.flush_seconds)
            try:
                await self.flush()
            except Exception:
                log.exception("rate limit flush failed")

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._run())

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        with contextlib.suppress(Exception):
            await self.flush()


def rate_limit_headers(decision: Decision) -> list[tuple[bytes, bytes]]:
    headers = [
        (b"ratelimit-limit", str(decision.limit).encode()),
        (b"ratelimit-remaining", str(decision.remaining).encode()),
        (b"ratelimit-reset", str(decision.reset_seconds).encode()),
        (b"ratelimit-policy", f"{decision.limit};w={WINDOW_SECONDS}".encode()),
    ]
    if not decision.allowed:
        headers.append((b"retry-after", str(decision.reset_seconds).encode()))
    return headers


LIMITER_STATE_KEY = "rate_limiter"


class TenantRateLimitMiddleware:
    """Sits after authentication: counts each request against the caller's tenant."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        tenant_id = getattr(scope.get("user"), "tenant_id", None)
        if tenant_id is None:
            # Every /v1 principal has a tenant; were one without, it would still be checked.
            await _checked(self.app, scope, receive, send)
            return
        app_state = scope["litestar_app"].state
        limiter: RateLimiter = app_state[LIMITER_STATE_KEY]
        decision = limiter.hit(f"tenant:{tenant_id}", app_state["settings"].rate_limit_per_minute)
        headers = rate_limit_headers(decision)
        if not decision.allowed:
            error = RateLimited(
                f"The tenant's limit of {decision.limit} requests a minute is reached."
            )
            error.headers.update({k.decode(): v.decode() for k, v in headers})
            await send_problem(send, error)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                message = {**message, "headers": [*message.get("headers", []), *headers]}
            await send(message)

        # The route's required scope and role, counted against the budget like any request.
        await _checked(self.app, scope, receive, send_with_headers)


async def _checked(app: ASGIApp, scope: Scope, receive: Receive, send: Send) -> None:
    """The route, if the caller has the access it requires (`check_access`); else 401 or 403."""
    try:
        check_access(scope.get("user"), scope.get("route_handler"))
    except (Forbidden, Unauthorized) as refused:
        await send_problem(send, refused)
        return
    await app(scope, receive, send)


# ---- before authentication ----------------------------------------------------------------------

UNAUTHENTICATED_STATE_KEY = "unauthenticated_gate"
MAX_TRACKED_KEYS = 65_536
DB_SLOT_WAIT_SECONDS = 2.0


class TokenBuckets:
    """Token buckets in this process's memory, one per key, at most `max_entries` of them.

    A bucket holds up to `per_minute` tokens and refills continuously. When the table is full the
    least recently used bucket goes: memory stays bounded however many addresses call, and an
    evicted bucket only comes back full (it never lets anyone over `per_minute` for long).
    """

    def __init__(
        self,
        per_minute: int,
        *,
        max_entries: int = MAX_TRACKED_KEYS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.capacity = float(max(1, per_minute))
        self.rate = self.capacity / WINDOW_SECONDS
        self.max_entries = max_entries
        self.clock = clock
        self._buckets: OrderedDict[str, tuple[float, float]] = OrderedDict()

    def _level(self, key: str) -> float:
        now = self.clock()
        tokens, updated = self._buckets.get(key, (self.capacity, now))
        return min(self.capacity, tokens + (now - updated) * self.rate)

    def _set(self, key: str, tokens: float) -> None:
        self._buckets[key] = (tokens, self.clock())
        self._buckets.move_to_end(key)
        while len(self._buckets) > self.max_entries:
            self._buckets.popitem(last=False)

    def wait(self, key: str) -> int:
        """Seconds until `key` has a token (0: it has one now); takes nothing."""
        level = self._level(key)
        return 0 if level >= 1 else max(1, math.ceil((1 - level) / self.rate))

    def take(self, key: str) -> int:
        """Take a token: 0 when taken, else the seconds until one is there (nothing taken)."""
        level = self._level(key)
        if level < 1:
            return max(1, math.ceil((1 - level) / self.rate))
        self._set(key, level - 1)
        return 0

    def give_back(self, key: str) -> None:
        if key in self._buckets:
            self._set(key, min(self.capacity, self._level(key) + 1))

    def __len__(self) -> int:
        return len(self._buckets)


def client_address(scope: Scope) -> str:
    """The caller's address as limits count it: IPv4 as is, IPv6 by its /64 (one host's share)."""
    client = scope.get("client")
    return _counted_address(client[0] if client else "")


@functools.lru_cache(maxsize=4096)  # a client's requests come from one address
def _counted_address(host: str) -> str:
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return host or "unknown"
    if isinstance(address, ipaddress.IPv6Address):
        if address.ipv4_mapped is not None:
            return str(address.ipv4_mapped)
        return str(ipaddress.IPv6Network((address, 64), strict=False))
    return str(address)


class UnauthenticatedGate:
    """What a caller who has not proven who it is may cost, counted before the database.

    - `addresses`: every failed authentication, and every database lookup made before the caller
      is known (an unknown issuer, a token request's client), takes a token of the caller's
      address; a caller that then authenticates gets it back. An empty bucket answers 429.
    - `token_failures`: failed token requests per (address, client id), so a stranger guessing a
      client's secret is stopped without touching that client's own budget.
    - `db_slots`: at most a quarter of the pool serves lookups for unknown callers at once.
    """

    def __init__(self, settings: Settings, clock: Callable[[], float] = time.monotonic) -> None:
        self.addresses = TokenBuckets(settings.unauthenticated_per_minute, clock=clock)
        self.token_failures = TokenBuckets(settings.token_failures_per_minute, clock=clock)
        self._slots = asyncio.Semaphore(max(1, settings.db_pool_size // 4))

    def spend(self, address: str) -> None:
        """Take a token of `address` for work before authentication, or refuse with 429."""
        if wait := self.addresses.take(address):
            raise too_many_unauthenticated(wait)

    @contextlib.asynccontextmanager
    async def db_slot(self) -> AsyncIterator[None]:
        try:
            await asyncio.wait_for(self._slots.acquire(), DB_SLOT_WAIT_SECONDS)
        except TimeoutError as exc:
            raise TryAgain(
                "Too many unauthenticated requests are waiting; try again.",
                headers={"Retry-After": "1"},
            ) from exc
        try:
            yield
        finally:
            self._slots.release()


def too_many_unauthenticated(wait: int) -> RateLimited:
    return RateLimited(
        "Too many unauthenticated or failed requests from this address.",
        headers={"Retry-After": str(wait)},
    )
