"""Tenant isolation is enforced by PostgreSQL itself: RLS everywhere, no leaks through the pool,
and an app role that cannot step around either.

The checks discover the tables by themselves, so a table added by any later migration is
covered without touching this file.
"""

from __future__ import annotations

import dataclasses
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass

import pytest
import sqlalchemy as sa
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncConnection

from wg_api.platform.database import Database, make_engine
from wg_api.platform.events import record_event
from wg_api.platform.rls import tenant_rls_statements

SCHEMA = "public"


@dataclass(frozen=True)
class TenantTable:
    name: str
    row_security: bool
    forced: bool
    policies: int
    open_policies: tuple[str, ...]

    def problems(self) -> list[str]:
        found = []
        if not self.row_security:
            found.append("row level security is not enabled")
        if not self.forced:
            found.append("row level security is not forced (the owner bypasses it)")
        if self.policies == 0:
            found.append("no policy (nobody but a BYPASSRLS role sees a row)")
        found += [f"policy {name} lets every role see every row" for name in self.open_policies]
        return found


TENANT_TABLES = sa.text(
    """
    SELECT c.relname AS name,
           c.relrowsecurity AS row_security,
           c.relforcerowsecurity AS forced,
           (SELECT count(*) FROM pg_policy p WHERE p.polrelid = c.oid) AS policies,
           ARRAY(
               SELECT p.polname FROM pg_policy p
               WHERE p.polrelid = c.oid
                 AND p.polpermissive
                 AND (p.polroles = '{0}' OR :app_role = ANY(
                        SELECT r.rolname FROM pg_roles r WHERE r.oid = ANY(p.polroles)))
                 AND (pg_get_expr(p.polqual, p.polrelid) = 'true'
                      OR pg_get_expr(p.polwithcheck, p.polrelid) = 'true')
               ORDER BY p.polname
           ) AS open_policies
    FROM pg_class c
    JOIN pg_namespace n ON n.oid = c.relnamespace
    WHERE n.nspname = :schema
      AND c.relkind IN ('r', 'p')
      AND EXISTS (
          SELECT 1 FROM pg_attribute a
          WHERE a.attrelid = c.oid AND a.attname = 'tenant_id'
            AND a.attnum > 0 AND NOT a.attisdropped
      )
    ORDER BY c.relname
    """
)


async def tenant_tables(conn: AsyncConnection, app_role: str) -> list[TenantTable]:
    """Every table of the schema that has a `tenant_id` column, with its RLS state."""
    rows = await conn.execute(TENANT_TABLES, {"schema": SCHEMA, "app_role": app_role})
    return [
        TenantTable(
            name=row.name,
            row_security=row.row_security,
            forced=row.forced,
            policies=row.policies,
            open_policies=tuple(row.open_policies),
        )
        for row in rows
    ]


async def isolation_failures(conn: AsyncConnection, app_role: str) -> dict[str, list[str]]:
    """The tenant tables that are not isolated, each with what is wrong."""
    return {
        table.name: table.problems()
        for table in await tenant_tables(conn, app_role)
        if table.problems()
    }


@pytest.fixture
async def admin(admin_url) -> AsyncIterator[AsyncConnection]:
    engine = make_engine(admin_url, pool_size=1, application_name="wg-api-tests")
    try:
        async with engine.connect() as conn:
            yield conn
    finally:
        await engine.dispose()


@pytest.fixture(scope="module")
async def app_role(database) -> str:
    """The role the API really logs in as."""
    async with database.transaction() as session:
        role = await session.scalar(sa.text("SELECT current_user"))
    assert isinstance(role, str)
    return role


# ---- (a) every tenant table has RLS enabled, forced and a policy ------------------------------


async def test_every_tenant_table_is_isolated_by_rls(admin, app_role):
    tables = {table.name for table in await tenant_tables(admin, app_role)}
    # The discovery works: the platform's and identity's own tenant tables are among them.
    assert {"events", "idempotency_keys", "api_clients", "audit_log"} <= tables
    failures = await isolation_failures(admin, app_role)
    assert failures == {}, f"tables with tenant_id that PostgreSQL does not isolate: {failures}"


async def test_the_checker_reports_a_table_without_its_policy(admin, app_role):
    suffix = uuid.uuid4().hex[:8]
    names = {kind: f"rls_probe_{kind}_{suffix}" for kind in ("bare", "enabled", "nopolicy")}
    names |= {kind: f"rls_probe_{kind}_{suffix}" for kind in ("open", "isolated")}
    try:
        for name in names.values():
            await admin.execute(sa.text(f"CREATE TABLE {name} (id int, tenant_id uuid)"))
        await admin.execute(sa.text(f"ALTER TABLE {names['enabled']} ENABLE ROW LEVEL SECURITY"))
        await admin.execute(sa.text(f"ALTER TABLE {names['nopolicy']} ENABLE ROW LEVEL SECURITY"))
        await admin.execute(sa.text(f"ALTER TABLE {names['nopolicy']} FORCE ROW LEVEL SECURITY"))
        wide_open = f"CREATE POLICY wide_open ON {names['open']} USING (true)"
        for statement in [*tenant_rls_statements(names["open"]), wide_open]:
            await admin.execute(sa.text(statement))
        for statement in tenant_rls_statements(names["isolated"]):
            await admin.execute(sa.text(statement))

        failures = await isolation_failures(admin, app_role)
    finally:
        await admin.rollback()

    assert set(failures) == {names["bare"], names["enabled"], names["nopolicy"], names["open"]}
    assert "row level security is not enabled" in failures[names["bare"]]
    assert failures[names["enabled"]] == [
        "row level security is not forced (the owner bypasses it)",
        "no policy (nobody but a BYPASSRLS role sees a row)",
    ]
    assert failures[names["nopolicy"]] == ["no policy (nobody but a BYPASSRLS role sees a row)"]
    assert failures[names["open"]] == ["policy wide_open lets every role see every row"]


async def test_no_view_exposes_tenant_rows_past_rls(admin):
    """A view runs with its owner's rights unless security_invoker; a materialized view has no
    RLS at all. Either would hand every tenant's rows to whoever may read it."""
    rows = await admin.execute(
        sa.text(
            """
            SELECT c.relname, c.relkind, c.reloptions
            FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
            WHERE n.nspname = :schema AND c.relkind IN ('v', 'm')
              AND EXISTS (SELECT 1 FROM pg_attribute a WHERE a.attrelid = c.oid
                          AND a.attname = 'tenant_id' AND NOT a.attisdropped)
            """
        ),
        {"schema": SCHEMA},
    )
    leaking = [
        row.relname
        for row in rows
        if row.relkind == "m" or "security_invoker=true" not in (row.reloptions or [])
    ]
    assert leaking == []


# ---- (b) a pooled connection carries nothing from one tenant to the next ----------------------


@pytest.fixture
async def one_connection_database(admin_url, settings) -> AsyncIterator[Database]:
    """A Database whose app pool holds exactly one connection, so every checkout reuses it."""
    db = Database.connect(admin_url, dataclasses.replace(settings, db_pool_size=1), max_overflow=0)
    try:
        yield db
    finally:
        await db.dispose()


async def readable_tenant_tables(session, app_role: str) -> list[str]:
    rows = await session.execute(
        sa.text(
            """
            SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
            WHERE n.nspname = :schema AND c.relkind IN ('r', 'p')
              AND has_table_privilege(:role, c.oid, 'SELECT')
              AND EXISTS (SELECT 1 FROM pg_attribute a WHERE a.attrelid = c.oid
                          AND a.attname = 'tenant_id' AND NOT a.attisdropped)
            """
        ),
        {"schema": SCHEMA, "role": app_role},
    )
    return [row.relname for row in rows]


async def visible_rows(session, tables: list[str], *, not_of: uuid.UUID | None = None):
    """Rows visible per table (only the tables with some); with `not_of`, other tenants' rows."""
    counts = {}
    for table in tables:
        counts[table] = int(
            await session.scalar(
                sa.text(
                    f'SELECT count(*) FROM "{table}" '  # noqa: S608
                    "WHERE tenant_id IS DISTINCT FROM CAST(:tenant AS uuid)"
                ),
                {"tenant": not_of},
            )
        )
    return {table: count for table, count in counts.items() if count}


async def test_a_reused_connection_shows_nothing_to_the_next_tenant(
    one_connection_database, make_tenant, app_role
):
    db = one_connection_database
    alice, bob = await make_tenant(), await make_tenant()
    marker = uuid.uuid4().hex

    async with db.transaction(alice.id) as session:
        alice_pid = await session.scalar(sa.text("SELECT pg_backend_pid()"))
        await record_event(session, alice.id, "probe.recorded", {"marker": marker})
        tables = await readable_tenant_tables(session, app_role)
        seen_by_alice = await visible_rows(session, tables)
        assert await visible_rows(session, tables, not_of=alice.id) == {}
    # Alice sees her own rows (her event, her API client), and only hers.
    assert seen_by_alice["events"] == 1
    assert seen_by_alice["api_clients"] == 1

    # Handed out again with no tenant bound: not a single row of any tenant table.
    async with db.transaction() as session:
        assert await session.scalar(sa.text("SELECT pg_backend_pid()")) == alice_pid
        assert not await session.scalar(sa.text("SELECT current_setting('app.tenant_id', true)"))
        assert await visible_rows(session, tables) == {}

    # The raw pooled connection, without the session's binding hook, is just as empty.
    async with db.app_engine.connect() as conn:
        assert await conn.scalar(sa.text("SELECT pg_backend_pid()")) == alice_pid
        assert not await conn.scalar(sa.text("SELECT current_setting('app.tenant_id', true)"))
        assert await visible_rows(conn, tables) == {}

    # Bound to Bob: his own rows only, nothing of Alice's.
    async with db.transaction(bob.id) as session:
        assert await session.scalar(sa.text("SELECT pg_backend_pid()")) == alice_pid
        assert await visible_rows(session, tables, not_of=bob.id) == {}
        assert (await visible_rows(session, tables))["api_clients"] == 1
        leaked = await session.scalar(
            sa.text("SELECT count(*) FROM events WHERE data->>'marker' = :m"), {"m": marker}
        )
        assert leaked == 0

    # Nor can Bob write a row in Alice's name.
    with pytest.raises(DBAPIError, match="row-level security"):
        async with db.transaction(bob.id) as session:
            await record_event(session, alice.id, "probe.forged", {"marker": marker})

    async with db.transaction(alice.id) as session:
        mine = await session.scalar(
            sa.text("SELECT count(*) FROM events WHERE data->>'marker' = :m"), {"m": marker}
        )
        assert await session.scalar(sa.text("SELECT pg_backend_pid()")) == alice_pid
    assert mine == 1


# ---- (c) the app role cannot step around RLS --------------------------------------------------


async def test_app_role_has_no_power_over_rls(admin, app_role):
    role = (
        await admin.execute(
            sa.text(
                "SELECT rolsuper, rolbypassrls, rolcreaterole, rolcreatedb "
                "FROM pg_roles WHERE rolname = :role"
            ),
            {"role": app_role},
        )
    ).one()
    assert role.rolsuper is False
    assert role.rolbypassrls is False
    assert role.rolcreaterole is False
    assert role.rolcreatedb is False
    # Nor does it inherit those through a role it is a member of.
    inherited = await admin.scalar(
        sa.text(
            """
            SELECT array_agg(r.rolname) FROM pg_roles r
            WHERE pg_has_role(:role, r.oid, 'USAGE') AND r.rolname <> :role
              AND (r.rolsuper OR r.rolbypassrls)
            """
        ),
        {"role": app_role},
    )
    assert inherited is None


async def test_app_role_owns_nothing(admin, app_role):
    owned = await admin.execute(
        sa.text(
            """
            WITH app AS (SELECT oid FROM pg_roles WHERE rolname = :role)
            SELECT 'relation' AS kind, relname AS name FROM pg_class, app WHERE relowner = app.oid
            UNION ALL
            SELECT 'function', proname FROM pg_proc, app WHERE proowner = app.oid
            UNION ALL
            SELECT 'schema', nspname FROM pg_namespace, app WHERE nspowner = app.oid
            UNION ALL
            SELECT 'type', typname FROM pg_type, app WHERE typowner = app.oid
            UNION ALL
            SELECT 'database', datname FROM pg_database, app
            WHERE datdba = app.oid AND datname = current_database()
            """
        ),
        {"role": app_role},
    )
    assert owned.all() == []


async def test_app_role_cannot_create_in_public(admin, database, app_role):
    may_create = await admin.scalar(
        sa.text("SELECT has_schema_privilege(:role, 'public', 'CREATE')"), {"role": app_role}
    )
    assert may_create is False
    with pytest.raises(DBAPIError, match="permission denied"):
        async with database.transaction() as session:
            await session.execute(sa.text("CREATE TABLE public.app_made_this (id int)"))
    with pytest.raises(DBAPIError, match="must be owner"):
        async with database.transaction() as session:
            await session.execute(sa.text("ALTER TABLE events NO FORCE ROW LEVEL SECURITY"))
