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
import logging
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime

import sqlalchemy as sa

from wg_api.platform.asgi import ASGIApp, Message, Receive, Scope, Send, send_problem
from wg_api.platform.database import Database
from wg_api.platform.errors import RateLimited

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
        tenant_id = getattr(scope.get("user"), "tenant_id", None)
        if scope["type"] != "http" or tenant_id is None:
            await self.app(scope, receive, send)
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

        await self.app(scope, receive, send_with_headers)
