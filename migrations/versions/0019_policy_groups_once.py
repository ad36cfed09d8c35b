"""Row-level security asks for the caller's groups once per statement, not once per row.

Revision ID: 0019_policy_groups_once
Revises: 0018_group_reader

The group tables' policies (shared findings, working groups and their members, invitations,
meetings and everything under them) read `wg_group_role(group) IS NOT NULL` or
`wg_group_role(group) = 'facilitator'`. PostgreSQL calls that function (SECURITY DEFINER, so never
inlined) for every row it looks at: a page of 50 shared findings paid 51 calls, about 0.3 ms of the
database's time, and a filtered page that walks past thousands of rows paid for each of them.

Two functions now answer the caller's groups as an array, `wg_active_groups()` (active
memberships, any role) and `wg_facilitated_groups()` (active facilitator), and the policies compare
the row's group with them inside a scalar sub-select, which PostgreSQL runs once per statement (an
InitPlan): `group_id = ANY ((SELECT wg_active_groups())::uuid[])`. Both read the same snapshot the
per-row calls read (a STABLE function sees the statement's snapshot either way), so every policy
admits exactly the rows it admitted before; the whole suite, the isolation tests included, holds
that. `wg_group_role` itself stays: the owner's functions and triggers ask about one group.

Only the two shapes above are rewritten, wherever they occur in a policy; other uses (a share's
insert check naming the sharing roles) stay as they were.
"""

from __future__ import annotations

import re
from collections.abc import Callable

import sqlalchemy as sa
from alembic import op

from wg_api.platform.rls import CURRENT_TENANT, migration_role

revision = "0019_policy_groups_once"
down_revision = "0018_group_reader"
branch_labels = None
depends_on = None

SEARCH_PATH = "pg_catalog, public, pg_temp"
# The caller's groups (function, the roles it admits).
GROUP_FUNCTIONS = (
    ("wg_active_groups", None),
    ("wg_facilitated_groups", "facilitator"),
)


def _function(name: str, role: str | None) -> str:
    role_test = f"AND m.role = '{role}' " if role else ""
    return f"""
        CREATE FUNCTION {name}() RETURNS uuid[]
        LANGUAGE sql STABLE SECURITY DEFINER SET search_path = {SEARCH_PATH}
        AS $$
            SELECT coalesce(array_agg(m.group_id), '{{}}') FROM public.working_group_members m
            WHERE m.tenant_id = {CURRENT_TENANT} AND m.status = 'active' {role_test}
        $$
    """


# (per-row form, once-per-statement form) as PostgreSQL writes them back in `pg_policies`.
_PER_ROW = (
    (re.compile(r"wg_group_role\((\w+)\) IS NOT NULL"), "wg_active_groups"),
    (re.compile(r"wg_group_role\((\w+)\) = 'facilitator'::text"), "wg_facilitated_groups"),
)
_ONCE = tuple(
    (
        re.compile(rf"\((\w+) = ANY \(\( SELECT {name}\(\) AS {name}\)::uuid\[\]\)\)"),
        "IS NOT NULL" if name == "wg_active_groups" else "= 'facilitator'",
    )
    for _, name in _PER_ROW
)


def _to_once(expression: str) -> str:
    for pattern, name in _PER_ROW:
        expression = pattern.sub(rf"(\1 = ANY ((SELECT {name}())::uuid[]))", expression)
    return expression


def _to_per_row(expression: str) -> str:
    for pattern, test in _ONCE:
        expression = pattern.sub(rf"(wg_group_role(\1) {test})", expression)
    return expression


def _rewrite_policies(rewrite: Callable[[str], str], needle: str) -> None:
    """Every policy of the public schema whose expressions mention `needle`, rewritten."""
    rows = (
        op.get_bind()
        .execute(
            sa.text(
                "SELECT tablename, policyname, qual, with_check FROM pg_policies "
                "WHERE schemaname = 'public' AND (qual LIKE :needle OR with_check LIKE :needle) "
                "ORDER BY tablename, policyname"
            ),
            {"needle": f"%{needle}%"},
        )
        .all()
    )
    for table, policy, using, check in rows:
        clauses = []
        if using is not None and rewrite(using) != using:
            clauses.append(f"USING ({rewrite(using)})")
        if check is not None and rewrite(check) != check:
            clauses.append(f"WITH CHECK ({rewrite(check)})")
        if clauses:
            op.execute(f'ALTER POLICY "{policy}" ON "{table}" {" ".join(clauses)}')


def upgrade() -> None:
    app = migration_role("app")
    for name, role in GROUP_FUNCTIONS:
        op.execute(_function(name, role))
        op.execute(f"REVOKE ALL ON FUNCTION {name}() FROM PUBLIC")
        op.execute(f"GRANT EXECUTE ON FUNCTION {name}() TO {app}")
    _rewrite_policies(_to_once, "wg_group_role(")


def downgrade() -> None:
    _rewrite_policies(_to_per_row, "SELECT wg_")
    for name, _ in GROUP_FUNCTIONS:
        op.execute(f"DROP FUNCTION {name}()")
