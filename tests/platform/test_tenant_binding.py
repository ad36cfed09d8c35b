"""The tenant is bound by the transaction's BEGIN itself: one round trip, and only ever a UUID."""

from __future__ import annotations

import uuid
from typing import Any

import asyncpg
import pytest
import sqlalchemy as sa

from wg_api.platform.database import Database, TenantConnection, driver_fetch


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


async def test_the_begin_carries_the_binding_in_one_round_trip(
    one_connection: Database, make_tenant: Any
) -> None:
    tenant = await make_tenant()
    driver = await _driver(one_connection)
    with pytest.MonkeyPatch.context() as patch:
        recorder = _Recorder(driver, patch)
        async with one_connection.connection(tenant.id) as connection:
            # Begun for the driver's query: the binding is in place before it.
            rows = await driver_fetch(
                connection, "SELECT current_setting('app.tenant_id', true) AS t"
            )
            assert rows[0]["t"] == str(tenant.id)
    # One simple query before that statement: the BEGIN, with the binding; then the ROLLBACK.
    assert len(recorder.queries) == 2, recorder.queries
    begin, end = recorder.queries
    assert begin.startswith("BEGIN")
    assert begin.endswith(f";SELECT set_config('app.tenant_id', '{tenant.id}', true)")
    assert end.startswith("ROLLBACK")
    assert driver._binding == ""  # unbound as it went back to the pool


async def test_statements_bind_every_transaction_of_a_connection(
    one_connection: Database, make_tenant: Any
) -> None:
    """Through SQLAlchemy too, and again after a commit: each BEGIN carries the binding."""
    tenant = await make_tenant()
    driver = await _driver(one_connection)
    setting = sa.text("SELECT current_setting('app.tenant_id', true)")
    with pytest.MonkeyPatch.context() as patch:
        recorder = _Recorder(driver, patch)
        async with one_connection.connection(tenant.id) as connection:
            assert await connection.scalar(setting) == str(tenant.id)
            await connection.commit()
            assert await connection.scalar(setting) == str(tenant.id)
            assert await connection.scalar(sa.text("SELECT count(*) FROM api_clients")) == 1
    begins = [q for q in recorder.queries if q.startswith("BEGIN")]
    assert len(begins) == 2, recorder.queries
    assert all(q.endswith(f"'{tenant.id}', true)") for q in begins)


async def test_a_connection_takes_a_pooled_one_only_at_its_first_statement(
    one_connection: Database, make_tenant: Any
) -> None:
    tenant = await make_tenant()
    pool: Any = one_connection.app_engine.pool  # a QueuePool (MeteredPool)
    connection = one_connection.connection(tenant.id)
    assert pool.checkedout() == 0
    assert not connection.in_transaction()
    await connection.commit()  # nothing to commit: still nothing taken
    assert pool.checkedout() == 0
    assert await connection.scalar(sa.text("SELECT 1")) == 1
    assert pool.checkedout() == 1
    await connection.close()
    assert pool.checkedout() == 0
    await one_connection.connection(tenant.id).close()  # never used: nothing to give back
    assert pool.checkedout() == 0


async def test_a_tenant_never_outlives_its_checkout(
    one_connection: Database, make_tenant: Any
) -> None:
    tenant = await make_tenant()
    driver = await _driver(one_connection)
    async with one_connection.connection(tenant.id) as connection:
        await connection.begin()  # the adapter sends its BEGIN with the first statement
        assert driver._binding == str(tenant.id)
    assert driver._binding == ""
    # Whoever takes the pooled connection next without a tenant (here: straight from the
    # engine) binds none.
    async with one_connection.app_engine.connect() as plain:
        assert not await plain.scalar(sa.text("SELECT current_setting('app.tenant_id', true)"))
    # The next user of the pooled connection, without a tenant, sees none.
    async with one_connection.connection() as connection:
        assert not await connection.scalar(sa.text("SELECT current_setting('app.tenant_id', true)"))


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
        driver.bind("x', true); SELECT 1; --")  # type: ignore[arg-type]
    assert driver._binding == ""
    driver.bind(uuid.UUID(int=1))
    driver.unbind()
    assert driver._binding == ""


async def test_only_a_begin_without_arguments_carries_the_binding(
    one_connection: Database,
) -> None:
    driver = await _driver(one_connection)
    tenant_id = uuid.uuid4()
    with pytest.MonkeyPatch.context() as patch:
        recorder = _Recorder(driver, patch)
        driver.bind(tenant_id)
        try:
            assert await driver.execute("SELECT 1") == "SELECT 1"
            await driver.execute("BEGIN")
            assert await driver.fetchval("SELECT current_setting('app.tenant_id', true)") == str(
                tenant_id
            )
            await driver.execute("ROLLBACK")
        finally:
            driver.unbind()
    assert recorder.queries == [
        "SELECT 1",
        f"BEGIN;SELECT set_config('app.tenant_id', '{tenant_id}', true)",
        "ROLLBACK",
    ]
