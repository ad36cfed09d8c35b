"""The checks the service runs at start, on the test server itself (tests/isolation/
test_managed_postgres.py runs them end to end on a server where nobody is a superuser)."""

from __future__ import annotations

import dataclasses
import uuid
from collections.abc import AsyncIterator

import pytest
from sqlalchemy import text as sa_text
from sqlalchemy.ext.asyncio import AsyncConnection

from wg_api.cli import main
from wg_api.platform.database import make_engine
from wg_api.platform.roles import SERVICE_ROLE, RoleCheckFailed, check_roles


@pytest.fixture
async def admin(admin_url, database) -> AsyncIterator[AsyncConnection]:
    engine = make_engine(admin_url, pool_size=1, application_name="wg-api-tests")
    try:
        async with engine.connect() as conn:
            conn = await conn.execution_options(isolation_level="AUTOCOMMIT")
            yield conn
    finally:
        await engine.dispose()


async def test_the_roles_of_the_suite_pass(admin, settings):
    assert await check_roles(admin, settings) == []


async def test_missing_roles_are_named(admin, settings):
    elsewhere = dataclasses.replace(settings, role_prefix=f"nope{uuid.uuid4().hex[:8]}")
    assert await check_roles(admin, elsewhere) == [
        f"role {elsewhere.owner_role} is missing",
        f"role {elsewhere.app_role} is missing",
        f"role {elsewhere.system_role} is missing",
    ]


async def test_roles_with_power_are_named(admin, settings):
    if not await admin.scalar(
        sa_text("SELECT rolsuper FROM pg_roles WHERE rolname = current_user")
    ):
        pytest.skip("making a BYPASSRLS role takes a superuser")
    probe = dataclasses.replace(settings, role_prefix=f"chk{uuid.uuid4().hex[:8]}")
    statements = [
        f"CREATE ROLE {probe.owner_role} NOLOGIN {SERVICE_ROLE}",
        f"CREATE ROLE {probe.app_role} LOGIN NOSUPERUSER BYPASSRLS",
        f"CREATE ROLE {probe.system_role} LOGIN CREATEDB NOBYPASSRLS",
        f"GRANT {probe.owner_role} TO {probe.system_role}",
        f"GRANT CREATE, USAGE ON SCHEMA public TO {probe.owner_role}, {probe.app_role}",
        f"GRANT USAGE ON SCHEMA public TO {probe.system_role}",
    ]
    try:
        for statement in statements:
            await admin.exec_driver_sql(statement)
        problems = await check_roles(admin, probe)
    finally:
        await admin.exec_driver_sql(f"REVOKE ALL ON SCHEMA public FROM {probe.app_role}")
        await admin.exec_driver_sql(
            f"REVOKE ALL ON SCHEMA public FROM {probe.owner_role}, {probe.system_role}"
        )
        for role in (probe.app_role, probe.system_role, probe.owner_role):
            await admin.exec_driver_sql(f"DROP ROLE IF EXISTS {role}")
    assert problems == [
        f"the app role {probe.app_role} has BYPASSRLS or is superuser",
        f"the app role {probe.app_role} may create objects in schema public",
        f"the system role {probe.system_role} may create roles or databases, or replicate",
        f"the system role {probe.system_role} is a member of {probe.owner_role} "
        "(it must belong to no such role)",
        # Through that membership it inherits the owner's CREATE.
        f"the system role {probe.system_role} may create objects in schema public",
    ]


def test_the_message_says_what_to_run(settings):
    message = str(RoleCheckFailed(["role wg_system is missing"]))
    assert "  - role wg_system is missing" in message
    assert "wg-api db roles-sql" in message


def test_roles_sql_makes_powerless_roles(capsys, monkeypatch):
    monkeypatch.setenv("DATABASE_URL", "postgresql://wg_owner@db.example.com:5432/wgprod")
    monkeypatch.setenv("WG_DB_ROLE_PREFIX", "wg")
    from wg_api.settings import get_settings

    get_settings.cache_clear()
    try:
        assert main(["db", "roles-sql"]) == 0
    finally:
        get_settings.cache_clear()
    script = capsys.readouterr().out
    creates = [line for line in script.splitlines() if "CREATE ROLE" in line]
    assert len(creates) == 3
    assert all(SERVICE_ROLE in line for line in creates)
    assert '\\connect "wgprod"' in script
    assert "CREATE EXTENSION IF NOT EXISTS pg_trgm;" in script
    # Nothing in it makes anyone a member of anyone.
    assert not [line for line in script.splitlines() if line.startswith("GRANT wg_")]
