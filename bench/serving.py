"""Which HTTP server serves wg-api: uvicorn (uvloop + httptools) against granian, each with the
same worker processes, measured on a trivial ASGI app (the serving ceiling: nothing but the
server) and on wg-api's /healthz and /v1/me, under the same wrk load.

    uv run python -m bench.serving                          # uvicorn only (granian absent)
    uv run --with granian python -m bench.serving           # both
    uv run python -m bench.serving --duration 20 --workers 2

Needs the bench data set (`python -m bench.generate`, or one `make bench`) for /v1/me.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib.util
import os
import sys
import tempfile
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from bench.generate import BIG_TENANT_SLUG, bench_admin_url, bench_clients, libpq_url
from bench.run import (
    HOST,
    WRK_REPORT,
    Endpoint,
    Load,
    Options,
    Server,
    free_port,
    get_token,
    measure,
    start_server,
    wait_until_settled,
    wrk_path,
)
from wg_api.cli import SERVERS, default_workers
from wg_api.settings import Settings

BODY = b'{"status":"ok"}'


def trivial_app() -> Callable[..., Awaitable[None]]:
    """The serving ceiling: an ASGI app that answers a fixed JSON body and does nothing else."""

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "lifespan":
            while (await receive())["type"] != "lifespan.shutdown":
                await send({"type": "lifespan.startup.complete"})
            await send({"type": "lifespan.shutdown.complete"})
            return
        await send(
            {
                "type": "http.response.start",
                "status": 200,
                "headers": [(b"content-type", b"application/json")],
            }
        )
        await send({"type": "http.response.body", "body": BODY})

    return app


def _serve_command(module: str, target: str | None, port: int, options: Options) -> list[str]:
    command = [sys.executable, "-m", module]
    if target is not None:
        command += [target]
    return [
        *command,
        "--host",
        HOST,
        "--port",
        str(port),
        "--workers",
        str(options.workers),
        "--server",
        options.server,
    ]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.serving", description=__doc__)
    parser.add_argument("--duration", type=float, default=10.0)
    parser.add_argument("--warmup", type=float, default=2.0)
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--workers", type=int, default=0)
    args = parser.parse_args(argv)
    wrk_path()
    settings = Settings.from_env()
    admin_url = bench_admin_url(settings)
    credentials = asyncio.run(bench_clients(admin_url, settings, [BIG_TENANT_SLUG]))[
        BIG_TENANT_SLUG
    ]
    kinds = [k for k in SERVERS if k == "uvicorn" or importlib.util.find_spec(k) is not None]
    results: list[tuple[str, str, Load | str]] = []
    load_before = os.getloadavg()[0]
    for kind in kinds:
        options = Options(
            args.duration,
            args.warmup,
            args.connections,
            workers=args.workers or default_workers(),
            server=kind,
        )
        with tempfile.TemporaryDirectory(prefix="wg-serving-") as tmp:
            workdir = Path(tmp)
            script = workdir / "report.lua"
            script.write_text(WRK_REPORT)
            env = {
                **os.environ,
                "DATABASE_URL": libpq_url(admin_url),
                "WG_DATA_DIR": str(workdir),
                "WG_LOG_LEVEL": "WARNING",
                "WG_RATE_LIMIT_PER_MINUTE": str(10**9),
                "WG_TOKEN_TTL_SECONDS": "3600",
            }
            ceiling_port, real_port = free_port(), free_port()
            env["WG_PUBLIC_URL"] = f"http://{HOST}:{real_port}"
            started: list[Server] = []
            try:
                started.append(
                    start_server(
                        f"trivial-{kind}",
                        _serve_command("bench.serving_ceiling", None, ceiling_port, options),
                        env,
                        ceiling_port,
                        workdir,
                    )
                )
                started.append(
                    start_server(
                        f"wg-api-{kind}",
                        _serve_command("wg_api.cli", "serve", real_port, options),
                        env,
                        real_port,
                        workdir,
                    )
                )
                trivial, real = started
                for server in started:
                    server.wait_until_idle()
                token = get_token(real, credentials.client_id, credentials.client_secret)

                def settle() -> None:
                    wait_until_settled(admin_url)

                lines = [
                    (trivial, Endpoint("trivial", "/healthz", None, auth=False), {}),
                    (real, Endpoint("healthz", "/healthz", None, auth=False), {}),
                    (
                        real,
                        Endpoint("me", "/v1/me", None),
                        {"Authorization": f"Bearer {token}"},
                    ),
                ]
                for server, endpoint, headers in lines:
                    load = measure(
                        server, endpoint, endpoint.path, headers, options, script, settle
                    )
                    results.append((kind, endpoint.name, load))
                    print(f"  {kind} {endpoint.name}: {load}", flush=True)
            finally:
                for server in started:
                    server.stop()
    print()
    print(
        f"{args.connections} connections, {args.duration:g} s after {args.warmup:g} s warm-up, "
        f"{args.workers or default_workers()} worker(s) per server; {os.cpu_count()} cores, "
        f"load average {load_before:.2f} before (other work) and {os.getloadavg()[0]:.2f} after"
    )
    print("| server | app | req/s | p50 ms | p99 ms | errors | CPU µs/req | worker RSS MB |")
    print("|---|---|---:|---:|---:|---:|---:|---:|")
    for kind, name, load in results:
        if isinstance(load, str):
            print(f"| {kind} | {name} | {load} | | | | | |")
            continue
        print(
            f"| {kind} | {name} | {load.rps:,.0f} | {load.p50_ms:.1f} | {load.p99_ms:.1f} | "
            f"{load.errors} | {load.cpu_us:,.0f} | {load.rss_mb:.0f} |"
        )
    if len(kinds) == 1:
        print("granian is not installed: `uv run --with granian python -m bench.serving`")
    return 0


if __name__ == "__main__":
    sys.exit(main())
