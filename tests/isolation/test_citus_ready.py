"""Ready for Citus (design decision 10): the catalogue proves the schema can be distributed on
`tenant_id` without rewriting it.

Citus requires, for a table distributed on `tenant_id`: the column in the primary key and in every
unique constraint or unique index, and foreign keys between distributed tables that include the
distribution column on both sides (so a reference never crosses shards). A table with `tenant_id`
that cannot meet this must be listed in `NOT_DISTRIBUTED` with the real reason (deploy/SCALING.md
says where such a table lives instead). The placement of every table, distributed or not, is in
`deploy/SCALING.md`; the last test keeps that document and the catalogue in step.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator

import pytest
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from wg_api.platform.database import make_engine
from wg_api.settings import PROJECT_ROOT

# Tables with a `tenant_id` column that are NOT distributed on it, each with its reason.
NOT_DISTRIBUTED: dict[str, str] = {
    "api_clients": "reference table: `client_id` is unique across tenants and is looked up at "
    "the token endpoint before any tenant is known (a few rows per tenant)",
    "identity_providers": "reference table: `issuer` is unique across tenants, since a person's "
    "token names its tenant by its issuer; looked up before any tenant is known",
    "tenant_aliases": "reference table: the unique index on `tenant_name_key(alias)` keeps two "
    "tenants from claiming one alias, across tenants by design",
    "ledger_bookings": "an initiative's ledger, placed with its working group: the group's own "
    "bookings (expenses, reversals) have no tenant (`tenant_id` is NULL)",
    "ledger_entries": "the lines of `ledger_bookings`, placed with them; `tenant_id` is NULL on "
    "the group's own lines",
    "cosourcing_messages": "a remediation room's thread, read by every tenant introduced into the "
    "room: placed with its room (`room_id`); `tenant_id` is the author, not the placement",
}

TENANT_TABLES = sa.text(
    """
    SELECT c.relname AS name
    FROM pg_class c
    JOIN pg_namespace n ON n.oid = c.relnamespace
    JOIN pg_attribute a ON a.attrelid = c.oid AND a.attname = 'tenant_id' AND NOT a.attisdropped
    WHERE n.nspname = 'public' AND c.relkind IN ('r', 'p') AND NOT c.relispartition
    ORDER BY c.relname
    """
)

# Every primary key, unique constraint and unique index (constraints own an index too; a unique
# index without a constraint is the same to Citus), with its columns.
UNIQUE_KEYS = sa.text(
    """
    SELECT c.relname AS tbl, i.relname AS index_name, x.indisprimary AS is_primary,
           ARRAY(SELECT a.attname::text FROM unnest(x.indkey) AS k(attnum)
                 JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum = k.attnum) AS columns,
           x.indexprs IS NOT NULL AS has_expressions
    FROM pg_index x
    JOIN pg_class c ON c.oid = x.indrelid
    JOIN pg_class i ON i.oid = x.indexrelid
    JOIN pg_namespace n ON n.oid = c.relnamespace
    WHERE n.nspname = 'public' AND (x.indisunique OR x.indisprimary)
    """
)

FOREIGN_KEYS = sa.text(
    """
    SELECT k.conname AS name, src.relname AS src, dst.relname AS dst,
           ARRAY(SELECT a.attname::text FROM unnest(k.conkey) WITH ORDINALITY AS u(attnum, i)
                 JOIN pg_attribute a ON a.attrelid = k.conrelid AND a.attnum = u.attnum
                 ORDER BY u.i) AS src_columns,
           ARRAY(SELECT a.attname::text FROM unnest(k.confkey) WITH ORDINALITY AS u(attnum, i)
                 JOIN pg_attribute a ON a.attrelid = k.confrelid AND a.attnum = u.attnum
                 ORDER BY u.i) AS dst_columns
    FROM pg_constraint k
    JOIN pg_class src ON src.oid = k.conrelid
    JOIN pg_class dst ON dst.oid = k.confrelid
    JOIN pg_namespace n ON n.oid = src.relnamespace
    WHERE n.nspname = 'public' AND k.contype = 'f'
    """
)


@pytest.fixture
async def admin(admin_url, database) -> AsyncIterator[AsyncConnection]:
    engine = make_engine(admin_url, pool_size=1, application_name="wg-api-tests")
    try:
        async with engine.connect() as conn:
            yield conn
    finally:
        await engine.dispose()


async def distributed_tables(admin: AsyncConnection) -> set[str]:
    rows = await admin.execute(TENANT_TABLES)
    return {row.name for row in rows} - set(NOT_DISTRIBUTED)


async def keys_without_tenant(admin: AsyncConnection) -> list[str]:
    distributed = await distributed_tables(admin)
    problems = []
    for row in await admin.execute(UNIQUE_KEYS):
        if row.tbl not in distributed:
            continue
        if row.has_expressions or "tenant_id" not in row.columns:
            kind = "primary key" if row.is_primary else "unique"
            problems.append(f"{row.tbl}: {kind} {row.index_name} ({', '.join(row.columns)})")
    return sorted(problems)


async def foreign_keys_crossing_shards(admin: AsyncConnection) -> list[str]:
    distributed = await distributed_tables(admin)
    problems = []
    for row in await admin.execute(FOREIGN_KEYS):
        if row.src not in distributed or row.dst not in distributed:
            continue
        pairs = set(zip(row.src_columns, row.dst_columns, strict=True))
        if ("tenant_id", "tenant_id") not in pairs:
            problems.append(
                f"{row.src}.{row.name}: ({', '.join(row.src_columns)}) -> "
                f"{row.dst}({', '.join(row.dst_columns)})"
            )
    return sorted(problems)


async def test_every_tenant_table_has_tenant_id_in_every_unique_key(admin):
    assert await keys_without_tenant(admin) == []


async def test_foreign_keys_between_tenant_tables_include_tenant_id(admin):
    assert await foreign_keys_crossing_shards(admin) == []


async def test_every_tenant_table_has_a_primary_key(admin):
    distributed = await distributed_tables(admin)
    rows = await admin.execute(UNIQUE_KEYS)
    with_primary = {row.tbl for row in rows if row.is_primary}
    assert sorted(distributed - with_primary) == []


async def test_the_list_names_only_real_tables(admin):
    rows = await admin.execute(TENANT_TABLES)
    assert set(NOT_DISTRIBUTED) <= {row.name for row in rows}


async def test_the_net_catches_a_key_or_reference_without_tenant_id(admin):
    async with admin.begin():
        await admin.execute(
            sa.text(
                "CREATE TABLE citus_probe_parent (tenant_id uuid NOT NULL, id uuid NOT NULL, "
                "code text NOT NULL, PRIMARY KEY (tenant_id, id), UNIQUE (code), UNIQUE (id))"
            )
        )
        await admin.execute(
            sa.text(
                "CREATE TABLE citus_probe_child (tenant_id uuid NOT NULL, id uuid PRIMARY KEY, "
                "parent_id uuid REFERENCES citus_probe_parent (id))"
            )
        )
        keys = await keys_without_tenant(admin)
        references = await foreign_keys_crossing_shards(admin)
        await admin.rollback()
    assert "citus_probe_parent: unique citus_probe_parent_code_key (code)" in keys
    assert "citus_probe_child: primary key citus_probe_child_pkey (id)" in keys
    assert any(problem.startswith("citus_probe_child.") for problem in references)


async def test_scaling_md_places_every_table(admin):
    """deploy/SCALING.md names every table of the schema in its placement table."""
    text = (PROJECT_ROOT / "deploy" / "SCALING.md").read_text()
    placed = set(re.findall(r"^\| `([a-z_]+)` \|", text, re.MULTILINE))
    rows = await admin.execute(
        sa.text(
            "SELECT c.relname AS name FROM pg_class c JOIN pg_namespace n "
            "ON n.oid = c.relnamespace WHERE n.nspname = 'public' AND c.relkind IN ('r', 'p') "
            "AND NOT c.relispartition AND c.relname <> 'alembic_version'"
        )
    )
    tables = {row.name for row in rows}
    assert sorted(tables - placed) == [], "tables missing from deploy/SCALING.md"
    assert sorted(placed - tables) == [], "SCALING.md names tables that do not exist"
