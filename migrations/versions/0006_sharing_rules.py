"""Sharing rules that need to see past the caller's own memberships.

Revision ID: 0006_sharing_rules
Revises: 0005_insight_tallies

Two STABLE SECURITY DEFINER functions, because the app role sees only the members of groups its
tenant is an active member of, while these rules must count members of other groups too:

- `wg_group_below_threshold(group)`: whether the group's member tenants that can share (members
  and facilitators, never observers) are fewer than its anonymity threshold; such a group hides
  its shared findings and insights. NULL unless the caller is an active member of the group or
  has contributed a record to it, so it tells nothing about other groups.
- `share_linkable_groups(finding, group)`: the groups into which the caller's finding is already
  actively shared, when fewer than k + 1 tenants that can share (observers never count) are
  members of `group` and of every one of them (k the largest of their thresholds); NULL when the
  share may go ahead. A member of the groups would see the same record in each and could narrow
  its contributor down to the few tenants in all of them. With one other group this is the
  contract's rule for two groups; with more it also closes what each pair alone leaves open.
"""

from alembic import op

from wg_api.platform.rls import CURRENT_TENANT, migration_role

revision = "0006_sharing_rules"
down_revision = "0005_insight_tallies"
branch_labels = None
depends_on = None

SEARCH_PATH = "pg_catalog, public, pg_temp"
SHARING_ROLES = "('member', 'facilitator')"
FUNCTIONS = ("wg_group_below_threshold(uuid)", "share_linkable_groups(uuid, uuid)")


def upgrade() -> None:
    app = migration_role("app")
    op.execute(
        f"""
        CREATE FUNCTION wg_group_below_threshold(p_group uuid) RETURNS boolean
        LANGUAGE sql STABLE SECURITY DEFINER SET search_path = {SEARCH_PATH}
        AS $$
            SELECT (
                SELECT count(*) FROM public.working_group_members m
                WHERE m.group_id = g.id AND m.status = 'active' AND m.role IN {SHARING_ROLES}
            ) < g.anonymity_threshold
            FROM public.working_groups g
            WHERE g.id = p_group
              AND (wg_group_role(p_group) IS NOT NULL
                   OR EXISTS (SELECT 1 FROM public.shared_findings f
                              WHERE f.group_id = p_group AND f.contributor = {CURRENT_TENANT}))
        $$
        """
    )
    op.execute(
        f"""
        CREATE FUNCTION share_linkable_groups(p_finding uuid, p_group uuid) RETURNS uuid[]
        LANGUAGE plpgsql STABLE SECURITY DEFINER SET search_path = {SEARCH_PATH}
        AS $$
        DECLARE
            caller uuid := {CURRENT_TENANT};
            linked uuid[];
            k int;
            common bigint;
        BEGIN
            IF wg_group_role(p_group) IS DISTINCT FROM 'member'
               AND wg_group_role(p_group) IS DISTINCT FROM 'facilitator' THEN
                RAISE EXCEPTION 'not a sharing member of this group' USING ERRCODE = '42501';
            END IF;
            SELECT array_agg(s.group_id ORDER BY s.group_id), max(g.anonymity_threshold)
            INTO linked, k
            FROM public.shares s JOIN public.working_groups g ON g.id = s.group_id
            WHERE s.tenant_id = caller AND s.finding_id = p_finding AND s.status = 'active'
              AND s.group_id <> p_group;
            IF linked IS NULL THEN
                RETURN NULL;
            END IF;
            SELECT greatest(k, g.anonymity_threshold) INTO k
            FROM public.working_groups g WHERE g.id = p_group;
            -- The tenants that can share in every one of the groups: whom a reader of all of
            -- them could still suspect (pairs of groups have at least these in common).
            SELECT count(*) INTO common FROM (
                SELECT m.tenant_id FROM public.working_group_members m
                WHERE m.group_id = ANY (linked || p_group)
                  AND m.status = 'active' AND m.role IN {SHARING_ROLES}
                GROUP BY m.tenant_id
                HAVING count(*) = cardinality(linked) + 1
            ) everywhere;
            RETURN CASE WHEN common < k + 1 THEN linked END;
        END
        $$
        """
    )
    for function in FUNCTIONS:
        op.execute(f"REVOKE ALL ON FUNCTION {function} FROM PUBLIC")
        op.execute(f"GRANT EXECUTE ON FUNCTION {function} TO {app}")


def downgrade() -> None:
    for function in reversed(FUNCTIONS):
        op.execute(f"DROP FUNCTION {function}")
