"""The caller as a reader of a group in one function: `wg_group_reader(group)`.

Revision ID: 0018_group_reader
Revises: 0017_citus_keys

Every read of a group's shared findings first asks who the caller is there: its active role, whether
the group is below its anonymity threshold, and the names to redact (its member tenants' and invited
tenants' names, slugs and aliases). That was three owner functions in one statement
(`wg_group_role`, `wg_group_below_threshold`, `shared_finding_scrub_names`), each asking for the
caller's role again, and the two SQL ones planned anew on every call: about 300 µs of the
database's time per list request (bench/README.md). `wg_group_reader` answers the same three in one
PL/pgSQL function, whose statements are planned once per connection: the role once, the threshold
only for a member or a contributor, the names only for an active member. The three functions stay
(row-level security policies and other reads use them); `tests/sharing/test_group_reader.py` holds
the new one equal to them for every kind of caller.
"""

from __future__ import annotations

from alembic import op

from wg_api.platform.rls import CURRENT_TENANT, migration_role

revision = "0018_group_reader"
down_revision = "0017_citus_keys"
branch_labels = None
depends_on = None

SEARCH_PATH = "pg_catalog, public, pg_temp"
SHARING_ROLES = "('member', 'facilitator')"

GROUP_READER = f"""
    CREATE FUNCTION wg_group_reader(p_group uuid)
    RETURNS TABLE (role text, below boolean, names text[])
    LANGUAGE plpgsql STABLE SECURITY DEFINER SET search_path = {SEARCH_PATH}
    AS $$
    DECLARE
        caller uuid := {CURRENT_TENANT};
        v_role text;
        v_below boolean;
        v_names text[] := '{{}}';
    BEGIN
        -- wg_group_role
        SELECT m.role INTO v_role FROM public.working_group_members m
        WHERE m.group_id = p_group AND m.tenant_id = caller AND m.status = 'active';
        -- wg_group_below_threshold: answered to an active member or a contributor, else null
        IF v_role IS NULL THEN
            PERFORM 1 FROM public.shared_findings f
            WHERE f.group_id = p_group AND f.contributor = caller LIMIT 1;
        END IF;
        IF v_role IS NOT NULL OR FOUND THEN
            SELECT (
                SELECT count(*) FROM public.working_group_members m
                WHERE m.group_id = g.id AND m.status = 'active' AND m.role IN {SHARING_ROLES}
            ) < g.anonymity_threshold
            INTO v_below
            FROM public.working_groups g WHERE g.id = p_group;
        END IF;
        -- shared_finding_scrub_names, flattened (in no order: the reader sorts them), only to
        -- an active member: one scan of the aliases for the whole group, not one per tenant
        IF v_role IS NOT NULL THEN
            WITH g AS (
                SELECT m.tenant_id FROM public.working_group_members m
                WHERE m.group_id = p_group
                UNION
                SELECT i.tenant_id FROM public.invitations i
                WHERE i.group_id = p_group AND i.status = 'pending'
            )
            SELECT coalesce(array_agg(term), '{{}}') INTO v_names FROM (
                SELECT unnest(ARRAY[t.name, t.slug]) FROM public.tenants t
                WHERE t.id IN (SELECT tenant_id FROM g)
                UNION ALL
                SELECT a.alias FROM public.tenant_aliases a
                WHERE a.tenant_id IN (SELECT tenant_id FROM g)
            ) AS names (term);
        END IF;
        RETURN QUERY SELECT v_role, coalesce(v_below, false), v_names;
    END
    $$
"""


def upgrade() -> None:
    app = migration_role("app")
    op.execute(GROUP_READER)
    op.execute("REVOKE ALL ON FUNCTION wg_group_reader(uuid) FROM PUBLIC")
    op.execute(f"GRANT EXECUTE ON FUNCTION wg_group_reader(uuid) TO {app}")


def downgrade() -> None:
    op.execute("DROP FUNCTION wg_group_reader(uuid)")
