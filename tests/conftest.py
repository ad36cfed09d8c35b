"""Test harness: one real PostgreSQL database per test process, the app served in-process.

With DATABASE_URL set the tests use that server; otherwise the embedded one under
.wg-data/test-postgres. Each run (and each xdist worker) gets its own database, dropped at the end.
Tests isolate themselves by creating their own tenants.
"""

from __future__ import annotations

import base64
import contextlib
import dataclasses
import os
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import hypothesis
import pytest
import sqlalchemy as sa
from asgi_lifespan import LifespanManager
from sqlalchemy.engine import URL
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from wg_api.app import asgi_app
from wg_api.cli import load_domain_tasks
from wg_api.identity import service
from wg_api.identity.keys import SigningKeys
from wg_api.platform.database import Database, make_engine, resolve_admin_url
from wg_api.platform.migrate import migrate
from wg_api.platform.pagination import CursorCipher
from wg_api.settings import PROJECT_ROOT, Settings

TEST_DATA_DIR = PROJECT_ROOT / ".wg-data" / "test"

# The job registry holds every domain's jobs, as in `wg-api worker`.
load_domain_tasks()

# Property tests draw new examples on every run, and so find new failures; CI
# (`HYPOTHESIS_PROFILE=ci`, set by .ci/run) draws the same examples every time, so that what
# lands is decided by the change, not by the draw.
hypothesis.settings.register_profile("ci", derandomize=True)
hypothesis.settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "default"))


def _database_name() -> str:
    worker = os.environ.get("PYTEST_XDIST_WORKER", "main")
    return f"wg_test_{worker}_{os.getpid()}_{uuid.uuid4().hex[:6]}"


@pytest.fixture(scope="session")
def settings(tmp_path_factory: pytest.TempPathFactory) -> Settings:
    keys = tmp_path_factory.mktemp("keys") / "signing-keys.json"
    return dataclasses.replace(
        Settings.from_env(),
        data_dir=Path(os.environ.get("WG_TEST_DATA_DIR", TEST_DATA_DIR)),
        signing_key_file=keys,
        public_url="http://127.0.0.1:8000",
        revocation_cache_seconds=0,
        rate_limit_per_minute=100_000,
        token_rate_limit_per_minute=100_000,
        unauthenticated_per_minute=100_000,
        token_failures_per_minute=100_000,
        outbound_allow_loopback=True,
        log_level="WARNING",
        # Events about shared findings are readable at once; tests of the delay set their own.
        shared_event_delay_seconds=0.0,
    )


@pytest.fixture(scope="session")
def admin_url(settings: Settings) -> URL:
    return resolve_admin_url(settings).set(database=_database_name())


@pytest.fixture(scope="session")
async def database(settings: Settings, admin_url: URL) -> AsyncIterator[Database]:
    await migrate(admin_url, settings)
    db = Database.connect(admin_url, settings)
    try:
        yield db
    finally:
        await db.dispose()
        engine = _superuser_engines.pop(str(admin_url), None)
        if engine is not None:
            await engine.dispose()
        await drop_database(admin_url)


_superuser_engines: dict[str, AsyncEngine] = {}


@contextlib.asynccontextmanager
async def superuser_transaction(database: Database) -> AsyncIterator[AsyncConnection]:
    """One transaction as the harness's own login (the superuser of the test server), no tenant
    bound: for tests that seed or inspect rows of several tenants. Neither service role can
    (no BYPASSRLS; the system role reaches tenants' rows only through the owner's functions)."""
    key = str(database.admin_url)
    engine = _superuser_engines.get(key)
    if engine is None:
        engine = make_engine(database.admin_url, pool_size=2, application_name="wg-api-tests")
        _superuser_engines[key] = engine
    async with AsyncConnection(engine) as session, session.begin():
        yield session


async def drop_database(admin_url: URL) -> None:
    engine = make_engine(admin_url.set(database="postgres"), pool_size=1)
    try:
        async with engine.connect() as conn:
            conn = await conn.execution_options(isolation_level="AUTOCOMMIT")
            await conn.exec_driver_sql(
                f'DROP DATABASE IF EXISTS "{admin_url.database}" WITH (FORCE)'
            )
    finally:
        await engine.dispose()


@contextlib.asynccontextmanager
async def serve_in_loop(app: Any) -> AsyncIterator[httpx.AsyncClient]:
    """An HTTP client for `app`, run (with its lifespan) in the test's own event loop.

    Litestar's AsyncTestClient runs the app in a portal thread with a loop of its own: requests
    cannot overlap, and pooled asyncpg connections would be shared between two loops.
    """
    async with (
        # Requests go to `app` itself: the manager's wrapper hands every request one shared
        # `state` dict, where Litestar caches the request body.
        LifespanManager(app, startup_timeout=60, shutdown_timeout=60),
        httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="http://testserver.local"
        ) as http,
    ):
        yield http


@pytest.fixture(scope="session")
async def client(settings: Settings, database: Database) -> AsyncIterator[httpx.AsyncClient]:
    async with serve_in_loop(asgi_app(settings, database)) as http:
        yield http


@pytest.fixture(scope="session")
def cursor_cipher(settings: Settings, client: httpx.AsyncClient) -> CursorCipher:
    """The app's cursor cipher (from the same signing keys), to forge well-sealed cursors."""
    return CursorCipher(SigningKeys.load_or_create(settings.key_file).secrets())


@dataclasses.dataclass
class TenantHandle:
    """A tenant made for one test, with an admin client and a way to get tokens."""

    id: uuid.UUID
    slug: str
    name: str
    client_id: str
    client_secret: str
    http: httpx.AsyncClient

    async def token(self, scope: str | None = None) -> str:
        form = {"grant_type": "client_credentials"}
        if scope is not None:
            form["scope"] = scope
        basic = base64.b64encode(f"{self.client_id}:{self.client_secret}".encode()).decode()
        response = await self.http.post(
            "/oauth/token", data=form, headers={"Authorization": f"Basic {basic}"}
        )
        assert response.status_code == 200, response.text
        token: str = response.json()["access_token"]
        return token

    async def headers(self, scope: str | None = None) -> dict[str, str]:
        return {"Authorization": f"Bearer {await self.token(scope)}"}


@pytest.fixture(scope="session")
def make_tenant(database: Database, client: httpx.AsyncClient) -> Any:
    async def make(
        kind: str = "brand",
        *,
        role: str = "admin",
        scopes: list[str] | None = None,
        name: str | None = None,
    ) -> TenantHandle:
        slug = f"t-{uuid.uuid4().hex[:10]}"
        async with database.system_transaction() as session:
            tenant = await service.create_tenant(
                session,
                slug=slug,
                name=name or f"Tenant {slug}",
                kind=kind,
                timezone="Asia/Hong_Kong",
            )
        async with database.transaction(tenant["id"]) as session:
            made = await service.create_client(
                session, tenant_id=tenant["id"], name="tests", role=role, scopes=scopes
            )
        return TenantHandle(
            id=tenant["id"],
            slug=slug,
            name=tenant["name"],
            client_id=made.client_id,
            client_secret=made.client_secret,
            http=client,
        )

    return make


async def count_rows(database: Database, table: str) -> int:
    async with superuser_transaction(database) as session:
        return int(await session.scalar(sa.text(f"SELECT count(*) FROM {table}")) or 0)  # noqa: S608
