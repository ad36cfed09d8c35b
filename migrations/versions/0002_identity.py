"""Identity: API clients, identity providers, users, the audit log and rate-limit windows.

Revision ID: 0002_identity
Revises: 0001_platform
"""

from alembic import op

from wg_api.platform.rls import migration_role, tenant_rls_statements

revision = "0002_identity"
down_revision = "0001_platform"
branch_labels = None
depends_on = None


def upgrade() -> None:
    app, owner = migration_role("app"), migration_role("owner")
    op.execute(
        """
        CREATE TABLE api_clients (
            id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
            tenant_id uuid NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
            client_id text NOT NULL UNIQUE,
            name text NOT NULL CHECK (length(name) BETWEEN 1 AND 100),
            role text NOT NULL CHECK (role IN ('admin', 'editor', 'viewer')),
            scopes text[] NOT NULL,
            secret_hash bytea NOT NULL,
            created_at timestamptz NOT NULL DEFAULT now(),
            secret_rotated_at timestamptz,
            revoked_at timestamptz
        )
        """
    )
    op.execute("CREATE INDEX api_clients_tenant ON api_clients (tenant_id, created_at, id)")
    for statement in tenant_rls_statements("api_clients"):
        op.execute(statement)

    op.execute(
        """
        CREATE TABLE identity_providers (
            id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
            tenant_id uuid NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
            issuer text NOT NULL UNIQUE CHECK (length(issuer) BETWEEN 1 AND 2000),
            audience text NOT NULL CHECK (length(audience) BETWEEN 1 AND 500),
            jwks_uri text CHECK (length(jwks_uri) BETWEEN 1 AND 2000),
            role_claim text CHECK (length(role_claim) BETWEEN 1 AND 100),
            default_role text NOT NULL CHECK (default_role IN ('admin', 'editor', 'viewer')),
            created_at timestamptz NOT NULL DEFAULT now()
        )
        """
    )
    op.execute(
        "CREATE INDEX identity_providers_tenant ON identity_providers (tenant_id, created_at, id)"
    )
    for statement in tenant_rls_statements("identity_providers"):
        op.execute(statement)

    op.execute(
        """
        CREATE TABLE users (
            id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
            tenant_id uuid NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
            identity_provider_id uuid REFERENCES identity_providers (id) ON DELETE SET NULL,
            issuer text NOT NULL,
            subject text NOT NULL,
            name text NOT NULL,
            email text,
            role text NOT NULL CHECK (role IN ('admin', 'editor', 'viewer')),
            created_at timestamptz NOT NULL DEFAULT now(),
            last_seen_at timestamptz NOT NULL DEFAULT now(),
            UNIQUE (tenant_id, issuer, subject)
        )
        """
    )
    # A person is (issuer, subject) within a tenant (OIDC Core §5.7), so removing and re-adding
    # the tenant's identity provider keeps its people and what they did.
    op.execute("CREATE INDEX users_tenant ON users (tenant_id, created_at, id)")
    for statement in tenant_rls_statements("users"):
        op.execute(statement)

    op.execute(
        """
        CREATE TABLE audit_log (
            seq bigserial PRIMARY KEY,
            id uuid NOT NULL UNIQUE DEFAULT gen_random_uuid(),
            tenant_id uuid NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
            occurred_at timestamptz NOT NULL DEFAULT now(),
            actor_type text NOT NULL,
            actor_id uuid,
            actor_name text NOT NULL,
            action text NOT NULL,
            target_type text NOT NULL,
            target_id uuid,
            details jsonb NOT NULL DEFAULT '{}'::jsonb
        )
        """
    )
    op.execute("CREATE INDEX audit_log_tenant ON audit_log (tenant_id, seq)")
    for statement in tenant_rls_statements("audit_log"):
        op.execute(statement)
    # Append-only for the request-serving role.
    op.execute(f"REVOKE UPDATE, DELETE, TRUNCATE ON audit_log FROM {app}")

    # Lookups that must happen before the tenant is known (a token request, a person's token)
    # go through these two functions only; the owner may read those rows, nobody else.
    op.execute(f"CREATE POLICY owner_lookup ON api_clients FOR SELECT TO {owner} USING (true)")
    op.execute(
        f"CREATE POLICY owner_lookup ON identity_providers FOR SELECT TO {owner} USING (true)"
    )
    op.execute(
        """
        CREATE FUNCTION api_client_for_token(p_client_id text)
        RETURNS TABLE (id uuid, tenant_id uuid, name text, role text, scopes text[],
                       secret_hash bytea, revoked_at timestamptz)
        LANGUAGE sql STABLE SECURITY DEFINER SET search_path = pg_catalog, public
        AS $$
            SELECT c.id, c.tenant_id, c.name, c.role, c.scopes, c.secret_hash, c.revoked_at
            FROM public.api_clients c WHERE c.client_id = p_client_id
        $$
        """
    )
    op.execute(
        """
        CREATE FUNCTION identity_provider_for_issuer(p_issuer text)
        RETURNS TABLE (id uuid, tenant_id uuid, issuer text, audience text, jwks_uri text,
                       role_claim text, default_role text)
        LANGUAGE sql STABLE SECURITY DEFINER SET search_path = pg_catalog, public
        AS $$
            SELECT p.id, p.tenant_id, p.issuer, p.audience, p.jwks_uri, p.role_claim,
                   p.default_role
            FROM public.identity_providers p WHERE p.issuer = p_issuer
        $$
        """
    )

    # Rate-limit windows are shared by every API replica; only this function touches them.
    op.execute(
        """
        CREATE TABLE rate_limit_windows (
            bucket text NOT NULL,
            window_start timestamptz NOT NULL,
            hits bigint NOT NULL,
            PRIMARY KEY (bucket, window_start)
        )
        """
    )
    op.execute(f"REVOKE ALL ON rate_limit_windows FROM {app}")
    op.execute(
        """
        CREATE FUNCTION rate_limit_hit(p_bucket text, p_window_start timestamptz, p_hits bigint)
        RETURNS bigint
        LANGUAGE sql VOLATILE SECURITY DEFINER SET search_path = pg_catalog, public
        AS $$
            INSERT INTO public.rate_limit_windows AS w (bucket, window_start, hits)
            VALUES (p_bucket, p_window_start, p_hits)
            ON CONFLICT (bucket, window_start) DO UPDATE SET hits = w.hits + excluded.hits
            RETURNING w.hits
        $$
        """
    )


def downgrade() -> None:
    op.execute("DROP FUNCTION rate_limit_hit(text, timestamptz, bigint)")
    op.execute("DROP TABLE rate_limit_windows")
    op.execute("DROP FUNCTION identity_provider_for_issuer(text)")
    op.execute("DROP FUNCTION api_client_for_token(text)")
    op.execute("DROP TABLE audit_log")
    op.execute("DROP TABLE users")
    op.execute("DROP TABLE identity_providers")
    op.execute("DROP TABLE api_clients")
