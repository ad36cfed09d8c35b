"""The tenant is bound by the transaction's BEGIN itself: one round trip, and only ever a UUID."""

from __future__ import annotations

import dataclasses
import uuid
from collections.abc import AsyncIterator
from typing import Any

import asyncpg
import pytest
import sqlalchemy as sa
from sqlalchemy.engine import URL

from wg_api.platform.database import Database, TenantConnection, driver_fetch
from wg_api.settings import Settings


class _Recorder:
    """Every query `driver` sends to the server (below its own rewriting), while installed."""

    def __init__(self, driver: TenantConnection, monkeypatch: pytest.MonkeyPatch) -> None:
        self.queries: list[str] = []
        original = asyncpg.Connection.execute

        async def execute(self_: Any, query: str, *args: Any, **kwargs: Any) -> str:
            if self_ is driver:
                self.queries.append(query)
            return await original(self_, query, *args, **kwargs)

        monkeypatch.setattr(asyncpg.Connection, "execute", execute)


async def _driver(database: Database) -> TenantConnection:
    async with database.app_engine.connect() as conn:
        raw = await conn.get_raw_connection()
        driver = raw.driver_connection
    assert isinstance(driver, TenantConnection)
    return driver


@pytest.fixture
async def one_connection(admin_url: URL, settings: Settings) -> AsyncIterator[Database]:
    """A Database whose app pool holds exactly one connection, so every checkout reuses it."""
    db = Database.connect(admin_url, dataclasses.replace(settings, db_pool_size=1), max_overflow=0)
    try:
        yield db
    finally:
        await db.dispose()


async def test_the_begin_carries_the_binding_in_one_round_trip(
    one_connection: Database, make_tenant: Any
) -> None:
    tenant = await make_tenant()
    driver = await _driver(one_connection)
    with pytest.MonkeyPatch.context() as patch:
        recorder = _Recorder(driver, patch)
        async with one_connection.session(tenant.id) as session:
            # Begun by the session: the binding is in place before the first statement.
            rows = await driver_fetch(session, "SELECT current_setting('app.tenant_id', true) AS t")
            assert rows[0]["t"] == str(tenant.id)
    # One simple query before that statement: the BEGIN, with the binding; then the ROLLBACK.
    assert len(recorder.queries) == 2, recorder.queries
    begin, end = recorder.queries
    assert begin.startswith("BEGIN")
    assert begin.endswith(f";SELECT set_config('app.tenant_id', '{tenant.id}', true)")
    assert end.startswith("ROLLBACK")
    assert driver._next_binding is None


async def test_a_session_without_tenant_binds_nothing(database: Database, make_tenant: Any) -> None:
    tenant = await make_tenant()
    async with database.transaction(tenant.id) as session:
        assert await session.scalar(sa.text("SELECT count(*) FROM api_clients")) == 1
    async with database.transaction() as session:
        assert not await session.scalar(sa.text("SELECT current_setting('app.tenant_id', true)"))
        assert await session.scalar(sa.text("SELECT count(*) FROM api_clients")) == 0


async def test_only_a_uuid_reaches_the_sql(database: Database) -> None:
    driver = await _driver(database)
    with pytest.raises(ValueError, match="badly formed"):
        driver.bind_next_begin("x', true); SELECT 1; --")  # type: ignore[arg-type]
    driver.bind_next_begin(uuid.UUID(int=1))
    driver.forget_binding()
    # A binding forgotten is never applied to a later BEGIN on that connection.
    assert driver._next_binding is None


async def test_a_binding_waits_for_its_own_begin(database: Database) -> None:
    driver = await _driver(database)
    driver.bind_next_begin(uuid.uuid4())
    # Not a BEGIN, or a BEGIN with arguments: the binding waits for its own BEGIN.
    assert await driver.execute("SELECT 1") == "SELECT 1"
    assert driver._next_binding is not None
    driver.forget_binding()
