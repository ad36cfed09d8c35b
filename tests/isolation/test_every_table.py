"""A wider net than `tenant_id`: every table the app role can read or write is under forced RLS,
unless it is on this short list of tables that hold nothing private to a tenant."""

from collections.abc import AsyncIterator

import pytest
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from wg_api.platform.database import make_engine

# Each entry says why the table needs no row-level security.
SHARED_BY_DESIGN = {
    "alembic_version": "the migration head; the app role may only read it",
    "suppliers": "the common supplier registry: canonical fields, nothing about who links to what",
}

APP_TABLES = sa.text(
    """
    SELECT c.relname AS name, c.relrowsecurity AS enabled, c.relforcerowsecurity AS forced,
           (SELECT count(*) FROM pg_policy p WHERE p.polrelid = c.oid) AS policies
    FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
    WHERE n.nspname = 'public' AND c.relkind IN ('r', 'p')
      AND (has_table_privilege(:role, c.oid, 'SELECT, INSERT, UPDATE, DELETE')
           OR has_any_column_privilege(:role, c.oid, 'SELECT, INSERT, UPDATE'))
    ORDER BY c.relname
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


async def unprotected_tables(admin: AsyncConnection, role: str) -> list[str]:
    rows = (await admin.execute(APP_TABLES, {"role": role})).all()
    return [
        row.name
        for row in rows
        if row.name not in SHARED_BY_DESIGN
        and not (row.enabled and row.forced and row.policies > 0)
    ]


async def test_every_table_the_app_role_touches_is_under_rls(admin, settings):
    assert await unprotected_tables(admin, settings.app_role) == []


async def test_the_net_catches_a_new_table_without_rls(admin, settings):
    async with admin.begin():
        await admin.execute(sa.text("CREATE TABLE net_probe (id int, group_id uuid)"))
        await admin.execute(sa.text(f"GRANT SELECT ON net_probe TO {settings.app_role}"))
        assert "net_probe" in await unprotected_tables(admin, settings.app_role)
        await admin.rollback()


async def test_the_shared_tables_hold_no_tenant_column(admin):
    rows = await admin.execute(
        sa.text(
            "SELECT table_name FROM information_schema.columns WHERE table_schema = 'public' "
            "AND column_name IN ('tenant_id', 'contributor', 'created_by')"
        )
    )
    assert not {row.table_name for row in rows} & set(SHARED_BY_DESIGN)


async def test_no_column_naming_a_contributor_is_readable_by_the_app_role(admin, settings):
    """Who contributed a shared finding is known only inside the database's own functions."""
    rows = await admin.execute(
        sa.text(
            "SELECT table_name, has_column_privilege(:role, format('%I', table_name), "
            "column_name, 'SELECT') AS readable "
            "FROM information_schema.columns "
            "WHERE table_schema = 'public' AND column_name = 'contributor'"
        ),
        {"role": settings.app_role},
    )
    readable = {row.table_name: row.readable for row in rows}
    assert {"shared_findings", "insight_tallies"} <= set(readable)
    assert not any(readable.values()), readable


@pytest.mark.parametrize("kind", ["app", "system"])
async def test_the_insight_tallies_are_closed_to_the_api_and_the_worker(admin, settings, kind):
    role = settings.app_role if kind == "app" else settings.system_role
    rows = await admin.execute(
        sa.text(
            "SELECT c.relname, has_table_privilege(:role, c.oid, 'SELECT, INSERT, UPDATE, DELETE') "
            "OR has_any_column_privilege(:role, c.oid, 'SELECT, INSERT, UPDATE') AS touches "
            "FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
            "WHERE n.nspname = 'public' AND c.relkind = 'r' AND c.relname LIKE 'insight\\_%'"
        ),
        {"role": role},
    )
    touches = {row.relname: row.touches for row in rows}
    assert set(touches) == {
        "insight_tallies",
        "insight_groups",
        "insight_suppliers",
        "insight_supplier_bits",
    }
    assert not any(touches.values()), touches


async def test_functions_that_run_as_the_owner_never_look_in_pg_temp_first(admin):
    """SECURITY DEFINER functions pin their search_path, with pg_temp last, so no caller's
    temporary object can stand in for a table or a function they use."""
    rows = await admin.execute(
        sa.text(
            "SELECT p.oid::regprocedure::text AS name, p.proconfig AS config FROM pg_proc p "
            "JOIN pg_namespace n ON n.oid = p.pronamespace "
            "WHERE n.nspname = 'public' AND p.prosecdef"
        )
    )
    definers = {row.name: row.config or [] for row in rows}
    assert "group_insights(uuid,text[],uuid,text,text,text,text,text,integer)" in definers
    unpinned = {
        name: config
        for name, config in definers.items()
        if "search_path=pg_catalog, public, pg_temp" not in config
    }
    assert unpinned == {}


# A policy's USING clause runs for every row a statement looks at. A SECURITY DEFINER function
# called there with a column (never inlined) runs once per row: a list that walks past thousands
# of rows pays thousands of calls. The caller's groups come from `wg_active_groups()` and
# `wg_facilitated_groups()` in a scalar sub-select, which runs once per statement (0019).
PER_ROW_CALLS = sa.text(
    """
    SELECT c.relname || '.' || p.polname AS policy, pg_get_expr(p.polqual, p.polrelid) AS expr
    FROM pg_policy p JOIN pg_class c ON c.oid = p.polrelid
    WHERE pg_get_expr(p.polqual, p.polrelid) ~ :per_row
    ORDER BY 1
    """
)
# Functions of a group that policies may not call on a row's column in USING.
PER_ROW = r"wg_group_role\(|wg_group_below_threshold\("


async def test_no_policy_asks_for_the_callers_role_once_per_row(admin):
    rows = (await admin.execute(PER_ROW_CALLS, {"per_row": PER_ROW})).all()
    assert [(row.policy, row.expr) for row in rows] == []


async def test_the_per_row_check_catches_a_policy_that_would(admin, settings):
    async with admin.begin():
        await admin.execute(
            sa.text(
                f"CREATE POLICY per_row_probe ON meetings FOR SELECT TO {settings.app_role} "
                "USING (wg_group_role(working_group_id) IS NOT NULL)"
            )
        )
        rows = (await admin.execute(PER_ROW_CALLS, {"per_row": PER_ROW})).all()
        assert [row.policy for row in rows] == ["meetings.per_row_probe"]
        await admin.rollback()
