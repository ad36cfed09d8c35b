"""Row-level security: the one fail-closed tenant policy every table with `tenant_id` carries."""

from __future__ import annotations

# Wrapped in (SELECT ...) so PostgreSQL evaluates it once per statement, not once per row.
CURRENT_TENANT = "(SELECT NULLIF(current_setting('app.tenant_id', true), '')::uuid)"
TENANT_PREDICATE = f"tenant_id = {CURRENT_TENANT}"


def tenant_rls_statements(table: str, *, policy: str = "tenant_isolation") -> list[str]:
    """DDL that makes `table` visible and writable only for the bound tenant, owner included."""
    return [
        f"ALTER TABLE {table} ENABLE ROW LEVEL SECURITY",
        f"ALTER TABLE {table} FORCE ROW LEVEL SECURITY",
        f"CREATE POLICY {policy} ON {table} USING ({TENANT_PREDICATE}) "
        f"WITH CHECK ({TENANT_PREDICATE})",
    ]


def migration_role(kind: str) -> str:
    """The configured name of the `owner`, `app` or `system` role, inside a migration."""
    from alembic import context

    roles: dict[str, str] = context.config.attributes["roles"]
    return roles[kind]
