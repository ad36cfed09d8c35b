"""Connections, roles and the per-transaction tenant binding.

Three identities reach the database: the owner (runs migrations, owns every object), the app role
(serves requests; no superuser, no BYPASSRLS, DML only) and the system role (the worker and the
command line: jobs, and the owner's functions for work across tenants). `roles.py` makes and checks
them. The tenant of a request is bound per transaction from `session.info["tenant_id"]`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from collections import deque
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any, cast

import asyncpg
import msgspec
import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.engine import URL, Connection, make_url
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)
from sqlalchemy.orm import Session, SessionTransaction
from sqlalchemy.util import await_

from wg_api.platform.embedded import embedded_admin_url
from wg_api.platform.observability import MeteredPool, observe_pool
from wg_api.settings import Settings

log = logging.getLogger("wg_api.database")

EMBEDDED_DATABASE = "wg"
SHARED_EVENT_DELAY_KEY = "shared_event_delay_seconds"


class TenantSession(Session):
    """A session whose every transaction starts by binding `app.tenant_id` (or '' when none)."""


class TenantConnection(asyncpg.Connection):
    """An asyncpg connection whose next BEGIN can carry the tenant binding: `BEGIN;SELECT
    set_config('app.tenant_id', '<uuid>', true)` goes as one simple query, one round trip where
    a BEGIN and then a bound statement took two (at the start of every transaction: measured in
    bench/README.md). Only a `uuid.UUID`'s own text, or nothing, is ever put into the SQL."""

    __slots__ = ("_next_binding",)

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._next_binding: str | None = None

    def bind_next_begin(self, tenant_id: uuid.UUID | None) -> None:
        self._next_binding = str(uuid.UUID(str(tenant_id))) if tenant_id is not None else ""

    def forget_binding(self) -> None:
        self._next_binding = None

    # asyncpg's own signature, overridden.
    async def execute(
        self,
        query: str,
        *args: Any,
        timeout: float | None = None,  # noqa: ASYNC109
    ) -> str:
        binding = self._next_binding
        if binding is not None and not args and query.startswith("BEGIN"):
            self._next_binding = None
            query = f"{query.rstrip(';')};SELECT set_config('app.tenant_id', '{binding}', true)"
        return await super().execute(query, *args, timeout=timeout)


@event.listens_for(TenantSession, "after_begin")
def _bind_tenant(session: Session, transaction: SessionTransaction, connection: Connection) -> None:
    """Begin the database transaction now, with the session's tenant bound (or '' for none)."""
    tenant_id = session.info.get("tenant_id")
    pooled = connection.connection
    driver, adapter = pooled.driver_connection, pooled.dbapi_connection
    start = getattr(adapter, "_start_transaction", None)
    if (
        isinstance(driver, TenantConnection)
        and start is not None
        and getattr(adapter, "_transaction", True) is None
    ):
        # SQLAlchemy's asyncpg adapter sends BEGIN lazily, before its first statement; started
        # here, the BEGIN carries the binding (SQLAlchemy 2.1's adapter: pinned in uv.lock, and
        # the fallback below keeps a changed adapter correct, one round trip slower).
        driver.bind_next_begin(tenant_id)
        try:
            await_(start())
        except Exception:  # noqa: S110
            # A lost connection, say: the statement below meets it again, through SQLAlchemy's
            # error handling (a disconnect invalidates the pool, and the error is SQLAlchemy's).
            pass
        else:
            return
        finally:
            driver.forget_binding()
    # Driver SQL: this runs at the start of every transaction, so skip statement compilation.
    connection.exec_driver_sql(
        "SELECT set_config('app.tenant_id', $1, true)", (str(tenant_id) if tenant_id else "",)
    )


def asyncpg_url(url: str | URL) -> URL:
    parsed = make_url(url) if isinstance(url, str) else url
    return parsed.set(drivername="postgresql+asyncpg")


def role_url(admin_url: URL, role: str) -> URL:
    """The admin URL with another user and no password (trust or peer auth, or a .pgpass entry)."""
    return admin_url.set(username=role, password=None)


def resolve_admin_url(settings: Settings, database: str = EMBEDDED_DATABASE) -> URL:
    """DATABASE_URL if set; otherwise the embedded server (started or joined) and its `database`."""
    if settings.database_url:
        return asyncpg_url(settings.database_url)
    raw = embedded_admin_url(settings.pg_data_dir, "postgres")
    admin = asyncpg_url(raw)
    return admin.set(database=database)


def _connect_args(url: URL) -> tuple[URL, dict[str, Any]]:
    """asyncpg takes a unix socket directory as `host`; move `?host=` from the query there."""
    query = dict(url.query)
    host = query.pop("host", None)
    if isinstance(host, tuple):
        host = host[0]
    if host and host.startswith("/"):
        return url.set(query=query), {"host": host}
    return url, {}


def _unnamed_statement() -> str:
    return ""


def pgbouncer_connect_args() -> dict[str, Any]:
    """asyncpg behind PgBouncer in transaction mode (any version, no `max_prepared_statements`).

    Consecutive transactions of one client connection may run on different server connections,
    so no statement may be prepared in one and used in another, and two clients sharing a server
    connection must not clash on names. Every statement is the protocol's unnamed one: no cache
    (SQLAlchemy's, nor asyncpg's own for `driver_fetch`), and asyncpg sends its parse together
    with its execution, so the two always reach the same server connection; the next statement
    replaces it, so nothing is left on the server connection either."""
    return {
        "prepared_statement_cache_size": 0,
        "prepared_statement_name_func": _unnamed_statement,
        "statement_cache_size": 0,
    }


def make_engine(
    url: URL,
    *,
    pool_size: int = 5,
    max_overflow: int | None = None,
    application_name: str = "wg-api",
    statement_timeout_ms: int = 0,
    pool_timeout_seconds: float = 30.0,
    pgbouncer: bool = False,
    metrics_name: str | None = None,
) -> AsyncEngine:
    """An engine whose pool drops dead connections: a lost connection (a restart, a reset
    socket) invalidates the pool, so every older connection is replaced at its next checkout
    rather than failing one request each. `statement_timeout_ms` (0: none) is set per connection,
    at no cost per request; behind PgBouncer (`pgbouncer`, `WG_DB_PGBOUNCER`), which passes no
    such start-up parameter, the role's own setting applies (see README's Deployment).
    `metrics_name` reports its pool in `wg_db_pool_connections{engine=...}`."""
    bare, connect_args = _connect_args(url)
    server_settings = {"application_name": application_name}
    if statement_timeout_ms > 0 and not pgbouncer:
        server_settings["statement_timeout"] = str(statement_timeout_ms)
    connect_args["server_settings"] = server_settings
    connect_args["connection_class"] = TenantConnection
    # A connection attempt to a server that is restarting fails fast instead of hanging.
    connect_args.setdefault("timeout", 5)
    if pgbouncer:
        connect_args.update(pgbouncer_connect_args())
    engine = create_async_engine(
        bare,
        poolclass=MeteredPool,
        pool_size=pool_size,
        max_overflow=pool_size * 2 if max_overflow is None else max_overflow,
        pool_recycle=1800,
        pool_timeout=pool_timeout_seconds,
        connect_args=connect_args,
        # jsonb columns decoded by msgspec (the stdlib's decoder took a third of a shared
        # findings page's decoding time); the same Python values.
        json_deserializer=msgspec.json.decode,
    )
    if metrics_name is not None:
        observe_pool(metrics_name, engine.pool)
    return engine


async def ensure_database(admin_url: URL) -> None:
    """Create the target database if it does not exist (embedded server and test runs).

    An existing database is used as it is: a managed server's owner role may not even connect to
    the `postgres` maintenance database."""
    probe = make_engine(admin_url, pool_size=1, application_name="wg-api-admin")
    try:
        async with probe.connect():
            return
    except Exception as exc:
        if "does not exist" not in str(exc):
            raise
    finally:
        await probe.dispose()
    maintenance = admin_url.set(database="postgres")
    engine = make_engine(maintenance, pool_size=1, application_name="wg-api-admin")
    try:
        async with engine.connect() as conn:
            conn = await conn.execution_options(isolation_level="AUTOCOMMIT")
            exists = await conn.scalar(
                sa.text("SELECT 1 FROM pg_database WHERE datname = :name"),
                {"name": admin_url.database},
            )
            if not exists:
                try:
                    await conn.exec_driver_sql(f'CREATE DATABASE "{admin_url.database}"')
                except Exception as exc:  # another process created it first
                    if "already exists" not in str(exc):
                        raise
    finally:
        await engine.dispose()


class FairGate:
    """At most `size` holders, and waiters served first come, first served.

    SQLAlchemy's async pool queues its waiters on an `asyncio.Queue`, which is not fair under
    contention: a connection given back goes to whoever asks next, and a woken waiter that finds
    it taken queues again at the end. Under a steady load above the pool's size, some requests
    then wait for seconds (and time out with 503) while most wait for milliseconds. Requests
    take a slot here first, in order, and only then a connection."""

    def __init__(self, size: int) -> None:
        self._free = size
        self._waiters: deque[asyncio.Future[None]] = deque()

    async def acquire(self, patience: float) -> bool:
        """True with a slot; False when none came within `patience` seconds."""
        if self._free > 0 and not self._waiters:
            self._free -= 1
            return True
        waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiters.append(waiter)
        try:
            await asyncio.wait_for(asyncio.shield(waiter), patience)
            return True
        except TimeoutError:
            return self._give_up(waiter)
        except BaseException:
            if not self._give_up(waiter):
                raise
            self.release()
            raise

    def _give_up(self, waiter: asyncio.Future[None]) -> bool:
        """Leave the queue; True when the slot was handed over just before (it is ours)."""
        if waiter.done() and not waiter.cancelled():
            return True
        waiter.cancel()
        with contextlib.suppress(ValueError):
            self._waiters.remove(waiter)
        return False

    def release(self) -> None:
        while self._waiters:
            waiter = self._waiters.popleft()
            if not waiter.done():
                waiter.set_result(None)
                return
        self._free += 1


@dataclass
class Database:
    """The engines a process uses. The API uses `app`; the worker uses `system`."""

    admin_url: URL
    app_engine: AsyncEngine
    system_engine: AsyncEngine
    # The default for sessions that do not say (jobs, scripts); a request passes its app's.
    shared_event_delay_seconds: float = 300.0
    # Requests take one of these (as many as the app's pool has connections) before a
    # connection (see FairGate).
    request_slots: FairGate | None = None
    request_wait_seconds: float = 1.0

    def __post_init__(self) -> None:
        self.sessions = async_sessionmaker(
            self.app_engine, sync_session_class=TenantSession, expire_on_commit=False
        )
        self.system_sessions = async_sessionmaker(
            self.system_engine, sync_session_class=TenantSession, expire_on_commit=False
        )

    @classmethod
    def connect(
        cls, admin_url: URL, settings: Settings, *, max_overflow: int | None = None
    ) -> Database:
        app_url = (
            asyncpg_url(settings.app_database_url)
            if settings.app_database_url
            else role_url(admin_url, settings.app_role)
        )
        system_url = (
            asyncpg_url(settings.system_database_url)
            if settings.system_database_url
            else role_url(admin_url, settings.system_role)
        )
        return cls(
            admin_url=admin_url,
            # A fixed pool: a request waits for a connection rather than open one that is
            # closed again on return (SQLAlchemy drops overflow connections as they come back,
            # so under steady load above the pool size every request paid a new connection).
            # Waiting longer than the pool timeout for a connection answers 503 try-again.
            app_engine=make_engine(
                app_url,
                pool_size=settings.db_pool_size,
                max_overflow=0 if max_overflow is None else max_overflow,
                statement_timeout_ms=settings.db_statement_timeout_ms,
                pool_timeout_seconds=settings.db_pool_timeout_seconds,
                pgbouncer=settings.db_pgbouncer,
                metrics_name="app",
            ),
            # The worker's jobs run longer statements (purges, rebuilds) than a request may.
            system_engine=make_engine(
                system_url,
                pool_size=2,
                application_name="wg-api-system",
                statement_timeout_ms=settings.worker_statement_timeout_ms,
                pgbouncer=settings.db_pgbouncer,
                metrics_name="system",
            ),
            shared_event_delay_seconds=settings.shared_event_delay_seconds,
            request_slots=FairGate(settings.db_pool_size),
            request_wait_seconds=settings.db_pool_timeout_seconds,
        )

    def session(
        self, tenant_id: uuid.UUID | None = None, *, shared_event_delay_seconds: float | None = None
    ) -> AsyncSession:
        """A session bound to `tenant_id`; `info` also carries the longest delay of events about
        shared findings written through it (`WG_SHARED_EVENT_DELAY_SECONDS`)."""
        delay = self.shared_event_delay_seconds
        if shared_event_delay_seconds is not None:
            delay = shared_event_delay_seconds
        return self.sessions(info={"tenant_id": tenant_id, SHARED_EVENT_DELAY_KEY: delay})

    @asynccontextmanager
    async def transaction(self, tenant_id: uuid.UUID | None = None) -> AsyncIterator[AsyncSession]:
        """A session in one transaction, committed on success and rolled back on error."""
        async with self.session(tenant_id) as session, session.begin():
            yield session

    @asynccontextmanager
    async def system_transaction(self) -> AsyncIterator[AsyncSession]:
        async with self.system_sessions() as session, session.begin():
            yield session

    async def dispose(self) -> None:
        await self.app_engine.dispose()
        await self.system_engine.dispose()


def row_mapping(row: Any) -> Mapping[str, Any]:
    """A row's columns by name: an asyncpg Record (from `driver_fetch`) or a mapping as it is,
    a SQLAlchemy row by its `_mapping`. The Record is told by its exact type: `isinstance`
    against SQLAlchemy's `Row` goes through the ABC machinery, on each of a page's 51 rows."""
    if type(row) is asyncpg.Record:
        return cast(Mapping[str, Any], row)
    return cast(Mapping[str, Any], getattr(row, "_mapping", row))


async def driver_fetch(session: AsyncSession, sql: str, *args: Any) -> list[Any]:
    """Run `sql` ($1, $2... placeholders) with asyncpg on the session's own connection.

    For hot read paths where SQLAlchemy's statement and result machinery costs more than the
    query. The session's transaction (and so its tenant binding) is begun first, as for any
    statement; rows are asyncpg Records.
    """
    connection = await session.connection()
    sync = connection.sync_connection
    # The connection the session just handed out is live: its pooled connection is an
    # attribute away (`get_raw_connection` would spend a greenlet switch on reading it; only a
    # connection invalidated since would need I/O to replace).
    if sync is not None and not sync.closed and not sync.invalidated:
        raw = sync.connection
    else:
        raw = await connection.get_raw_connection()
    driver = raw.driver_connection
    assert driver is not None
    rows: list[Any] = await driver.fetch(sql, *args)
    return rows
