"""Least privilege: cross-tenant work through the owner's functions; fewer grants everywhere.

Revision ID: 0008_least_privilege
Revises: 0007_feed_privacy

No role needs BYPASSRLS any more, so the service runs the same on a managed PostgreSQL (where the
roles are made once by a DBA, `wg-api db roles-sql`) as on a superuser's server:

- Tenant creation and the purges of the worker (expired idempotency keys, events past the
  retention, old rate-limit windows) are SECURITY DEFINER functions owned by the owner role, which
  owner-only policies let insert tenants and delete those rows; only the system role may run them.
- The system role keeps the jobs table and reads the tenant directory; it loses every other table
  (and the default grants on tables and sequences made from now on).
- `api_client_for_token`, `identity_provider_for_issuer` and `rate_limit_hit` were executable by
  PUBLIC (any role could read every client's secret hash): the app role only. Trigger functions
  are executable by nobody (a trigger fires whatever its function's grants). Functions the owner
  creates from now on start with no PUBLIC EXECUTE.
- The app role may no longer change or remove the supplier registry, insert or remove tenants, or
  write a membership's `joined_at` and `left_at`: a trigger keeps those dates, and only `role` and
  `status` are updatable.
"""

from alembic import op

from wg_api.platform.rls import migration_role

revision = "0008_least_privilege"
down_revision = "0007_feed_privacy"
branch_labels = None
depends_on = None

# Functions that run as the owner look names up in the catalog and public only, pg_temp last.
SEARCH_PATH = "pg_catalog, public, pg_temp"

# Executable by PUBLIC until this revision; the app role is the one that calls them.
APP_FUNCTIONS = (
    "api_client_for_token(text)",
    "identity_provider_for_issuer(text)",
    "rate_limit_hit(text, timestamptz, bigint)",
)
# Trigger functions of 0003, executable by PUBLIC until this revision.
TRIGGER_FUNCTIONS = (
    "wg_membership_guard()",
    "wg_invitation_guard()",
    "supplier_links_fill_name()",
    "suppliers_rename_links()",
)
# The cross-tenant work of the system role.
SYSTEM_FUNCTIONS = (
    "create_tenant(text, text, text, text)",
    "purge_idempotency_keys()",
    "purge_events(int)",
    "purge_rate_limit_windows()",
)
# The tables of 0001-0004 the system role had every DML privilege on (0005's it never had).
SYSTEM_TABLES_BEFORE = (
    "tenants",
    "events",
    "idempotency_keys",
    "jobs",
    "api_clients",
    "identity_providers",
    "users",
    "audit_log",
    "rate_limit_windows",
    "working_groups",
    "working_group_members",
    "invitations",
    "suppliers",
    "supplier_links",
    "findings",
    "shared_findings",
    "shares",
)
SYSTEM_SEQUENCES_BEFORE = ("events_seq_seq", "audit_log_seq_seq", "jobs_id_seq")

FUNCTIONS = f"""
    CREATE FUNCTION create_tenant(p_slug text, p_name text, p_kind text, p_timezone text)
    RETURNS SETOF tenants
    LANGUAGE sql VOLATILE SECURITY DEFINER SET search_path = {SEARCH_PATH}
    AS $$
        INSERT INTO public.tenants (slug, name, kind, timezone)
        VALUES (p_slug, p_name, p_kind, p_timezone)
        RETURNING *
    $$
    ---
    CREATE FUNCTION purge_idempotency_keys() RETURNS bigint
    LANGUAGE sql VOLATILE SECURITY DEFINER SET search_path = {SEARCH_PATH}
    AS $$
        WITH gone AS (
            DELETE FROM public.idempotency_keys WHERE expires_at < now() RETURNING 1
        )
        SELECT count(*) FROM gone
    $$
    ---
    CREATE FUNCTION purge_events(p_retention_days int) RETURNS bigint
    LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = {SEARCH_PATH}
    AS $$
    DECLARE
        deleted bigint;
    BEGIN
        -- The caller chooses the retention, never an empty feed.
        IF p_retention_days IS NULL OR p_retention_days < 1 THEN
            RAISE EXCEPTION 'the retention is at least one day' USING ERRCODE = '22023';
        END IF;
        -- An hour's margin for a reader whose cursor was stamped while another reader was
        -- still handing out positions (platform/events.py, migration 0007).
        DELETE FROM public.events
        WHERE coalesce(positioned_at, visible_at)
              < now() - make_interval(days => p_retention_days) - interval '1 hour';
        GET DIAGNOSTICS deleted = ROW_COUNT;
        RETURN deleted;
    END
    $$
    ---
    CREATE FUNCTION purge_rate_limit_windows() RETURNS bigint
    LANGUAGE sql VOLATILE SECURITY DEFINER SET search_path = {SEARCH_PATH}
    AS $$
        -- One row per bucket and minute; a day back is plenty.
        WITH gone AS (
            DELETE FROM public.rate_limit_windows
            WHERE window_start < now() - interval '1 day' RETURNING 1
        )
        SELECT count(*) FROM gone
    $$
"""

MEMBERSHIP_DATES = f"""
    CREATE FUNCTION wg_membership_dates() RETURNS trigger
    LANGUAGE plpgsql SET search_path = {SEARCH_PATH}
    AS $$
    BEGIN
        IF NEW.status = 'active' AND OLD.status <> 'active' THEN
            NEW.joined_at := now();
            NEW.left_at := NULL;
        ELSIF NEW.status <> 'active' AND OLD.status = 'active' THEN
            NEW.joined_at := OLD.joined_at;
            NEW.left_at := now();
        ELSE
            NEW.joined_at := OLD.joined_at;
            NEW.left_at := OLD.left_at;
        END IF;
        RETURN NEW;
    END
    $$
"""


def upgrade() -> None:
    app, owner, system = migration_role("app"), migration_role("owner"), migration_role("system")

    # Functions: only the role that calls each one.
    op.execute(f"ALTER DEFAULT PRIVILEGES FOR ROLE {owner} REVOKE EXECUTE ON FUNCTIONS FROM PUBLIC")
    for function in APP_FUNCTIONS:
        op.execute(f"REVOKE ALL ON FUNCTION {function} FROM PUBLIC")
        op.execute(f"GRANT EXECUTE ON FUNCTION {function} TO {app}")
    for function in TRIGGER_FUNCTIONS:
        op.execute(f"REVOKE ALL ON FUNCTION {function} FROM PUBLIC")

    # Cross-tenant work: the owner's functions, held to owner-only policies.
    op.execute(f"CREATE POLICY owner_creates ON tenants FOR INSERT TO {owner} WITH CHECK (true)")
    for table in ("idempotency_keys", "events"):
        # A DELETE with a WHERE clause reads the rows too.
        op.execute(f"CREATE POLICY owner_lookup ON {table} FOR SELECT TO {owner} USING (true)")
        op.execute(f"CREATE POLICY owner_purges ON {table} FOR DELETE TO {owner} USING (true)")
    for statement in FUNCTIONS.split("---"):
        op.execute(statement)
    for function in SYSTEM_FUNCTIONS:
        op.execute(f"REVOKE ALL ON FUNCTION {function} FROM PUBLIC")
        op.execute(f"GRANT EXECUTE ON FUNCTION {function} TO {system}")

    # The system role: the jobs table and the directory; nothing else, now or later.
    op.execute(f"REVOKE ALL ON ALL TABLES IN SCHEMA public FROM {system}")
    op.execute(f"REVOKE ALL ON ALL SEQUENCES IN SCHEMA public FROM {system}")
    op.execute(f"GRANT SELECT, INSERT, UPDATE, DELETE ON jobs TO {system}")
    op.execute(f"GRANT USAGE, SELECT ON SEQUENCE jobs_id_seq TO {system}")
    op.execute(f"GRANT SELECT ON tenants, alembic_version TO {system}")
    op.execute(
        f"ALTER DEFAULT PRIVILEGES FOR ROLE {owner} IN SCHEMA public "
        f"REVOKE ALL ON TABLES FROM {system}"
    )
    op.execute(
        f"ALTER DEFAULT PRIVILEGES FOR ROLE {owner} IN SCHEMA public "
        f"REVOKE ALL ON SEQUENCES FROM {system}"
    )

    # The app role: the registry is matched and added to; tenants are made by the system role.
    op.execute(f"REVOKE UPDATE, DELETE ON suppliers FROM {app}")
    op.execute(f"REVOKE INSERT, DELETE ON tenants FROM {app}")

    # Memberships: a tenant inserts its row and changes role and status; the dates follow status.
    op.execute(MEMBERSHIP_DATES)
    op.execute("REVOKE ALL ON FUNCTION wg_membership_dates() FROM PUBLIC")
    op.execute(
        "CREATE TRIGGER membership_dates BEFORE UPDATE ON working_group_members "
        "FOR EACH ROW EXECUTE FUNCTION wg_membership_dates()"
    )
    op.execute(f"REVOKE INSERT ON working_group_members FROM {app}")
    op.execute(f"GRANT INSERT (group_id, tenant_id, role) ON working_group_members TO {app}")
    op.execute(f"REVOKE UPDATE (joined_at, left_at) ON working_group_members FROM {app}")


def downgrade() -> None:
    app, owner, system = migration_role("app"), migration_role("owner"), migration_role("system")

    op.execute(f"REVOKE INSERT (group_id, tenant_id, role) ON working_group_members FROM {app}")
    op.execute(f"GRANT INSERT ON working_group_members TO {app}")
    op.execute(f"GRANT UPDATE (joined_at, left_at) ON working_group_members TO {app}")
    op.execute("DROP TRIGGER membership_dates ON working_group_members")
    op.execute("DROP FUNCTION wg_membership_dates()")

    op.execute(f"GRANT INSERT, DELETE ON tenants TO {app}")
    op.execute(f"GRANT UPDATE, DELETE ON suppliers TO {app}")

    op.execute(
        f"ALTER DEFAULT PRIVILEGES FOR ROLE {owner} IN SCHEMA public "
        f"GRANT USAGE, SELECT ON SEQUENCES TO {system}"
    )
    op.execute(
        f"ALTER DEFAULT PRIVILEGES FOR ROLE {owner} IN SCHEMA public "
        f"GRANT SELECT, INSERT, UPDATE, DELETE ON TABLES TO {system}"
    )
    op.execute(
        f"GRANT SELECT, INSERT, UPDATE, DELETE ON {', '.join(SYSTEM_TABLES_BEFORE)} TO {system}"
    )
    op.execute(f"GRANT USAGE, SELECT ON SEQUENCE {', '.join(SYSTEM_SEQUENCES_BEFORE)} TO {system}")

    for function in SYSTEM_FUNCTIONS:
        op.execute(f"DROP FUNCTION {function}")
    for table in ("idempotency_keys", "events"):
        op.execute(f"DROP POLICY owner_purges ON {table}")
        op.execute(f"DROP POLICY owner_lookup ON {table}")
    op.execute("DROP POLICY owner_creates ON tenants")

    for function in (*APP_FUNCTIONS, *TRIGGER_FUNCTIONS):
        op.execute(f"GRANT EXECUTE ON FUNCTION {function} TO PUBLIC")
    for function in APP_FUNCTIONS:
        op.execute(f"REVOKE EXECUTE ON FUNCTION {function} FROM {app}")
    op.execute(f"ALTER DEFAULT PRIVILEGES FOR ROLE {owner} GRANT EXECUTE ON FUNCTIONS TO PUBLIC")
