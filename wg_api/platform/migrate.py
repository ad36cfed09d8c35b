"""Alembic migrations, run as the owner role under an advisory lock so replicas never race."""

from __future__ import annotations

import logging

import sqlalchemy as sa
from alembic import command
from alembic.config import Config
from alembic.script import ScriptDirectory
from sqlalchemy.engine import URL, Connection

from wg_api.platform.database import ensure_database, make_engine
from wg_api.platform.roles import RoleCheckFailed, check_roles, ensure_roles
from wg_api.settings import PROJECT_ROOT, Settings

log = logging.getLogger("wg_api.migrate")

# Any constant both replicas agree on; "wgmigr" in ASCII.
MIGRATION_LOCK_KEY = 0x7767_6D69_6772


def alembic_config(settings: Settings, connection: Connection | None = None) -> Config:
    config = Config()
    config.set_main_option("script_location", str(PROJECT_ROOT / "migrations"))
    config.attributes["connection"] = connection
    config.attributes["roles"] = {
        "owner": settings.owner_role,
        "app": settings.app_role,
        "system": settings.system_role,
    }
    return config


def head_revision(settings: Settings) -> str | None:
    return ScriptDirectory.from_config(alembic_config(settings)).get_current_head()


async def migrate(admin_url: URL, settings: Settings, *, revision: str = "head") -> None:
    """Create database and roles if the login may, check the roles (RoleCheckFailed names what
    is wrong), then upgrade to `revision` as the owner role."""
    await ensure_database(admin_url)
    await ensure_roles(admin_url, settings)
    engine = make_engine(admin_url, pool_size=1, application_name="wg-api-migrate")
    try:
        async with engine.connect() as conn:
            # A session-level lock: it outlives the transactions below and dies with the connection.
            await conn.execute(sa.text("SELECT pg_advisory_lock(:k)"), {"k": MIGRATION_LOCK_KEY})
            await conn.commit()
            try:
                if problems := await check_roles(conn, settings):
                    raise RoleCheckFailed(problems)
                await conn.exec_driver_sql(f"SET ROLE {settings.owner_role}")
                await conn.run_sync(_upgrade, settings, revision)
                await conn.commit()
            finally:
                await conn.rollback()
                await conn.exec_driver_sql("RESET ROLE")
                await conn.execute(
                    sa.text("SELECT pg_advisory_unlock(:k)"), {"k": MIGRATION_LOCK_KEY}
                )
                await conn.commit()
    finally:
        await engine.dispose()


def _upgrade(connection: Connection, settings: Settings, revision: str) -> None:
    command.upgrade(alembic_config(settings, connection), revision)


async def downgrade(admin_url: URL, settings: Settings, revision: str) -> None:
    engine = make_engine(admin_url, pool_size=1, application_name="wg-api-migrate")
    try:
        async with engine.connect() as conn:
            await conn.exec_driver_sql(f"SET ROLE {settings.owner_role}")
            await conn.run_sync(
                lambda sync: command.downgrade(alembic_config(settings, sync), revision)
            )
            await conn.commit()
    finally:
        await engine.dispose()
