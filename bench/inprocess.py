"""The app's own CPU per request, with no server and no load tool: the profile to read first.

`make bench` measures whole servers on a machine they share with PostgreSQL and wrk; a wall-clock
sampler there (py-spy) bills the time a worker waits for a core to whichever socket call it was
in. Here requests go one after another straight into the ASGI app, in this process, against the
bench's data set: `time.process_time()` per request is the app's cost (middleware, Litestar,
SQLAlchemy, asyncpg's side of the round trips), and `--profile` ranks functions by CPU time
(cProfile on the process clock: its own overhead about doubles the total, so read the ranks,
not the absolute figures). It also counts the collector's passes and their longest pause.
`--concurrency N` keeps N requests in flight instead of one (a worker under `make bench` has about
16, more than its pool's 10 connections): what waiting for a connection costs shows then.

    uv run --frozen python -m bench.inprocess /v1/me /v1/findings --requests 3000
    uv run --frozen python -m bench.inprocess /v1/findings --profile --top 40
    uv run --frozen python -m bench.inprocess me shared-findings --ceiling --concurrency 16

Paths may use the data set's `{tenant_id}` and `{group_id}`. Start the bench's data set first
(`make bench` generates it; `python -m bench.generate`).
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import cProfile
import gc
import json
import os
import pstats
import sys
import tempfile
import time
from typing import Any

from bench.generate import (
    BENCH_DATABASE,
    BIG_TENANT_SLUG,
    bench_admin_url,
    bench_clients,
    libpq_url,
)
from bench.run import ENDPOINTS, dataset_context
from wg_api.settings import Settings

Message = dict[str, Any]


async def call(
    app: Any, method: str, target: str, headers: list[tuple[bytes, bytes]], body: bytes = b""
) -> tuple[int, bytes]:
    path, _, query = target.partition("?")
    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": method,
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "query_string": query.encode(),
        "root_path": "",
        "headers": [(b"host", b"127.0.0.1:8000"), *headers],
        "client": ("127.0.0.1", 50000),
        "server": ("127.0.0.1", 8000),
        "state": {},
    }
    sent = False

    async def receive() -> Message:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        await asyncio.sleep(3600)
        return {"type": "http.disconnect"}

    out: list[Message] = []

    async def send(message: Message) -> None:
        out.append(message)

    await app(scope, receive, send)
    return out[0]["status"], b"".join(m.get("body", b"") for m in out[1:])


class GcWatch:
    """Passes of the garbage collector per generation, and the longest pause."""

    def __init__(self) -> None:
        self.passes = [0, 0, 0]
        self.longest_ms = 0.0
        self._started = 0.0
        gc.callbacks.append(self._callback)

    def _callback(self, phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            self._started = time.perf_counter()
            return
        self.passes[info["generation"]] += 1
        self.longest_ms = max(self.longest_ms, (time.perf_counter() - self._started) * 1000)

    def reset(self) -> None:
        self.passes, self.longest_ms = [0, 0, 0], 0.0


async def lifespan(app: Any) -> tuple[asyncio.Task[None], asyncio.Queue[Message]]:
    queue: asyncio.Queue[Message] = asyncio.Queue()
    await queue.put({"type": "lifespan.startup"})
    started = asyncio.Event()

    async def send(message: Message) -> None:
        if message["type"] == "lifespan.startup.complete":
            started.set()
        elif message["type"].endswith("failed"):
            raise SystemExit(message.get("message", "start-up failed"))

    task = asyncio.create_task(
        app({"type": "lifespan", "asgi": {"version": "3.0"}, "state": {}}, queue.get, send)
    )
    await started.wait()
    return task, queue


async def measure(
    app: Any,
    path: str,
    headers: list[tuple[bytes, bytes]],
    watch: GcWatch,
    options: argparse.Namespace,
    label: str,
) -> float | None:
    """CPU µs per request of GET `path`, one request at a time (printed; None if not 200)."""
    for _ in range(200):
        status, body = await call(app, "GET", path, headers)
    if status != 200:
        print(f"{label}: answers {status}: {body[:300]!r}")
        return None
    watch.reset()
    # In rounds, keeping the least CPU per request: on a shared machine a round that lost its
    # core's caches or frequency to a neighbour only ever costs more.
    rounds: list[tuple[float, float]] = []
    each = max(1, options.requests // options.rounds)
    # `--concurrency` requests in flight at once, as a loaded worker has them (a server's worker
    # under `make bench` holds about 16): what waiting for a pooled connection costs shows here.
    share = max(1, each // options.concurrency)
    each = share * options.concurrency

    async def one_after_another() -> None:
        for _ in range(share):
            await call(app, "GET", path, headers)

    for _ in range(options.rounds):
        cpu, wall = time.process_time(), time.perf_counter()
        await asyncio.gather(*(one_after_another() for _ in range(options.concurrency)))
        rounds.append(((time.process_time() - cpu) / each, (time.perf_counter() - wall) / each))
    cpu, wall = min(rounds)
    per_request: float = cpu * 1e6
    spread = sorted(r[0] * 1e6 for r in rounds)
    print(
        f"{label}: {per_request:,.0f} µs CPU per request (least of {options.rounds} rounds, "
        f"median {spread[len(spread) // 2]:,.0f}; {wall * 1e6:,.0f} µs wall, "
        f"{options.concurrency} at a time); "
        f"collector passes {watch.passes}, longest {watch.longest_ms:.1f} ms"
    )
    if options.profile:
        profile = cProfile.Profile(time.process_time)
        profile.enable()
        await asyncio.gather(*(one_after_another() for _ in range(options.concurrency)))
        profile.disable()
        if options.dump:
            profile.dump_stats(options.dump)
        stats = pstats.Stats(profile).stats  # type: ignore[attr-defined]
        total = sum(entry[2] for entry in stats.values())
        print(f"  profiled: {total / each * 1e6:,.0f} µs CPU per request")
        print("  self µs  cum µs  calls/req  function")
        ranked = sorted(stats.items(), key=lambda item: -item[1][2])[: options.top]
        per = 1e6 / each
        for (file, line, name), (_, calls, own, cumulative, _) in ranked:
            where = file.split("site-packages/")[-1].replace(os.getcwd() + "/", "")
            print(
                f"  {own * per:7.1f} {cumulative * per:7.1f} {calls / each:9.1f}"
                f"  {where}:{line} {name}"
            )
    return per_request


async def main(options: argparse.Namespace) -> None:
    settings = Settings.from_env()
    admin_url = bench_admin_url(settings, options.database)
    context = await dataset_context(admin_url)
    credentials = (await bench_clients(admin_url, settings, [BIG_TENANT_SLUG]))[BIG_TENANT_SLUG]
    os.environ.update(
        {
            "DATABASE_URL": libpq_url(admin_url),
            "WG_DATA_DIR": tempfile.mkdtemp(prefix="wg-inprocess-"),
            "WG_LOG_LEVEL": "WARNING",
            "WG_RATE_LIMIT_PER_MINUTE": str(10**9),
            "WG_TOKEN_TTL_SECONDS": "3600",
        }
    )
    from wg_api.app import asgi_app

    # As `wg-api serve` makes it (start-up's objects frozen: wg_api.app.freeze_heap).
    app = asgi_app(Settings.from_env(), freeze_after_startup=True)
    task, queue = await lifespan(app)
    await asyncio.sleep(3)  # the Chinese dictionary loads in a thread after start-up
    basic = base64.b64encode(f"{credentials.client_id}:{credentials.client_secret}".encode())
    status, body = await call(
        app,
        "POST",
        "/oauth/token",
        [
            (b"authorization", b"Basic " + basic),
            (b"content-type", b"application/x-www-form-urlencoded"),
        ],
        b"grant_type=client_credentials",
    )
    if status != 200:
        raise SystemExit(f"no token: {status} {body[:300]!r}")
    headers = [(b"authorization", f"Bearer {json.loads(body)['access_token']}".encode())]
    watch = GcWatch()
    named = {endpoint.name: endpoint for endpoint in ENDPOINTS}
    ceiling_app = ceiling_task = None
    if options.ceiling:
        from bench.ceiling import create_app

        ceiling_app = create_app(Settings.from_env(), freeze_after_startup=True)
        ceiling_task, ceiling_queue = await lifespan(ceiling_app)
    for template in options.paths:
        endpoint = named.get(template)
        path = (endpoint.path if endpoint else template).format(**context)
        real = await measure(app, path, headers, watch, options, template)
        if ceiling_app is None or endpoint is None or endpoint.ceiling is None:
            continue
        ceiling = await measure(
            ceiling_app, endpoint.ceiling.format(**context), [], watch, options, "  ceiling"
        )
        if real and ceiling:
            print(f"  CPU ratio (ceiling / real): {ceiling / real:.0%}")
    if ceiling_task is not None:
        await ceiling_queue.put({"type": "lifespan.shutdown"})
        await ceiling_task
    await queue.put({"type": "lifespan.shutdown"})
    await task


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.inprocess", description=__doc__)
    parser.add_argument(
        "paths", nargs="+", help="GET paths, e.g. /v1/me, or `make bench`'s line names, e.g. me"
    )
    parser.add_argument(
        "--ceiling",
        action="store_true",
        help="also run each named line's ceiling (bench/ceiling.py) in-process, and compare",
    )
    parser.add_argument("--requests", type=int, default=3000)
    parser.add_argument("--rounds", type=int, default=5, help="the least round is printed")
    parser.add_argument(
        "--concurrency", type=int, default=1, help="requests in flight at once (default 1)"
    )
    parser.add_argument("--profile", action="store_true", help="then rank functions by CPU time")
    parser.add_argument("--top", type=int, default=40)
    parser.add_argument("--dump", help="with --profile: write the profile there (pstats)")
    parser.add_argument("--database", default=BENCH_DATABASE)
    return parser.parse_args(argv)


if __name__ == "__main__":
    import uvloop

    options = parse_args(sys.argv[1:])
    uvloop.run(main(options))
