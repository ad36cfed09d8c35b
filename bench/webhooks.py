"""Webhook deliveries from one worker process to a local receiver, signing included.

    python -m bench.webhooks [--endpoints 10] [--events 1000] [--database wg_bench_webhooks]

Makes its own database (`wg_bench_webhooks`, dropped at the end), `--endpoints` tenants with one
endpoint each on a receiver in another process (127.0.0.1, answers 200 at once), and writes
`--events` events into each tenant's feed. Then, in this process, one `WebhookDispatcher` (what
`wg-api worker` runs, with its defaults: 64 in flight, 8 per endpoint) delivers them all:
fan-out from the feed, leased claims, signing with `standardwebhooks`, the POST, the recorded
outcome. Timed twice:

1. healthy endpoints only;
2. the same again with one more endpoint that accepts connections and never answers (each of its
   attempts waits out the 15 s timeout), also given `--events` events.

Prints deliveries per second of the healthy endpoints in each run. Targets: at least 300/s, and
the dead endpoint does not lower the rate of the others (run 2 within 10 % of run 1).
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import multiprocessing
import os
import socket
import tempfile
import time
import uuid
from pathlib import Path

import asyncpg

from bench.generate import bench_admin_url, connect_kwargs, drop_database
from wg_api.identity import service as identity
from wg_api.identity.keys import SigningKeys
from wg_api.integrations.webhooks import service as webhooks
from wg_api.integrations.webhooks.delivery import WebhookDispatcher
from wg_api.integrations.webhooks.schemas import WebhookEndpointCreate
from wg_api.integrations.webhooks.secrets import SecretBox
from wg_api.platform.database import Database
from wg_api.platform.migrate import migrate
from wg_api.platform.outbound import OutboundClient
from wg_api.settings import Settings

DATABASE = "wg_bench_webhooks"
TARGET_PER_SECOND = 300
OK_ANSWER = b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"


async def _serve(sock: socket.socket) -> None:
    async def answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            head = await reader.readuntil(b"\r\n\r\n")
            length = 0
            for line in head.split(b"\r\n"):
                if line.lower().startswith(b"content-length:"):
                    length = int(line.split(b":", 1)[1])
            await reader.readexactly(length)
            if head.startswith(b"POST /dead"):
                await asyncio.sleep(3600)
            writer.write(OK_ANSWER)
            await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()

    server = await asyncio.start_server(answer, sock=sock, backlog=1024)
    async with server:
        await server.serve_forever()


def _receiver(sock: socket.socket) -> None:
    asyncio.run(_serve(sock))


async def _emit(admin: asyncpg.Connection, tenants: list[uuid.UUID], count: int) -> None:
    for tenant_id in tenants:
        await admin.execute(
            "INSERT INTO events (tenant_id, type, data) "
            "SELECT $1, 'finding.updated', jsonb_build_object('id', gen_random_uuid(), "
            "'title', 'Overtime beyond the legal limit', 'severity', 'major', 'n', g) "
            "FROM generate_series(1, $2) g",
            tenant_id,
            count,
        )


async def _succeeded(admin: asyncpg.Connection, tenants: list[uuid.UUID]) -> int:
    return int(
        await admin.fetchval(
            "SELECT count(*) FROM webhook_deliveries "
            "WHERE status = 'succeeded' AND tenant_id = ANY($1::uuid[])",
            tenants,
        )
    )


async def _timed_run(
    dispatcher: WebhookDispatcher,
    admin: asyncpg.Connection,
    tenants: list[uuid.UUID],
    expected: int,
) -> tuple[float, float]:
    stop = asyncio.Event()
    started = time.perf_counter()
    cpu = time.process_time()
    task = asyncio.create_task(dispatcher.run(stop))
    while await _succeeded(admin, tenants) < expected:
        if task.done():
            task.result()
            raise RuntimeError("the dispatcher stopped")
        await asyncio.sleep(0.1)
    elapsed = time.perf_counter() - started
    cpu = time.process_time() - cpu
    stop.set()
    await task
    return elapsed, cpu


async def run(endpoints: int, events: int, name: str = DATABASE) -> list[str]:
    keys_dir = Path(tempfile.mkdtemp(prefix="wg-bench-webhooks-"))
    settings = dataclasses.replace(
        Settings.from_env(),
        signing_key_file=keys_dir / "signing-keys.json",
        outbound_allow_loopback=True,
        log_level="WARNING",
    )
    sock = socket.create_server(("127.0.0.1", 0), backlog=1024)
    port = sock.getsockname()[1]
    receiver = multiprocessing.get_context("fork").Process(
        target=_receiver, args=(sock,), daemon=True
    )
    receiver.start()
    admin_url = bench_admin_url(settings, name)
    await drop_database(settings, name)
    await migrate(admin_url, settings)
    database = Database.connect(admin_url, settings)
    admin = await asyncpg.connect(**connect_kwargs(admin_url))
    outbound = OutboundClient(allow_loopback=True)
    box = SecretBox(SigningKeys.load_or_create(settings.key_file).secrets())
    try:

        async def tenant_with_endpoint(slug: str, path: str) -> uuid.UUID:
            async with database.system_transaction() as session:
                tenant = await identity.create_tenant(
                    session, slug=slug, name=slug, kind="brand", timezone="Asia/Hong_Kong"
                )
            async with database.transaction(tenant["id"]) as session:
                await webhooks.create_endpoint(
                    session,
                    outbound,
                    box,
                    tenant["id"],
                    WebhookEndpointCreate(
                        url=f"http://127.0.0.1:{port}{path}", event_types=["finding.updated"]
                    ),
                )
            tenant_id: uuid.UUID = tenant["id"]
            return tenant_id

        healthy = [await tenant_with_endpoint(f"ok-{i}", f"/ok/{i}") for i in range(endpoints)]
        dispatcher = WebhookDispatcher(database, settings, outbound, box)
        expected = endpoints * events
        await _emit(admin, healthy, events)
        first, first_cpu = await _timed_run(dispatcher, admin, healthy, expected)

        dead = await tenant_with_endpoint("dead", "/dead")
        await _emit(admin, [dead], events)
        await _emit(admin, healthy, events)
        second, second_cpu = await _timed_run(dispatcher, admin, healthy, 2 * expected)
        dead_tried = int(
            await admin.fetchval(
                "SELECT count(*) FROM webhook_deliveries WHERE tenant_id = $1 "
                "AND status <> 'pending'",
                dead,
            )
        )
    finally:
        await admin.close()
        await outbound.aclose()
        await database.dispose()
        await drop_database(settings, name)
        receiver.kill()
    rate_1, rate_2 = expected / first, expected / second
    load = os.getloadavg()[0]
    return [
        f"{endpoints} endpoints x {events} events, one dispatcher "
        f"(concurrency {settings.webhook_concurrency}, "
        f"{settings.webhook_endpoint_concurrency} per endpoint); load average {load:.1f} "
        f"on {os.cpu_count()} cores",
        f"healthy endpoints only:          {rate_1:8.0f} deliveries/s   "
        f"(target >= {TARGET_PER_SECOND}/s; {expected} in {first:.1f} s; the worker process "
        f"used {1000 * first_cpu / expected:.2f} ms of CPU per delivery, "
        f"{expected / first_cpu:.0f}/s per CPU-second)",
        f"with one dead endpoint beside:   {rate_2:8.0f} deliveries/s   "
        f"(target: within 10 % of the above, >= {0.9 * rate_1:.0f}/s; {expected} in "
        f"{second:.1f} s; {1000 * second_cpu / expected:.2f} ms of CPU per delivery; the dead "
        f"endpoint had {dead_tried} attempts end meanwhile)",
    ]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--endpoints", type=int, default=10)
    parser.add_argument("--events", type=int, default=1000)
    parser.add_argument("--database", default=DATABASE, help="the database it makes and drops")
    args = parser.parse_args(argv)
    for text in asyncio.run(run(args.endpoints, args.events, args.database)):
        print(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
