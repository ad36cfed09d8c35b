"""A request's connection goes back to the pool rolled back, and a connection whose ROLLBACK
failed or was cancelled never goes back at all (`LazyConnection.close` awaits the ROLLBACK
itself, outside SQLAlchemy's greenlet)."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import asyncpg
import pytest
import sqlalchemy as sa

from tests.conftest import superuser_transaction
from wg_api.platform.database import Database, driver_fetch
from wg_api.platform.errors import to_problem_error

_PID = "SELECT pg_backend_pid() AS pid"


def _checked_out(db: Database) -> int:
    pool: Any = db.app_engine.pool  # a QueuePool (MeteredPool)
    return int(pool.checkedout())


async def _pid(db: Database, tenant_id: uuid.UUID | None = None) -> int:
    connection = db.connection(tenant_id)
    try:
        [row] = await driver_fetch(connection, _PID)
        return int(row["pid"])
    finally:
        await connection.close()


async def test_a_read_goes_back_rolled_back_and_unbound(
    one_connection: Database, make_tenant: Any
) -> None:
    tenant = await make_tenant()
    connection = one_connection.connection(tenant.id)
    [row] = await driver_fetch(
        connection,
        "SELECT pg_backend_pid() AS pid, set_config('wg.probe', 'kept', false) AS probe, "
        "current_setting('app.tenant_id', true) AS bound",
    )
    assert row["bound"] == str(tenant.id)
    await connection.close()
    assert _checked_out(one_connection) == 0

    # The same pooled connection, next: nothing of the read's transaction is left on it.
    after = one_connection.connection()
    [again] = await driver_fetch(
        after,
        "SELECT pg_backend_pid() AS pid, current_setting('wg.probe', true) AS probe, "
        "current_setting('app.tenant_id', true) AS bound",
    )
    await after.close()
    assert again["pid"] == row["pid"]
    assert again["probe"] in (None, "")  # the session-wide setting went with the ROLLBACK
    assert again["bound"] == ""


async def test_a_connection_lost_before_it_is_given_back_is_never_reused(
    one_connection: Database, database: Database
) -> None:
    connection = one_connection.connection()
    [row] = await driver_fetch(connection, _PID)
    async with superuser_transaction(database) as admin:
        await admin.execute(sa.text("SELECT pg_terminate_backend(:pid)"), {"pid": row["pid"]})
    for _ in range(100):  # until the server has closed it
        async with superuser_transaction(database) as admin:
            gone = await admin.scalar(
                sa.text("SELECT NOT EXISTS (SELECT 1 FROM pg_stat_activity WHERE pid = :pid)"),
                {"pid": row["pid"]},
            )
        if gone:
            break
        await asyncio.sleep(0.02)

    # However the driver learns of it: the socket already closed, or closed under the ROLLBACK.
    with pytest.raises(
        (asyncpg.InterfaceError, asyncpg.exceptions.ConnectionDoesNotExistError)
    ) as lost:
        await connection.close()
    # As any lost connection: a client would hear 503 try-again.
    assert to_problem_error(lost.value).status == 503
    assert _checked_out(one_connection) == 0
    # The pool's one connection is a new one, and it works.
    assert await _pid(one_connection) != row["pid"]


async def test_a_close_cancelled_during_its_rollback_never_reuses_the_connection(
    one_connection: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    connection = one_connection.connection()
    [row] = await driver_fetch(connection, _PID)
    rolling_back = asyncio.Event()
    original = asyncpg.transaction.Transaction.rollback

    async def slow_rollback(self: Any) -> None:
        rolling_back.set()
        await asyncio.sleep(0.5)  # cancelled here, its ROLLBACK never sent
        await original(self)

    monkeypatch.setattr(asyncpg.transaction.Transaction, "rollback", slow_rollback)
    closing = asyncio.create_task(connection.close())
    await asyncio.wait_for(rolling_back.wait(), 5)
    closing.cancel()
    with pytest.raises(asyncio.CancelledError):
        await closing
    monkeypatch.undo()

    assert _checked_out(one_connection) == 0
    # Its transaction was never ended: the connection was closed, not given to the next caller.
    assert await _pid(one_connection) != row["pid"]
