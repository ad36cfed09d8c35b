"""Meeting slots: when the member tenants of a group are in other groups' meetings.

Revision ID: 0013_meeting_slots
Revises: 0012_meetings

A slot is not free for a tenant that is in another wg-api meeting of any group it is in, and the
caller cannot read those groups' meetings. `meeting_slot_busy_times(group, from, to)` answers,
to an active member of `group` only, the start and end of every scheduled meeting of the other
groups of its member tenants (role member or facilitator) in a window of at most 100 days: no
meeting id, title or group, only when each tenant is busy.
"""

from alembic import op

from wg_api.platform.rls import migration_role

revision = "0013_meeting_slots"
down_revision = "0012_meetings"
branch_labels = None
depends_on = None

SEARCH_PATH = "pg_catalog, public, pg_temp"
SIGNATURE = "meeting_slot_busy_times(uuid, timestamptz, timestamptz)"


def upgrade() -> None:
    app = migration_role("app")
    # Meetings last at most 1440 minutes: the start bound keeps to meetings_group_start.
    op.execute(
        f"""
        CREATE FUNCTION meeting_slot_busy_times(p_group uuid, p_from timestamptz,
                                                p_to timestamptz)
        RETURNS TABLE (busy_tenant uuid, busy_from timestamptz, busy_to timestamptz)
        LANGUAGE sql STABLE SECURITY DEFINER SET search_path = {SEARCH_PATH}
        AS $$
            SELECT DISTINCT a.tenant_id, mt.starts_at, mt.ends_at
            FROM public.working_group_members a
            JOIN public.working_group_members o
              ON o.tenant_id = a.tenant_id AND o.status = 'active' AND o.group_id <> p_group
            JOIN public.meetings mt ON mt.working_group_id = o.group_id
            WHERE public.wg_group_role(p_group) IS NOT NULL
              AND p_to - p_from <= interval '100 days'
              AND a.group_id = p_group AND a.status = 'active'
              AND a.role IN ('member', 'facilitator')
              AND mt.status = 'scheduled'
              AND mt.starts_at >= p_from - interval '1440 minutes'
              AND mt.starts_at < p_to
              AND mt.ends_at > p_from
            ORDER BY 1, 2
        $$
        """
    )
    op.execute(f"REVOKE ALL ON FUNCTION {SIGNATURE} FROM PUBLIC")
    op.execute(f"GRANT EXECUTE ON FUNCTION {SIGNATURE} TO {app}")


def downgrade() -> None:
    op.execute(f"DROP FUNCTION {SIGNATURE}")
