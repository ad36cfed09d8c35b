"""What a reader of a group needs, kept per group: `group_readers`.

Revision ID: 0020_group_readers
Revises: 0019_policy_groups_once

Every read of a group's shared findings needs to know whether the group's active sharing members
are fewer than its anonymity threshold, and the names to redact there: the names, slugs and aliases
of its member tenants (any status) and of the tenants invited to it. `wg_group_reader` (0018)
computed both on every call, in PL/pgSQL as the owner: about 0.15 ms of the database's time per
page, more than the page's own SELECT once row-level security stopped calling a function per row
(0019).

`group_readers` keeps them, one row per working group, and triggers keep the row exact in the
same transaction as every change it depends on: memberships (any change of tenant, status or
role), invitations (any change of status), tenants' names and slugs, tenant aliases, new groups
and a group's threshold. A change recomputes its groups' rows from the tables (never by
arithmetic on the old row), after taking the row's lock, so two transactions changing one group's
members one after the other each see the other's committed change: the later one's recount
includes both. A deleted group
takes its row with it (foreign key).

Active members read their groups' rows under row-level security (the same once-per-statement
policy as the other group tables); the list of shared findings joins it to the page in one
statement. `wg_group_reader` answers from it too, so both read paths redact with the same names.
`tests/sharing/test_group_reader.py` holds the rows equal to the live computation (the functions
`shared_finding_scrub_names` and `wg_group_below_threshold`) after each kind of change.
"""

from __future__ import annotations

from alembic import op

from wg_api.platform.rls import CURRENT_TENANT, migration_role

revision = "0020_group_readers"
down_revision = "0019_policy_groups_once"
branch_labels = None
depends_on = None

SEARCH_PATH = "pg_catalog, public, pg_temp"
SHARING_ROLES = "('member', 'facilitator')"
MEMBER = "group_id = ANY ((SELECT wg_active_groups())::uuid[])"

REFRESH = f"""
    CREATE FUNCTION wg_refresh_group_readers(p_groups uuid[]) RETURNS void
    LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = {SEARCH_PATH}
    AS $$
    DECLARE
        g uuid;
    BEGIN
        -- In the groups' order, so that two transactions lock shared rows in the same order.
        FOR g IN SELECT DISTINCT x FROM unnest(p_groups) AS x WHERE x IS NOT NULL ORDER BY x LOOP
            INSERT INTO public.group_readers (group_id)
            SELECT w.id FROM public.working_groups w WHERE w.id = g
            ON CONFLICT (group_id) DO NOTHING;
            -- The lock first: the recount below is a new statement, so it sees every change
            -- committed by a transaction that held the lock before.
            PERFORM 1 FROM public.group_readers r WHERE r.group_id = g FOR UPDATE;
            UPDATE public.group_readers r SET
                sharing_members = c.sharing,
                below_threshold = c.sharing < c.threshold,
                names = (
                    WITH t AS (
                        SELECT m.tenant_id FROM public.working_group_members m
                        WHERE m.group_id = g
                        UNION
                        SELECT i.tenant_id FROM public.invitations i
                        WHERE i.group_id = g AND i.status = 'pending'
                    )
                    SELECT coalesce(array_agg(DISTINCT term ORDER BY term), '{{}}') FROM (
                        SELECT unnest(ARRAY[tn.name, tn.slug]) FROM public.tenants tn
                        WHERE tn.id IN (SELECT tenant_id FROM t)
                        UNION ALL
                        SELECT a.alias FROM public.tenant_aliases a
                        WHERE a.tenant_id IN (SELECT tenant_id FROM t)
                    ) AS names (term)
                )
            FROM (
                SELECT w.anonymity_threshold AS threshold, (
                    SELECT count(*) FROM public.working_group_members m
                    WHERE m.group_id = g AND m.status = 'active' AND m.role IN {SHARING_ROLES}
                ) AS sharing
                FROM public.working_groups w WHERE w.id = g
            ) AS c
            WHERE r.group_id = g;
        END LOOP;
    END
    $$
"""

# The groups a tenant's names are redacted in: those it is a member of (any status) or invited to.
TENANT_GROUPS = """
    ARRAY(
        SELECT m.group_id FROM public.working_group_members m WHERE m.tenant_id = {tenant}
        UNION
        SELECT i.group_id FROM public.invitations i
        WHERE i.tenant_id = {tenant} AND i.status = 'pending'
    )
"""

# (trigger function, table, events, the groups to refresh, in PL/pgSQL)
FOLLOWERS = (
    (
        "group_readers_follow_members",
        "working_group_members",
        "INSERT OR DELETE OR UPDATE OF group_id, tenant_id, status, role",
        "ARRAY[CASE WHEN TG_OP <> 'DELETE' THEN NEW.group_id END, "
        "CASE WHEN TG_OP <> 'INSERT' THEN OLD.group_id END]",
    ),
    (
        "group_readers_follow_invitations",
        "invitations",
        "INSERT OR DELETE OR UPDATE OF group_id, tenant_id, status",
        "ARRAY[CASE WHEN TG_OP <> 'DELETE' THEN NEW.group_id END, "
        "CASE WHEN TG_OP <> 'INSERT' THEN OLD.group_id END]",
    ),
    (
        "group_readers_follow_tenants",
        "tenants",
        "UPDATE OF name, slug",
        TENANT_GROUPS.format(tenant="NEW.id"),
    ),
    (
        "group_readers_follow_aliases",
        "tenant_aliases",
        "INSERT OR DELETE OR UPDATE",
        "CASE WHEN TG_OP = 'DELETE' THEN "
        + TENANT_GROUPS.format(tenant="OLD.tenant_id")
        + " ELSE "
        + TENANT_GROUPS.format(tenant="NEW.tenant_id")
        + " || CASE WHEN TG_OP = 'UPDATE' THEN "
        + TENANT_GROUPS.format(tenant="OLD.tenant_id")
        + " ELSE '{}'::uuid[] END END",
    ),
    (
        "group_readers_follow_groups",
        "working_groups",
        "INSERT OR UPDATE OF anonymity_threshold",
        "ARRAY[NEW.id]",
    ),
)


def _follower(function: str, groups: str) -> str:
    return f"""
        CREATE FUNCTION {function}() RETURNS trigger
        LANGUAGE plpgsql SECURITY DEFINER SET search_path = {SEARCH_PATH}
        AS $$
        BEGIN
            PERFORM public.wg_refresh_group_readers({groups});
            RETURN NULL;
        END
        $$
    """


# wg_group_reader (0018) answering from group_readers: the role, then the group's row.
GROUP_READER = f"""
    CREATE OR REPLACE FUNCTION wg_group_reader(p_group uuid)
    RETURNS TABLE (role text, below boolean, names text[])
    LANGUAGE plpgsql STABLE SECURITY DEFINER SET search_path = {SEARCH_PATH}
    AS $$
    DECLARE
        caller uuid := {CURRENT_TENANT};
        v_role text;
        v_below boolean;
        v_names text[];
    BEGIN
        SELECT m.role INTO v_role FROM public.working_group_members m
        WHERE m.group_id = p_group AND m.tenant_id = caller AND m.status = 'active';
        -- The threshold: answered to an active member or a contributor, else null.
        IF v_role IS NULL THEN
            PERFORM 1 FROM public.shared_findings f
            WHERE f.group_id = p_group AND f.contributor = caller LIMIT 1;
        END IF;
        IF v_role IS NOT NULL OR FOUND THEN
            SELECT r.below_threshold, r.names INTO v_below, v_names
            FROM public.group_readers r WHERE r.group_id = p_group;
        END IF;
        -- The names only to an active member.
        RETURN QUERY SELECT v_role, coalesce(v_below, false),
            CASE WHEN v_role IS NOT NULL THEN coalesce(v_names, '{{}}') ELSE '{{}}' END;
    END
    $$
"""


def upgrade() -> None:
    app, owner = migration_role("app"), migration_role("owner")
    op.execute(
        """
        CREATE TABLE group_readers (
            group_id uuid PRIMARY KEY REFERENCES working_groups (id) ON DELETE CASCADE,
            sharing_members integer NOT NULL DEFAULT 0,
            below_threshold boolean NOT NULL DEFAULT true,
            names text[] NOT NULL DEFAULT '{}'
        )
        """
    )
    op.execute("ALTER TABLE group_readers ENABLE ROW LEVEL SECURITY")
    op.execute("ALTER TABLE group_readers FORCE ROW LEVEL SECURITY")
    op.execute(f"CREATE POLICY members_read ON group_readers FOR SELECT TO {app} USING ({MEMBER})")
    op.execute(
        f"CREATE POLICY owner_keeps ON group_readers FOR ALL TO {owner} USING (true) "
        "WITH CHECK (true)"
    )
    # Read-only to the app role (the default privileges of 0008 grant it writes on new tables).
    op.execute(f"REVOKE INSERT, UPDATE, DELETE ON group_readers FROM {app}")
    op.execute(f"GRANT SELECT ON group_readers TO {app}")
    op.execute(REFRESH)
    op.execute("REVOKE ALL ON FUNCTION wg_refresh_group_readers(uuid[]) FROM PUBLIC")
    for function, table, events, groups in FOLLOWERS:
        op.execute(_follower(function, groups))
        op.execute(f"REVOKE ALL ON FUNCTION {function}() FROM PUBLIC")
        op.execute(
            f"CREATE TRIGGER {function} AFTER {events} ON {table} "
            f"FOR EACH ROW EXECUTE FUNCTION {function}()"
        )
    op.execute("SELECT wg_refresh_group_readers(ARRAY(SELECT id FROM working_groups))")
    op.execute(GROUP_READER)


def downgrade() -> None:
    from pathlib import Path
    from runpy import run_path

    before = run_path(str(Path(__file__).with_name("0018_group_reader.py")))["GROUP_READER"]
    op.execute(before.replace("CREATE FUNCTION", "CREATE OR REPLACE FUNCTION", 1))
    for function, table, _, _ in FOLLOWERS:
        op.execute(f"DROP TRIGGER {function} ON {table}")
        op.execute(f"DROP FUNCTION {function}()")
    op.execute("DROP FUNCTION wg_refresh_group_readers(uuid[])")
    op.execute("DROP TABLE group_readers")
