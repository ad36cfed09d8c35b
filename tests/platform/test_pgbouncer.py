"""The service through PgBouncer in transaction mode (`WG_DB_PGBOUNCER=true`).

A PgBouncer started by the test (skipped when the `pgbouncer` binary is absent) stands in front of
the test database with fewer server connections than the app has client connections, so
consecutive transactions of one client connection run on different server connections and the
two tenants' transactions share server connections. Two tenants write and read findings
interleaved: every request answers, each tenant sees only its own rows (the tenant is bound per
transaction), and no prepared statement is ever reused or clashes. A control shows that the
driver's defaults do clash through the same PgBouncer.
"""

from __future__ import annotations

import asyncio
import dataclasses
import os
import pwd
import re
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import sqlalchemy as sa
from sqlalchemy.engine import URL

from tests.conftest import serve_in_loop
from tests.findings.conftest import finding_body
from tests.suppliers.conftest import new_supplier
from wg_api.app import asgi_app
from wg_api.platform.database import Database, make_engine
from wg_api.settings import Settings

SEARCH_PATH = f"{os.environ.get('PATH', '')}:/usr/sbin:/usr/local/sbin"
PGBOUNCER = shutil.which("pgbouncer", path=SEARCH_PATH)
SERVER_CONNECTIONS = 2

pytestmark = pytest.mark.skipif(PGBOUNCER is None, reason="the pgbouncer binary is not installed")


def _version(binary: str) -> tuple[int, int]:
    out = subprocess.run([binary, "--version"], capture_output=True, text=True, check=True).stdout
    match = re.search(r"PgBouncer (\d+)\.(\d+)", out)
    assert match, out
    return int(match[1]), int(match[2])


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def _server_address(admin_url: URL) -> tuple[str, int]:
    host = admin_url.query.get("host") or admin_url.host or "127.0.0.1"
    if isinstance(host, tuple):
        host = host[0]
    return str(host), int(admin_url.port or 5432)


@pytest.fixture(scope="module")
def pgbouncer(admin_url: URL, settings: Settings, database: Database) -> Iterator[URL]:
    """A PgBouncer in transaction mode in front of the test database; answers its URL."""
    assert PGBOUNCER is not None
    # Not under pytest's own temporary directory: as root, PgBouncer runs as another user, who
    # may not enter that one.
    directory = Path(tempfile.mkdtemp(prefix="wg-pgbouncer-"))
    host, port = _server_address(admin_url)
    listen = _free_port()
    users = directory / "users.txt"
    users.write_text(
        "".join(f'"{role}" ""\n' for role in (settings.app_role, settings.system_role))
    )
    lines = [
        "[databases]",
        f"{admin_url.database} = host={host} port={port} dbname={admin_url.database}",
        "[pgbouncer]",
        "listen_addr = 127.0.0.1",
        f"listen_port = {listen}",
        "unix_socket_dir =",
        "auth_type = trust",
        f"auth_file = {users}",
        "pool_mode = transaction",
        f"default_pool_size = {SERVER_CONNECTIONS}",
        "max_client_conn = 50",
        f"logfile = {directory / 'pgbouncer.log'}",
        f"pidfile = {directory / 'pgbouncer.pid'}",
    ]
    if _version(PGBOUNCER) >= (1, 21):
        # Newer PgBouncers can track protocol-level prepared statements; this test shows the
        # service needs no such help, so it is off.
        lines.append("max_prepared_statements = 0")
    config = directory / "pgbouncer.ini"
    config.write_text("\n".join(lines) + "\n")
    command = [PGBOUNCER, str(config)]
    if os.geteuid() == 0:
        # PgBouncer refuses to run as root: run it as the database server's user, who may also
        # reach the server's socket directory.
        owner = Path(host).stat().st_uid if host.startswith("/") else pwd.getpwnam("nobody").pw_uid
        os.chown(directory, owner, -1)
        for path in (users, config):
            path.chmod(0o644)
        command[1:1] = ["-u", pwd.getpwuid(owner).pw_name]
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 15
        while True:
            try:
                socket.create_connection(("127.0.0.1", listen), timeout=1).close()
                break
            except OSError:
                if process.poll() is not None or time.monotonic() > deadline:
                    log = directory / "pgbouncer.log"
                    detail = log.read_text() if log.exists() else ""
                    stderr = ""
                    if process.poll() is not None and process.stderr is not None:
                        stderr = process.stderr.read().decode()
                    raise RuntimeError(
                        f"pgbouncer did not start: {stderr[-2000:]} {detail[-2000:]}"
                    ) from None
                time.sleep(0.05)
        yield URL.create(
            "postgresql+asyncpg", host="127.0.0.1", port=listen, database=admin_url.database
        )
    finally:
        process.terminate()
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(10)
        shutil.rmtree(directory, ignore_errors=True)


@pytest.fixture
async def bouncer_client(
    pgbouncer: URL, settings: Settings, database: Database
) -> AsyncIterator[httpx.AsyncClient]:
    through = dataclasses.replace(
        settings,
        app_database_url=pgbouncer.set(username=settings.app_role).render_as_string(False),
        system_database_url=pgbouncer.set(username=settings.system_role).render_as_string(False),
        db_pgbouncer=True,
        db_pool_size=4,
    )
    bounced = Database.connect(database.admin_url, through)
    try:
        async with serve_in_loop(asgi_app(through, bounced)) as http:
            yield http
    finally:
        await bounced.dispose()


async def test_two_tenants_interleaved_through_transaction_pooling(
    bouncer_client, client, make_tenant
):
    tenants = [await make_tenant(), await make_tenant()]
    headers = [await t.headers() for t in tenants]
    suppliers = [(await new_supplier(client, h))["id"] for h in headers]

    async def tenant_work(index: int) -> list[str]:
        """Create findings and read them back through PgBouncer, one request after the other."""
        created = []
        for round_ in range(6):
            body = finding_body(suppliers[index], title=f"Finding {round_} of tenant {index}")
            response = await bouncer_client.post("/v1/findings", json=body, headers=headers[index])
            assert response.status_code == 201, response.text
            created.append(response.json()["id"])
            listed = await bouncer_client.get("/v1/findings", headers=headers[index])
            assert listed.status_code == 200, listed.text
            ids = {item["id"] for item in listed.json()["items"]}
            assert set(created) <= ids
            me = await bouncer_client.get("/v1/me", headers=headers[index])
            assert me.status_code == 200, me.text
            assert me.json()["tenant"]["id"] == str(tenants[index].id)
        return created

    # Four streams (two per tenant) over four client connections and two server connections.
    results = await asyncio.gather(*(tenant_work(i % 2) for i in range(4)))
    mine = [set(results[0]) | set(results[2]), set(results[1]) | set(results[3])]
    assert len(mine[0]) == len(mine[1]) == 12
    for index, other in ((0, 1), (1, 0)):
        listed = await bouncer_client.get(
            "/v1/findings", params={"limit": 100}, headers=headers[index]
        )
        ids = {item["id"] for item in listed.json()["items"]}
        assert ids == mine[index]
        assert not ids & mine[other]
        for finding_id in mine[other]:
            response = await bouncer_client.get(
                f"/v1/findings/{finding_id}", headers=headers[index]
            )
            assert response.status_code == 404


async def _run_concurrently(engine: Any) -> None:
    """The same statements, over and over, from four client connections: a statement prepared
    on one server connection is asked for again in a later transaction, which PgBouncer may
    run on the other server connection."""

    async def one(worker: int) -> None:
        for round_ in range(10):
            async with engine.begin() as conn:
                total = await conn.scalar(sa.text("SELECT CAST(:n AS int) + 1"), {"n": round_})
                assert total == round_ + 1
                await conn.execute(sa.text("SELECT pg_backend_pid()"))

    await asyncio.gather(*(one(worker) for worker in range(4)))


async def test_the_pgbouncer_setting_is_what_makes_prepared_statements_survive(
    pgbouncer: URL, settings: Settings
):
    url = pgbouncer.set(username=settings.app_role)
    bounced = make_engine(url, pool_size=4, max_overflow=0, pgbouncer=True)
    try:
        await asyncio.wait_for(_run_concurrently(bounced), 20)
        # Nothing is left behind on the server connections (each answers in turn).
        for _ in range(2 * SERVER_CONNECTIONS):
            async with bounced.begin() as conn:
                left = await conn.scalar(sa.text("SELECT count(*) FROM pg_prepared_statements"))
                assert left == 0
    finally:
        await bounced.dispose()

    plain = make_engine(url, pool_size=4, max_overflow=0, pgbouncer=False)
    try:
        with pytest.raises(Exception, match="prepared statement"):
            await asyncio.wait_for(_without_the_setting(plain), 60)
    finally:
        await plain.dispose()


async def _without_the_setting(engine: Any) -> None:
    await _statement_on_another_server(engine)
    for _ in range(5):
        await _run_concurrently(engine)


async def _statement_on_another_server(engine: Any) -> None:
    """A statement prepared in one transaction, asked for again while another client holds the
    server connection it was prepared on (PgBouncer hands out the server used last first)."""
    statement = sa.text("SELECT CAST(:n AS int) + 1")
    async with engine.connect() as mine, engine.connect() as other:
        await mine.execute(statement, {"n": 1})
        await mine.commit()
        await other.execute(sa.text("SELECT pg_backend_pid()"))  # holds that server connection
        await mine.execute(statement, {"n": 2})
        await mine.commit()
        await other.commit()
