"""Calendar feeds: secret URLs a tenant gives its calendar clients.

Revision ID: 0014_calendar_feeds
Revises: 0013_meeting_slots

A feed belongs to one tenant (forced tenant RLS, `tenant_id` in the key) and stores only the
SHA-256 of its token (256 random bits, shown once). A calendar client presents the token before
any tenant is known, so `calendar_feed_for_token(hash)` (the owner's, SECURITY DEFINER) answers
the tenant and the feed id of a live feed with that hash, with what its ETag is made of (the
groups it shows now and their version): a polling client's 304 is that one statement. A calendar
that changed is read in that tenant's transaction, under RLS, so it shows what the tenant may read
now.
`meeting_calendar_version(groups)` answers the count and latest `updated_at` of the occurrences
and series of those of the groups the caller is an active member of: what a calendar's ETag is
made of, without the per-row policy (a polling client's 304 reads nothing else).
"""

from alembic import op

from wg_api.platform.rls import migration_role, tenant_rls_statements

revision = "0014_calendar_feeds"
down_revision = "0013_meeting_slots"
branch_labels = None
depends_on = None

SEARCH_PATH = "pg_catalog, public, pg_temp"


def upgrade() -> None:
    app, owner = migration_role("app"), migration_role("owner")
    op.execute(
        """
        CREATE TABLE calendar_feeds (
            tenant_id uuid NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
            id uuid NOT NULL,
            working_group_id uuid REFERENCES working_groups (id) ON DELETE CASCADE,
            name text CHECK (length(name) BETWEEN 1 AND 100),
            token_hash bytea NOT NULL CHECK (length(token_hash) = 32),
            created_at timestamptz NOT NULL DEFAULT now(),
            revoked_at timestamptz,
            PRIMARY KEY (tenant_id, id),
            UNIQUE (tenant_id, token_hash)
        )
        """
    )
    op.execute("CREATE INDEX calendar_feeds_token ON calendar_feeds (token_hash)")
    op.execute("CREATE INDEX calendar_feeds_list ON calendar_feeds (tenant_id, created_at, id)")
    for statement in tenant_rls_statements("calendar_feeds"):
        op.execute(statement)
    # Revoked, never deleted or changed otherwise: a feed keeps its token hash and dates.
    op.execute(f"REVOKE UPDATE, DELETE ON calendar_feeds FROM {app}")
    op.execute(f"GRANT UPDATE (revoked_at) ON calendar_feeds TO {app}")

    op.execute(f"CREATE POLICY owner_lookup ON calendar_feeds FOR SELECT TO {owner} USING (true)")
    op.execute(
        f"""
        CREATE FUNCTION calendar_feed_for_token(p_token_hash bytea)
        RETURNS TABLE (tenant_id uuid, feed_id uuid, all_groups boolean, group_id uuid,
                       group_name text, group_updated timestamptz, meetings bigint,
                       meetings_updated timestamptz, series bigint, series_updated timestamptz)
        LANGUAGE sql STABLE SECURITY DEFINER SET search_path = {SEARCH_PATH}
        AS $$
            -- The live feed with this hash, the groups it shows now (those of the feed's
            -- tenant's active memberships: all of them, or the feed's one) and their version:
            -- what the feed's ETag is made of, so a polling client's 304 is one round trip.
            -- No row: no such live feed. A row with no group_id: nothing shown.
            WITH feed AS (
                SELECT f.tenant_id, f.id, f.working_group_id FROM public.calendar_feeds f
                WHERE f.token_hash = p_token_hash AND f.revoked_at IS NULL
            ), shown AS (
                SELECT g.id, g.name, g.updated_at
                FROM feed
                JOIN public.working_group_members m
                  ON m.tenant_id = feed.tenant_id AND m.status = 'active'
                 AND (feed.working_group_id IS NULL OR m.group_id = feed.working_group_id)
                JOIN public.working_groups g ON g.id = m.group_id
            ), version AS (
                SELECT
                    (SELECT count(*) FROM public.meetings x
                     WHERE x.working_group_id IN (SELECT id FROM shown)) AS meetings,
                    (SELECT max(x.updated_at) FROM public.meetings x
                     WHERE x.working_group_id IN (SELECT id FROM shown)) AS meetings_updated,
                    (SELECT count(*) FROM public.meeting_series x
                     WHERE x.working_group_id IN (SELECT id FROM shown)) AS series,
                    (SELECT max(x.updated_at) FROM public.meeting_series x
                     WHERE x.working_group_id IN (SELECT id FROM shown)) AS series_updated
            )
            SELECT feed.tenant_id, feed.id, feed.working_group_id IS NULL,
                   shown.id, shown.name, shown.updated_at,
                   version.meetings, version.meetings_updated, version.series,
                   version.series_updated
            FROM feed CROSS JOIN version LEFT JOIN shown ON true
        $$
        """
    )
    op.execute("REVOKE ALL ON FUNCTION calendar_feed_for_token(bytea) FROM PUBLIC")
    op.execute(f"GRANT EXECUTE ON FUNCTION calendar_feed_for_token(bytea) TO {app}")

    # A calendar's version (what its ETag is made of) for the groups the caller is an active
    # member of: one membership check per group instead of the RLS policy on every row.
    op.execute(
        f"""
        CREATE FUNCTION meeting_calendar_version(p_groups uuid[])
        RETURNS TABLE (meetings bigint, meetings_updated timestamptz,
                       series bigint, series_updated timestamptz)
        LANGUAGE sql STABLE SECURITY DEFINER SET search_path = {SEARCH_PATH}
        AS $$
            WITH mine AS (
                SELECT g.id FROM unnest(p_groups) AS g (id)
                WHERE public.wg_group_role(g.id) IS NOT NULL
            )
            SELECT m.n, m.latest, s.n, s.latest
            FROM (SELECT count(*) AS n, max(x.updated_at) AS latest FROM public.meetings x
                  WHERE x.working_group_id IN (SELECT id FROM mine)) m,
                 (SELECT count(*) AS n, max(x.updated_at) AS latest FROM public.meeting_series x
                  WHERE x.working_group_id IN (SELECT id FROM mine)) s
        $$
        """
    )
    op.execute("REVOKE ALL ON FUNCTION meeting_calendar_version(uuid[]) FROM PUBLIC")
    op.execute(f"GRANT EXECUTE ON FUNCTION meeting_calendar_version(uuid[]) TO {app}")


def downgrade() -> None:
    op.execute("DROP FUNCTION meeting_calendar_version(uuid[])")
    op.execute("DROP FUNCTION calendar_feed_for_token(bytea)")
    op.execute("DROP TABLE calendar_feeds")
