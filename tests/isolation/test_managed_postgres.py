"""The service on a managed PostgreSQL: no superuser anywhere once a DBA has made the roles.

Runs against the PostgreSQL server at 127.0.0.1:5432 (`WG_MANAGED_TEST_SERVER` to point
elsewhere; trust auth, a superuser in the URL), skipped when none answers. A role with CREATEROLE
and CREATEDB but no superuser stands in for the cloud's admin user: it runs what `wg-api db
roles-sql` prints, under a role prefix of this run's own (the script also makes the database). From
then on everything logs in as those roles: the service migrates as the
non-superuser owner, the command line creates a tenant and a client, the API records findings,
and the worker's purges delete what expired, with no role holding BYPASSRLS.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import io
import json
import os
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import asyncpg
import pytest
from sqlalchemy.engine import make_url

from tests.conftest import serve_in_loop
from tests.findings.conftest import finding_body
from tests.suppliers.conftest import new_supplier
from wg_api.app import asgi_app
from wg_api.cli import main
from wg_api.platform.database import Database, asyncpg_url
from wg_api.platform.jobs import JobRunner, enqueue, registry
from wg_api.platform.migrate import migrate
from wg_api.platform.roles import RoleCheckFailed, check_logins
from wg_api.settings import Settings, get_settings

SERVER = os.environ.get("WG_MANAGED_TEST_SERVER", "postgresql://postgres@127.0.0.1:5432/postgres")
PURGES = ("purge-idempotency-keys", "purge-events", "purge-rate-limit-windows")


@dataclasses.dataclass
class Managed:
    settings: Settings
    env: dict[str, str]
    database: str

    def dba_url(self, database: str | None = None) -> str:
        return str(make_url(SERVER).set(database=database or self.database))

    async def dba(self, sql: str, *args: Any) -> Any:
        """Run `sql` as the server's superuser, in the service's database: to look at every
        tenant's rows, make time pass, or break a role on purpose."""
        conn = await asyncpg.connect(self.dba_url())
        try:
            return await conn.fetch(sql, *args)
        finally:
            await conn.close()

    async def cli(self, *args: str) -> tuple[int, str, str]:
        """`wg-api *args` in this process (in a thread: it runs its own event loop), with this
        run's environment: (exit code, stdout, stderr)."""
        out, err = io.StringIO(), io.StringIO()
        saved = {name: os.environ.get(name) for name in self.env}
        os.environ.update(self.env)
        get_settings.cache_clear()
        try:
            with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
                code = await asyncio.to_thread(main, list(args))
        finally:
            for name, value in saved.items():
                if value is None:
                    os.environ.pop(name, None)
                else:
                    os.environ[name] = value
            get_settings.cache_clear()
        return code, out.getvalue(), err.getvalue()


def split_script(script: str) -> tuple[list[str], list[str]]:
    """The statements `roles-sql` prints: before `\\connect` (the cluster), after (the database).
    A line ending in psql's `\\gexec` stays as it is: `run_script` does what psql would."""
    parts: tuple[list[str], list[str]] = ([], [])
    current = parts[0]
    for line in script.splitlines():
        if line.startswith("\\connect"):
            current = parts[1]
        elif line.strip() and not line.startswith("--"):
            assert line.endswith((";", "\\gexec")), line
            current.append(line)
    return parts


async def run_script(conn: asyncpg.Connection, statements: list[str]) -> None:
    for statement in statements:
        if statement.endswith("\\gexec"):
            for row in await conn.fetch(statement.removesuffix("\\gexec")):
                await conn.execute(row[0])
        else:
            await conn.execute(statement)


async def _server_answers() -> bool:
    try:
        conn = await asyncpg.connect(SERVER, timeout=3)
    except (OSError, asyncpg.PostgresError, TimeoutError):
        return False
    await conn.close()
    return True


@pytest.fixture
async def managed(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Managed]:
    if not await _server_answers():
        pytest.skip(f"no PostgreSQL server at {SERVER}")
    run = uuid.uuid4().hex[:8]
    prefix, database = f"wgm{run}", f"wg_managed_{run}"
    home = tmp_path_factory.mktemp("managed")
    owner_url = make_url(SERVER).set(username=f"{prefix}_owner", password=None, database=database)
    env = {
        "DATABASE_URL": owner_url.render_as_string(hide_password=False),
        "WG_DB_ROLE_PREFIX": prefix,
        "WG_DATA_DIR": str(home),
        "WG_SIGNING_KEY_FILE": str(Path(home) / "signing-keys.json"),
        "WG_LOG_LEVEL": "WARNING",
    }
    # Unset (empty reads as unset): the logins are derived from DATABASE_URL.
    env.update(WG_APP_DATABASE_URL="", WG_SYSTEM_DATABASE_URL="")
    settings = dataclasses.replace(
        Settings.from_env(),
        database_url=env["DATABASE_URL"],
        app_database_url=None,
        system_database_url=None,
        role_prefix=prefix,
        data_dir=Path(home),
        signing_key_file=Path(home) / "signing-keys.json",
        revocation_cache_seconds=0,
        rate_limit_per_minute=100_000,
        token_rate_limit_per_minute=100_000,
        log_level="WARNING",
    )
    handle = Managed(settings=settings, env=env, database=database)

    code, printed, errors = await handle.cli("db", "roles-sql")
    assert code == 0, errors
    cluster, in_database = split_script(printed)
    # The cloud's admin user: no superuser, may create roles and databases (like RDS's master).
    admin_role = f"{prefix}_dba"
    superuser = await asyncpg.connect(SERVER)
    try:
        await superuser.execute(f"CREATE ROLE {admin_role} LOGIN CREATEROLE CREATEDB")
        dba = await asyncpg.connect(str(make_url(SERVER).set(username=admin_role)))
        try:
            # The script makes the database too, owned by the admin (as a cloud console would).
            await run_script(dba, cluster)
            conn = await asyncpg.connect(str(make_url(handle.dba_url()).set(username=admin_role)))
            try:
                await run_script(conn, in_database)
                # Run twice, it changes nothing and fails on nothing.
                await run_script(dba, cluster)
                await run_script(conn, in_database)
            finally:
                await conn.close()
        finally:
            await dba.close()
        await migrate(asyncpg_url(settings.database_url or ""), settings)
        yield handle
    finally:
        await superuser.execute(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)')
        for role in (settings.app_role, settings.system_role, settings.owner_role, admin_role):
            await superuser.execute(f"DROP ROLE IF EXISTS {role}")
        await superuser.close()


async def _roles_have_no_power(managed: Managed) -> None:
    settings = managed.settings
    names = [settings.app_role, settings.owner_role, settings.system_role]
    rows = await managed.dba(
        "SELECT rolname, rolsuper, rolbypassrls, rolcreaterole, rolcreatedb FROM pg_roles "
        "WHERE rolname = ANY($1::text[]) ORDER BY rolname",
        names,
    )
    assert [row["rolname"] for row in rows] == sorted(names)
    assert not any(
        row["rolsuper"] or row["rolbypassrls"] or row["rolcreaterole"] or row["rolcreatedb"]
        for row in rows
    )
    # The schema belongs to the owner the service logs in as.
    owners = await managed.dba(
        "SELECT DISTINCT pg_get_userbyid(c.relowner) AS owner FROM pg_class c "
        "JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = 'public'"
    )
    assert [row["owner"] for row in owners] == [managed.settings.owner_role]


async def _cli_api_and_purges(managed: Managed) -> None:
    settings = managed.settings
    code, made, errors = await managed.cli(
        "tenant", "create", "--slug", "managed-brand", "--name", "Managed Brand"
    )
    assert code == 0, errors
    tenant = json.loads(made)
    code, client, errors = await managed.cli(
        "client", "create", "--tenant", "managed-brand", "--name", "sync"
    )
    assert code == 0, errors
    credentials = json.loads(client)
    assert credentials["tenant_id"] == tenant["id"]

    database = Database.connect(asyncpg_url(settings.database_url or ""), settings)
    try:
        async with serve_in_loop(asgi_app(settings, database)) as http:
            token = await http.post(
                "/oauth/token",
                data={"grant_type": "client_credentials"},
                auth=(credentials["client_id"], credentials["client_secret"]),
            )
            assert token.status_code == 200, token.text
            headers = {"Authorization": f"Bearer {token.json()['access_token']}"}
            supplier = await new_supplier(http, headers)
            created = await http.post(
                "/v1/findings",
                json=finding_body(supplier["id"]),
                headers={**headers, "Idempotency-Key": "managed-1"},
            )
            assert created.status_code == 201, created.text
            feed = await http.get("/v1/events", headers=headers)
            assert "finding.created" in [event["type"] for event in feed.json()["items"]]

        # Time passes: the key expires, the events fall out of the retention, a window ages.
        long_ago = datetime.now(UTC) - timedelta(days=settings.event_retention_days + 1)
        await managed.dba(
            "UPDATE idempotency_keys SET expires_at = now() - interval '1 minute' "
            "WHERE tenant_id = $1",
            uuid.UUID(tenant["id"]),
        )
        await managed.dba(
            "UPDATE events SET occurred_at = $2::timestamptz, visible_at = $2::timestamptz, "
            "positioned_at = CASE WHEN positioned_at IS NULL THEN NULL ELSE $2::timestamptz END "
            "WHERE tenant_id = $1",
            uuid.UUID(tenant["id"]),
            long_ago,
        )
        await managed.dba(
            "INSERT INTO rate_limit_windows VALUES ('managed-test', $1, 1)",
            datetime.now(UTC) - timedelta(days=2),
        )

        fire_time = datetime(2002, 1, 1, tzinfo=UTC)
        async with database.system_transaction() as session:
            for name in PURGES:
                assert await enqueue(session, name, fire_time)
        runner = JobRunner(database, settings, registry, worker_id="managed-test")
        while await runner.run_one():
            pass
    finally:
        await database.dispose()

    results = await managed.dba(
        "SELECT name, status, result FROM jobs WHERE fire_time = $1 ORDER BY name", fire_time
    )
    assert {(row["name"], row["status"]) for row in results} == {(n, "done") for n in PURGES}
    assert all(json.loads(row["result"])["deleted"] >= 1 for row in results), results
    left = await managed.dba(
        "SELECT (SELECT count(*) FROM idempotency_keys WHERE tenant_id = $1) AS keys, "
        "(SELECT count(*) FROM events WHERE tenant_id = $1) AS events, "
        "(SELECT count(*) FROM rate_limit_windows WHERE bucket = 'managed-test') AS windows",
        uuid.UUID(tenant["id"]),
    )
    assert dict(left[0]) == {"keys": 0, "events": 0, "windows": 0}


async def _refuses_a_system_role_with_bypassrls(managed: Managed) -> None:
    system = managed.settings.system_role
    await managed.dba(f"ALTER ROLE {system} BYPASSRLS")
    try:
        code, out, errors = await managed.cli("migrate")
    finally:
        await managed.dba(f"ALTER ROLE {system} NOBYPASSRLS")
    assert code == 2, out + errors
    assert f"the system role {system} has BYPASSRLS or is superuser" in errors
    assert "wg-api db roles-sql" in errors
    assert out == ""


async def _refuses_missing_or_entangled_roles(managed: Managed) -> None:
    settings = managed.settings
    # Roles of another prefix were never made; the owner may not make them.
    elsewhere = dataclasses.replace(settings, role_prefix=f"{settings.role_prefix}x")
    with pytest.raises(RoleCheckFailed) as missing:
        await migrate(asyncpg_url(settings.database_url or ""), elsewhere)
    assert f"role {elsewhere.system_role} is missing" in missing.value.problems
    assert f"role {elsewhere.app_role} is missing" in missing.value.problems

    await managed.dba(f"GRANT {settings.owner_role} TO {settings.app_role}")
    await managed.dba("CREATE TABLE stray (id int)")
    await managed.dba(f"ALTER TABLE stray OWNER TO {settings.system_role}")
    try:
        with pytest.raises(RoleCheckFailed) as entangled:
            await migrate(asyncpg_url(settings.database_url or ""), settings)
        database = Database.connect(asyncpg_url(settings.database_url or ""), settings)
        try:
            with pytest.raises(RoleCheckFailed) as login:
                await check_logins(database.app_engine, database.system_engine, settings.owner_role)
        finally:
            await database.dispose()
    finally:
        await managed.dba(f"REVOKE {settings.owner_role} FROM {settings.app_role}")
        await managed.dba("DROP TABLE stray")
    assert (
        f"the app role {settings.app_role} is a member of {settings.owner_role} "
        "(it must belong to no such role)"
    ) in entangled.value.problems
    assert (
        f"the system role {settings.system_role} owns table stray "
        "(only the owner role owns objects)"
    ) in entangled.value.problems
    assert login.value.problems == [
        f"the app login {settings.app_role} is (or is a member of) {settings.owner_role}"
    ]


async def _only_the_app_role_looks_clients_up(managed: Managed) -> None:
    """Before 0008 any role could run api_client_for_token (every client's secret hash)."""
    rows = await managed.dba(
        "SELECT has_function_privilege($1, 'api_client_for_token(text)', 'EXECUTE') AS system, "
        "has_function_privilege($2, 'api_client_for_token(text)', 'EXECUTE') AS app, "
        "has_function_privilege('public', 'api_client_for_token(text)', 'EXECUTE') AS anyone",
        managed.settings.system_role,
        managed.settings.app_role,
    )
    assert dict(rows[0]) == {"system": False, "app": True, "anyone": False}


async def test_the_service_on_a_managed_postgresql(managed):
    """One test, so that parallel workers never make the roles and the database twice."""
    await _roles_have_no_power(managed)
    await _only_the_app_role_looks_clients_up(managed)
    await _cli_api_and_purges(managed)
    await _refuses_a_system_role_with_bypassrls(managed)
    await _refuses_missing_or_entangled_roles(managed)
