"""`wg-api demo` shows a zero-tolerance alert and an introduction, and a second run adds none."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa

from tests.conftest import superuser_transaction
from wg_api.demo import ALERTED_BRAND, CONTRIBUTING_BRAND, seed_demo
from wg_api.platform.database import Database


async def _alerts(database: Database) -> int:
    async with superuser_transaction(database) as session:
        return int(
            await session.scalar(
                sa.text(
                    "SELECT count(*) FROM events e JOIN tenants t ON t.id = e.tenant_id "
                    "WHERE e.type = 'supplier.zero_tolerance_alert' AND t.slug = :slug"
                ),
                {"slug": ALERTED_BRAND},
            )
            or 0
        )


async def test_the_demo_alerts_and_introduces(database: Database, settings: Any) -> None:
    first = await seed_demo(database, settings)
    shown = first["co_sourcing"]
    assert shown["status"] == "introduced"
    assert shown["participants"] == sorted([ALERTED_BRAND, CONTRIBUTING_BRAND])
    alerts = await _alerts(database)
    assert alerts == 1
    second = await seed_demo(database, settings)
    assert second["co_sourcing"] == shown
    assert await _alerts(database) == alerts
