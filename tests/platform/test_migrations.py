"""Every migration is reversible: head -> base -> head on a fresh database gives the same schema."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import URL

from tests.conftest import drop_database
from wg_api.platform.database import make_engine
from wg_api.platform.migrate import downgrade, head_revision, migrate

SCHEMA_FINGERPRINT = sa.text(
    """
    SELECT 'column' AS kind, table_name || '.' || column_name || ' ' || data_type AS item
    FROM information_schema.columns WHERE table_schema = 'public'
    UNION ALL
    SELECT 'index', indexname || ' ' || indexdef FROM pg_indexes WHERE schemaname = 'public'
    UNION ALL
    SELECT 'policy', tablename || '.' || policyname || ' ' || coalesce(qual, '')
    FROM pg_policies WHERE schemaname = 'public'
    UNION ALL
    SELECT 'function', p.proname FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
    WHERE n.nspname = 'public' AND p.prokind = 'f'
      AND NOT EXISTS (SELECT 1 FROM pg_depend d WHERE d.objid = p.oid AND d.deptype = 'e')
    UNION ALL
    SELECT 'grant', table_name || ' ' || grantee || ' ' || privilege_type
    FROM information_schema.role_table_grants WHERE table_schema = 'public'
    ORDER BY 1, 2
    """
)


@pytest.fixture
async def fresh_url(admin_url) -> AsyncIterator[URL]:
    url = admin_url.set(database=f"wg_migrations_{uuid.uuid4().hex[:10]}")
    try:
        yield url
    finally:
        await drop_database(url)


async def snapshot(url: URL) -> tuple[list[str], list[tuple[str, str]]]:
    """The version rows and the schema of `url`'s public schema."""
    engine = make_engine(url, pool_size=1)
    try:
        async with engine.connect() as conn:
            versions = list(
                (await conn.execute(sa.text("SELECT version_num FROM alembic_version"))).scalars()
            )
            schema = [(row.kind, row.item) for row in await conn.execute(SCHEMA_FINGERPRINT)]
    finally:
        await engine.dispose()
    return versions, schema


async def test_upgrade_downgrade_upgrade(fresh_url, settings):
    head = head_revision(settings)
    assert head is not None

    await migrate(fresh_url, settings)
    versions, at_head = await snapshot(fresh_url)
    assert versions == [head]
    tables = {item.split(".")[0] for kind, item in at_head if kind == "column"}
    assert {"tenants", "events", "idempotency_keys", "jobs", "api_clients"} <= tables

    await downgrade(fresh_url, settings, "base")
    versions, at_base = await snapshot(fresh_url)
    assert versions == []
    left_over = [(kind, item) for kind, item in at_base if not item.startswith("alembic_version")]
    assert left_over == [], "the downgrades left these behind"

    await migrate(fresh_url, settings)
    versions, again = await snapshot(fresh_url)
    assert versions == [head]
    assert again == at_head
