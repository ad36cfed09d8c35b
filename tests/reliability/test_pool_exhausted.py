"""Slow queries take every connection of the pool: other requests answer 503 try-again within
about a second (the pool timeout), never hang; a statement timeout bounds every request."""

from __future__ import annotations

import asyncio
import dataclasses
import time

import pytest
import sqlalchemy as sa

from tests.conftest import serve_in_loop, superuser_transaction
from tests.reliability.conftest import SleepController, assert_try_again, new_caller
from wg_api.app import asgi_app
from wg_api.platform.database import Database
from wg_api.settings import Settings

POOL_SIZE = 2


@pytest.fixture
async def small_pool(settings: Settings, database: Database):
    tight = dataclasses.replace(
        settings, db_pool_size=POOL_SIZE, db_pool_timeout_seconds=1.0, db_statement_timeout_ms=2000
    )
    db = Database.connect(database.admin_url, tight)
    try:
        async with serve_in_loop(asgi_app(tight, db, extra_v1_handlers=[SleepController])) as http:
            yield db, http
    finally:
        await db.dispose()


async def sleeping(db: Database) -> int:
    """Statements of the app's pool sleeping in the database right now."""
    async with superuser_transaction(db) as session:
        count = await session.scalar(
            sa.text(
                "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
                "AND state = 'active' AND query LIKE 'SELECT pg_sleep%'"
            )
        )
    return int(count or 0)


async def test_an_exhausted_pool_answers_503_within_a_second_and_recovers(small_pool):
    db, http = small_pool
    caller = await new_caller(db)
    headers = await caller.headers(http)
    assert (await http.get("/v1/me", headers=headers)).status_code == 200

    sleepers = [
        asyncio.create_task(http.get("/v1/test/sleep?seconds=1.5", headers=headers))
        for _ in range(POOL_SIZE)
    ]

    deadline = time.monotonic() + 10
    while await sleeping(db) < POOL_SIZE:
        assert time.monotonic() < deadline, "the slow requests never took the pool"
        await asyncio.sleep(0.02)
    started = time.monotonic()
    blocked = await asyncio.gather(
        http.get("/v1/me", headers=headers), http.get("/v1/findings", headers=headers)
    )
    waited = time.monotonic() - started
    for response in blocked:
        assert_try_again(response)
    assert waited < 2.0, f"answered after {waited:.2f} s"

    for response in await asyncio.gather(*sleepers):
        assert response.status_code == 200, response.text
    assert (await http.get("/v1/me", headers=headers)).status_code == 200


async def test_a_statement_over_the_time_limit_answers_503_and_frees_its_connection(small_pool):
    db, http = small_pool
    caller = await new_caller(db)
    headers = await caller.headers(http)
    started = time.monotonic()
    response = await http.get("/v1/test/sleep?seconds=20", headers=headers)
    elapsed = time.monotonic() - started
    assert_try_again(response)
    # The 2 s statement timeout, not the 20 s the statement asked for.
    assert elapsed < 6.0, f"answered after {elapsed:.2f} s"
    assert db.app_engine.pool.checkedout() == 0
    ok = await http.get("/v1/test/sleep?seconds=0", headers=headers)
    assert ok.status_code == 200, ok.text
