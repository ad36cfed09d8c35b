"""Sharing rules that need to see past the caller's own memberships.

Revision ID: 0010_sharing_rules
Revises: 0005_insight_tallies

Two STABLE SECURITY DEFINER functions, because the app role sees only the members of groups its
tenant is an active member of, while these rules must count members of other groups too:

- `wg_group_below_threshold(group)`: whether the group's member tenants that can share (members
  and facilitators, never observers) are fewer than its anonymity threshold; such a group hides
  its shared findings and insights. NULL unless the caller is an active member of the group or
  has contributed a record to it, so it tells nothing about other groups.
- `share_linkable_group(finding, group)`: a group into which the caller's finding is already
  actively shared and which has fewer than k + 1 member tenants (observers never count) in common
  with `group` (k the larger of the two thresholds), or NULL. A member of both groups would see
  the same record twice and could narrow its contributor down to the few tenants in both.
"""

from alembic import op

from wg_api.platform.rls import CURRENT_TENANT, migration_role

revision = "0010_sharing_rules"
down_revision = "0005_insight_tallies"
branch_labels = None
depends_on = None

SEARCH_PATH = "pg_catalog, public, pg_temp"
SHARING_ROLES = "('member', 'facilitator')"
FUNCTIONS = ("wg_group_below_threshold(uuid)", "share_linkable_group(uuid, uuid)")


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
        CREATE FUNCTION share_linkable_group(p_finding uuid, p_group uuid) RETURNS uuid
        LANGUAGE plpgsql STABLE SECURITY DEFINER SET search_path = {SEARCH_PATH}
        AS $$
        DECLARE
            caller uuid := {CURRENT_TENANT};
            linked uuid;
        BEGIN
            IF wg_group_role(p_group) IS DISTINCT FROM 'member'
               AND wg_group_role(p_group) IS DISTINCT FROM 'facilitator' THEN
                RAISE EXCEPTION 'not a sharing member of this group' USING ERRCODE = '42501';
            END IF;
            SELECT s.group_id INTO linked
            FROM public.shares s
            JOIN public.working_groups other ON other.id = s.group_id
            JOIN public.working_groups target ON target.id = p_group
            WHERE s.tenant_id = caller AND s.finding_id = p_finding AND s.status = 'active'
              AND s.group_id <> p_group
              AND (
                  SELECT count(*) FROM public.working_group_members a
                  JOIN public.working_group_members b
                      ON b.tenant_id = a.tenant_id AND b.group_id = p_group
                  WHERE a.group_id = s.group_id
                    AND a.status = 'active' AND a.role IN {SHARING_ROLES}
                    AND b.status = 'active' AND b.role IN {SHARING_ROLES}
              ) < greatest(other.anonymity_threshold, target.anonymity_threshold) + 1
            ORDER BY s.group_id
            LIMIT 1;
            RETURN linked;
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
