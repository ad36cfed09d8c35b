"""Calendar feeds: secret URLs a tenant gives its calendar clients.

Revision ID: 0013_calendar_feeds
Revises: 0012_meetings

A feed belongs to one tenant (forced tenant RLS, `tenant_id` in the key) and stores only the
SHA-256 of its token (256 random bits, shown once). A calendar client presents the token before
any tenant is known, so `calendar_feed_for_token(hash)` (the owner's, SECURITY DEFINER) answers
only the tenant and the feed id of a live feed with that hash; everything else is read in that
tenant's transaction, under RLS, so the feed shows what the tenant may read now.
"""

from alembic import op

from wg_api.platform.rls import migration_role, tenant_rls_statements

revision = "0013_calendar_feeds"
down_revision = "0012_meetings"
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
        RETURNS TABLE (tenant_id uuid, feed_id uuid)
        LANGUAGE sql STABLE SECURITY DEFINER SET search_path = {SEARCH_PATH}
        AS $$
            SELECT f.tenant_id, f.id FROM public.calendar_feeds f
            WHERE f.token_hash = p_token_hash AND f.revoked_at IS NULL
        $$
        """
    )
    op.execute("REVOKE ALL ON FUNCTION calendar_feed_for_token(bytea) FROM PUBLIC")
    op.execute(f"GRANT EXECUTE ON FUNCTION calendar_feed_for_token(bytea) TO {app}")


def downgrade() -> None:
    op.execute("DROP FUNCTION calendar_feed_for_token(bytea)")
    op.execute("DROP TABLE calendar_feeds")
