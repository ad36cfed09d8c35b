"""The three database roles: the SQL that makes them, and the checks the service runs at start.

- owner (`<prefix>_owner`): owns every table and function and runs the migrations. Its SECURITY
  DEFINER functions do the work that crosses tenants (token lookups, tenant creation, purges),
  held to owner-only policies. No superuser, no BYPASSRLS.
- app (`<prefix>_app`): serves requests; DML under forced row-level security.
- system (`<prefix>_system`): the worker and the command line; the jobs table, the tenant
  directory and EXECUTE on the cross-tenant functions.

The app and system roles are no superusers, have no BYPASSRLS, create no roles or databases, belong
to no role and own nothing. No role needs a superuser once they exist: on a managed PostgreSQL a
DBA runs `wg-api db roles-sql` once and the service logs in as the owner. With a login that may
create roles (the embedded server, a development server) `ensure_roles` makes them itself.
`check_roles` and `check_logins` refuse to start on anything else, naming what is wrong.
"""

from __future__ import annotations

import logging
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import URL
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from wg_api.settings import Settings

log = logging.getLogger("wg_api.roles")

# Spelled out, so that a role made by someone else's defaults gets none of these.
SERVICE_ROLE = "NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION NOBYPASSRLS"
# Predefined roles that read or write everything, or the server's files.
POWERFUL_PREDEFINED = (
    "pg_read_all_data",
    "pg_write_all_data",
    "pg_read_server_files",
    "pg_write_server_files",
    "pg_execute_server_program",
)
EXTENSIONS = ("pg_trgm",)
HINT = (
    "The SQL that sets the roles up is printed by `wg-api db roles-sql` (a DBA runs it once; "
    "see README.md, Configuration: managed PostgreSQL)."
)


class RoleCheckFailed(RuntimeError):
    """The database roles are not what least privilege needs; the service does not start."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = problems
        listed = "\n".join(f"  - {problem}" for problem in problems)
        super().__init__(
            f"wg-api will not start: the database roles are not set up safely:\n{listed}\n{HINT}"
        )


def _quote(identifier: str) -> str:
    return '"' + identifier.replace('"', '""') + '"'


def _literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def role_statements(settings: Settings, *, owner_login: bool) -> list[tuple[str, str]]:
    """(role, CREATE ROLE statement) for the owner, app and system roles."""
    owner, app, system = settings.owner_role, settings.app_role, settings.system_role
    return [
        (owner, f"CREATE ROLE {owner} {'LOGIN' if owner_login else 'NOLOGIN'} {SERVICE_ROLE}"),
        (app, f"CREATE ROLE {app} LOGIN {SERVICE_ROLE}"),
        (system, f"CREATE ROLE {system} LOGIN {SERVICE_ROLE}"),
    ]


def database_statements(settings: Settings, database: str) -> list[str]:
    """What the roles need in the service's database (run while connected to it)."""
    owner, app, system = settings.owner_role, settings.app_role, settings.system_role
    return [
        f"GRANT CONNECT ON DATABASE {_quote(database)} TO {owner}, {app}, {system}",
        # PostgreSQL before 15 lets every role create in public; only the owner may.
        "REVOKE CREATE ON SCHEMA public FROM PUBLIC",
        f"GRANT USAGE, CREATE ON SCHEMA public TO {owner}",
        f"GRANT USAGE ON SCHEMA public TO {app}, {system}",
        *(f"CREATE EXTENSION IF NOT EXISTS {name}" for name in EXTENSIONS),
    ]


def roles_sql(settings: Settings, database: str) -> str:
    """The script of `wg-api db roles-sql`: what a DBA runs once, with psql, as a role that may
    create roles (the cloud's admin user; no superuser needed)."""
    owner, app, system = settings.owner_role, settings.app_role, settings.system_role
    lines = [
        "-- wg-api: the database roles, made once by a DBA (psql -v ON_ERROR_STOP=1 -f this.sql).",
        f"-- {owner} owns the schema and runs migrations: DATABASE_URL logs in as {owner}.",
        f"-- {app} serves requests (WG_APP_DATABASE_URL), {system} runs the worker and the CLI",
        "-- (WG_SYSTEM_DATABASE_URL). None of them is a superuser or has BYPASSRLS, none is a",
        "-- member of another, and the service never needs a superuser afterwards.",
        "",
    ]
    # psql's \\gexec runs what the SELECT answers: each CREATE only when the thing is missing, so
    # the script may run again (to repair grants, say).
    lines += [
        f"SELECT {_literal(statement)} WHERE NOT EXISTS "  # noqa: S608 (quoted: _literal)
        f"(SELECT FROM pg_roles WHERE rolname = {_literal(role)})\\gexec"
        for role, statement in role_statements(settings, owner_login=True)
    ]
    lines += [
        "-- Passwords (or your provider's IAM authentication), e.g. in psql:",
        f"--   \\password {owner}",
        f"--   \\password {app}",
        f"--   \\password {system}",
        "",
        "-- The database, unless it exists already (its owner may stay the DBA).",
        f"SELECT {_literal('CREATE DATABASE ' + _quote(database))} WHERE NOT EXISTS "  # noqa: S608
        f"(SELECT FROM pg_database WHERE datname = {_literal(database)})\\gexec",
        f"\\connect {_quote(database)}",
    ]
    lines += [f"{statement};" for statement in database_statements(settings, database)]
    return "\n".join(lines) + "\n"


def _tolerated(exc: Exception) -> bool:
    """Races between processes that set the roles up at the same time."""
    text = str(exc)
    return any(
        marker in text
        for marker in ("already exists", "tuple concurrently updated", "duplicate key value")
    )


async def ensure_roles(admin_url: URL, settings: Settings) -> None:
    """Make the roles when the DATABASE_URL login may (superuser or CREATEROLE); otherwise leave
    them to the DBA and `check_roles`. Idempotent and race-safe."""
    from wg_api.platform.database import make_engine

    engine = make_engine(admin_url, pool_size=1, application_name="wg-api-admin")
    try:
        async with engine.connect() as conn:
            conn = await conn.execution_options(isolation_level="AUTOCOMMIT")
            me = (
                await conn.execute(
                    sa.text(
                        "SELECT rolsuper, rolcreaterole FROM pg_roles WHERE rolname = current_user"
                    )
                )
            ).one()
            if not (me.rolsuper or me.rolcreaterole):
                return
            names = [settings.owner_role, settings.app_role, settings.system_role]
            existing = set(
                await conn.scalars(
                    sa.text("SELECT rolname FROM pg_roles WHERE rolname = ANY(:names)"),
                    {"names": names},
                )
            )
            statements = [
                statement
                for role, statement in role_statements(settings, owner_login=False)
                if role not in existing
            ]
            if me.rolsuper:
                # Roles made by older versions: the system role had BYPASSRLS then.
                statements += [
                    f"ALTER ROLE {role} {SERVICE_ROLE}"
                    for role in (settings.app_role, settings.system_role)
                ]
            else:
                # A non-superuser migrates through SET ROLE, which needs the membership.
                statements.append(f"GRANT {settings.owner_role} TO current_user")
            assert admin_url.database is not None
            statements += database_statements(settings, admin_url.database)
            for statement in statements:
                try:
                    await conn.exec_driver_sql(statement)
                except Exception as exc:
                    if not _tolerated(exc):
                        raise
    finally:
        await engine.dispose()


_ROLES = sa.text(
    """
    SELECT r.rolname, r.rolsuper, r.rolbypassrls, r.rolcreaterole, r.rolcreatedb,
           r.rolreplication,
           has_database_privilege(r.oid, current_database(), 'CONNECT') AS connect,
           has_schema_privilege(r.oid, 'public', 'USAGE') AS schema_usage,
           has_schema_privilege(r.oid, 'public', 'CREATE') AS schema_create,
           ARRAY(
               SELECT m.rolname::text FROM pg_roles m
               WHERE m.oid <> r.oid AND pg_has_role(r.oid, m.oid, 'MEMBER')
                 AND (m.rolname = ANY(:names) OR m.rolsuper OR m.rolbypassrls
                      OR m.rolname = ANY(:powerful))
               ORDER BY m.rolname
           ) AS memberships,
           ARRAY(
               SELECT kind || ' ' || name FROM (
                   SELECT CASE c.relkind WHEN 'S' THEN 'sequence' WHEN 'v' THEN 'view'
                               ELSE 'table' END AS kind, c.relname::text AS name
                   FROM pg_class c
                   WHERE c.relowner = r.oid AND c.relkind IN ('r', 'p', 'v', 'm', 'S', 'f')
                   UNION ALL
                   SELECT 'function', p.oid::regprocedure::text FROM pg_proc p
                   WHERE p.proowner = r.oid
                   UNION ALL
                   SELECT 'schema', n.nspname::text FROM pg_namespace n WHERE n.nspowner = r.oid
                   UNION ALL
                   SELECT 'database', d.datname::text FROM pg_database d
                   WHERE d.datdba = r.oid AND d.datname = current_database()
               ) owned ORDER BY 1 LIMIT 5
           ) AS owns
    FROM pg_roles r WHERE r.rolname = ANY(:names)
    """
)


def _role_problems(kind: str, name: str, row: Any) -> list[str]:
    found = []
    if row.rolsuper or row.rolbypassrls:
        found.append(f"the {kind} role {name} has BYPASSRLS or is superuser")
    if row.rolcreaterole or row.rolcreatedb or row.rolreplication:
        found.append(f"the {kind} role {name} may create roles or databases, or replicate")
    if row.memberships:
        found.append(
            f"the {kind} role {name} is a member of {', '.join(row.memberships)} "
            "(it must belong to no such role)"
        )
    # The owner owns everything and creates in the schema: that is its job.
    if row.owns and kind != "owner":
        found.append(
            f"the {kind} role {name} owns {', '.join(row.owns)} (only the owner role owns objects)"
        )
    if kind != "owner":
        if not row.connect:
            found.append(f"the {kind} role {name} may not connect to the database")
        if not row.schema_usage:
            found.append(f"the {kind} role {name} has no USAGE on schema public")
        if row.schema_create:
            found.append(f"the {kind} role {name} may create objects in schema public")
    return found


async def check_roles(conn: AsyncConnection, settings: Settings) -> list[str]:
    """What is wrong with the roles, seen from the DATABASE_URL login in the service's database."""
    kinds = {
        "owner": settings.owner_role,
        "app": settings.app_role,
        "system": settings.system_role,
    }
    names = list(kinds.values())
    rows = {
        row.rolname: row
        for row in await conn.execute(
            _ROLES, {"names": names, "powerful": list(POWERFUL_PREDEFINED)}
        )
    }
    problems: list[str] = []
    for kind, name in kinds.items():
        row = rows.get(name)
        if row is None:
            problems.append(f"role {name} is missing")
            continue
        problems += _role_problems(kind, name, row)
    owner = rows.get(settings.owner_role)
    if owner is not None:
        if not owner.schema_create:
            problems.append(f"the owner role {settings.owner_role} may not create in schema public")
        can_become_owner = await conn.scalar(
            sa.text("SELECT pg_has_role(current_user, :owner, 'MEMBER')"),
            {"owner": settings.owner_role},
        )
        if not can_become_owner:
            login = await conn.scalar(sa.text("SELECT current_user"))
            problems.append(
                f"the DATABASE_URL login {login} cannot SET ROLE {settings.owner_role} "
                f"(log in as {settings.owner_role}, or GRANT {settings.owner_role} TO {login})"
            )
    installed = set(
        await conn.scalars(
            sa.text("SELECT extname FROM pg_extension WHERE extname = ANY(:names)"),
            {"names": list(EXTENSIONS)},
        )
    )
    problems += [
        f"the extension {name} is missing (CREATE EXTENSION {name})"
        for name in EXTENSIONS
        if name not in installed
    ]
    return problems


async def check_logins(app_engine: AsyncEngine, system_engine: AsyncEngine, owner: str) -> None:
    """The logins the API and the worker actually use: neither is a superuser, has BYPASSRLS or
    acts as the owner (WG_APP_DATABASE_URL and WG_SYSTEM_DATABASE_URL may name other users)."""
    problems = []
    for kind, engine in (("app", app_engine), ("system", system_engine)):
        try:
            async with engine.connect() as conn:
                row = (
                    await conn.execute(
                        sa.text(
                            "SELECT current_user AS name, r.rolsuper, r.rolbypassrls, "
                            "pg_has_role(current_user, :owner, 'MEMBER') AS owner "
                            "FROM pg_roles r WHERE r.rolname = current_user"
                        ),
                        {"owner": owner},
                    )
                ).one()
        except Exception as exc:
            problems.append(f"the {kind} role cannot log in: {exc}".splitlines()[0])
            continue
        if row.rolsuper or row.rolbypassrls:
            problems.append(f"the {kind} login {row.name} has BYPASSRLS or is superuser")
        if row.owner:
            problems.append(f"the {kind} login {row.name} is (or is a member of) {owner}")
    if problems:
        raise RoleCheckFailed(problems)
