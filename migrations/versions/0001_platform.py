"""Platform: privileges, tenants, the event outbox, idempotency keys and jobs.

Revision ID: 0001_platform
Revises:
"""

from alembic import op

from wg_api.platform.rls import CURRENT_TENANT, migration_role, tenant_rls_statements

revision = "0001_platform"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    app, system = migration_role("app"), migration_role("system")
    op.execute(
        f"ALTER DEFAULT PRIVILEGES IN SCHEMA public "
        f"GRANT SELECT, INSERT, UPDATE, DELETE ON TABLES TO {app}, {system}"
    )
    op.execute(
        f"ALTER DEFAULT PRIVILEGES IN SCHEMA public "
        f"GRANT USAGE, SELECT ON SEQUENCES TO {app}, {system}"
    )
    op.execute(f"GRANT SELECT ON alembic_version TO {app}, {system}")

    op.execute(
        """
        CREATE TABLE tenants (
            id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
            slug text NOT NULL UNIQUE CHECK (slug ~ '^[a-z0-9](?:[a-z0-9-]{0,62}[a-z0-9])?$'),
            name text NOT NULL CHECK (length(name) BETWEEN 1 AND 200),
            kind text NOT NULL CHECK (kind IN ('brand', 'facilitator')),
            timezone text NOT NULL DEFAULT 'Asia/Hong_Kong',
            created_at timestamptz NOT NULL DEFAULT now()
        )
        """
    )
    op.execute("CREATE INDEX tenants_name_trgm ON tenants USING gin (lower(name) gin_trgm_ops)")
    # The directory is readable by every tenant; a tenant may only change its own row.
    op.execute("ALTER TABLE tenants ENABLE ROW LEVEL SECURITY")
    op.execute("ALTER TABLE tenants FORCE ROW LEVEL SECURITY")
    op.execute("CREATE POLICY tenants_directory ON tenants FOR SELECT USING (true)")
    op.execute(
        f"CREATE POLICY tenants_self ON tenants FOR UPDATE USING (id = {CURRENT_TENANT}) "
        f"WITH CHECK (id = {CURRENT_TENANT})"
    )

    # The outbox. `xid` orders the change feed safely: a reader only sees events of transactions
    # older than every transaction still running, so a late commit can never be skipped.
    op.execute(
        """
        CREATE TABLE events (
            seq bigserial PRIMARY KEY,
            id uuid NOT NULL UNIQUE DEFAULT gen_random_uuid(),
            tenant_id uuid NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
            xid xid8 NOT NULL DEFAULT pg_current_xact_id(),
            type text NOT NULL,
            occurred_at timestamptz NOT NULL DEFAULT now(),
            data jsonb NOT NULL
        )
        """
    )
    op.execute("CREATE INDEX events_feed ON events (tenant_id, xid, seq)")
    op.execute("CREATE INDEX events_occurred_at ON events (occurred_at)")
    for statement in tenant_rls_statements("events"):
        op.execute(statement)

    op.execute(
        """
        CREATE TABLE idempotency_keys (
            tenant_id uuid NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
            key text NOT NULL CHECK (length(key) BETWEEN 1 AND 255),
            request_hash bytea NOT NULL,
            status_code int NOT NULL,
            headers jsonb NOT NULL,
            body bytea NOT NULL,
            created_at timestamptz NOT NULL DEFAULT now(),
            expires_at timestamptz NOT NULL,
            PRIMARY KEY (tenant_id, key)
        )
        """
    )
    op.execute("CREATE INDEX idempotency_keys_expiry ON idempotency_keys (expires_at)")
    for statement in tenant_rls_statements("idempotency_keys"):
        op.execute(statement)

    op.execute(
        """
        CREATE TABLE jobs (
            id bigserial PRIMARY KEY,
            name text NOT NULL,
            fire_time timestamptz NOT NULL,
            status text NOT NULL DEFAULT 'pending'
                CHECK (status IN ('pending', 'running', 'done', 'failed')),
            attempts int NOT NULL DEFAULT 0,
            claimed_by text,
            claimed_at timestamptz,
            finished_at timestamptz,
            last_error text,
            result jsonb,
            created_at timestamptz NOT NULL DEFAULT now(),
            UNIQUE (name, fire_time)
        )
        """
    )
    op.execute("CREATE INDEX jobs_pending ON jobs (fire_time) WHERE status = 'pending'")
    # The request-serving role never touches jobs.
    op.execute(f"REVOKE ALL ON jobs FROM {app}")
    op.execute(f"REVOKE ALL ON SEQUENCE jobs_id_seq FROM {app}")


def downgrade() -> None:
    app, system = migration_role("app"), migration_role("system")
    op.execute("DROP TABLE jobs")
    op.execute("DROP TABLE idempotency_keys")
    op.execute("DROP TABLE events")
    op.execute("DROP TABLE tenants")
    op.execute(
        f"ALTER DEFAULT PRIVILEGES IN SCHEMA public "
        f"REVOKE USAGE, SELECT ON SEQUENCES FROM {app}, {system}"
    )
    op.execute(
        f"ALTER DEFAULT PRIVILEGES IN SCHEMA public "
        f"REVOKE SELECT, INSERT, UPDATE, DELETE ON TABLES FROM {app}, {system}"
    )
