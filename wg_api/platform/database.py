"""Connections, roles and the per-transaction tenant binding.

Three identities reach the database: the owner (runs migrations, owns every object), the app role
(serves requests; no superuser, no BYPASSRLS, DML only) and the system role (the worker and the
command line: jobs, and the owner's functions for work across tenants). `roles.py` makes and checks
them. Code holds an `AsyncConnection` (SQLAlchemy Core: no ORM session, whose bookkeeping cost
a request more than its queries did; bench/README.md), from `Database.connection` or
`Database.transaction`; every transaction on it binds the connection's tenant
(`app.tenant_id`, '' for none) in its BEGIN.
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
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine
from sqlalchemy.pool import ConnectionPoolEntry

from wg_api.platform.embedded import embedded_admin_url
from wg_api.platform.observability import MeteredPool, observe_pool
from wg_api.settings import Settings

log = logging.getLogger("wg_api.database")

EMBEDDED_DATABASE = "wg"
SHARED_EVENT_DELAY_KEY = "shared_event_delay_seconds"


class TenantConnection(asyncpg.Connection):
    """An asyncpg connection whose every BEGIN binds the tenant of its checkout: `BEGIN;SELECT
    set_config('app.tenant_id', '<uuid>', true)` goes as one simple query, one round trip where
    a BEGIN and then a bound statement took two (at the start of every transaction: measured in
    bench/README.md). A `LazyConnection` binds its tenant when it takes the connection, and the
    pool unbinds it when the connection comes back: between checkouts, and for anyone else, a
    BEGIN binds '' (no tenant). Only a `uuid.UUID`'s own text, or nothing, is put into the
    SQL."""

    __slots__ = ("_binding",)

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._binding = ""

    def bind(self, tenant_id: uuid.UUID | None) -> None:
        """Bind `tenant_id` (None: no tenant) in every BEGIN until `unbind`."""
        self._binding = str(uuid.UUID(str(tenant_id))) if tenant_id is not None else ""

    def unbind(self) -> None:
        self._binding = ""

    # asyncpg's own signature, overridden.
    async def execute(
        self,
        query: str,
        *args: Any,
        timeout: float | None = None,  # noqa: ASYNC109
    ) -> str:
        if not args and query.startswith("BEGIN"):
            query = (
                f"{query.rstrip(';')};SELECT set_config('app.tenant_id', '{self._binding}', true)"
            )
        return await super().execute(query, *args, timeout=timeout)


# What a LazyConnection is made with: its tenant, and the longest delay of events about shared
# findings written through it.
TENANT_OPTION = "wg_tenant_id"
DEFAULT_SHARED_EVENT_DELAY_SECONDS = 300.0


def _unbind_at_checkin(dbapi_connection: Any, record: ConnectionPoolEntry) -> None:
    """Pool event `checkin`: no tenant outlives the checkout that bound it."""
    driver = record.driver_connection
    if isinstance(driver, TenantConnection):
        driver.unbind()


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
    event.listen(engine.sync_engine.pool, "checkin", _unbind_at_checkin)
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
        self._waiters: deque[asyncio.Future[bool]] = deque()

    async def acquire(self, patience: float) -> bool:
        """True with a slot; False when none came within `patience` seconds."""
        if self._free > 0 and not self._waiters:
            self._free -= 1
            return True
        loop = asyncio.get_running_loop()
        waiter: asyncio.Future[bool] = loop.create_future()
        self._waiters.append(waiter)
        # A timer answers False at the end of the patience: no task per wait (Python 3.11's
        # `asyncio.wait_for` makes one), and under load about a third of a worker's requests wait.
        timer = loop.call_later(patience, self._expire, waiter)
        try:
            return await waiter
        except BaseException:
            # Cancelled while waiting (the client went away): leave the queue, and give back a
            # slot handed over just before.
            if waiter.done() and not waiter.cancelled() and waiter.result():
                self.release()
            else:
                self._leave(waiter)
            raise
        finally:
            timer.cancel()

    def _expire(self, waiter: asyncio.Future[bool]) -> None:
        if not waiter.done():
            waiter.set_result(False)
            self._leave(waiter)

    def _leave(self, waiter: asyncio.Future[bool]) -> None:
        with contextlib.suppress(ValueError):
            self._waiters.remove(waiter)

    def release(self) -> None:
        while self._waiters:
            waiter = self._waiters.popleft()
            if not waiter.done():
                waiter.set_result(True)
                return
        self._free += 1


class LazyConnection(AsyncConnection):
    """An `AsyncConnection` that takes its pooled connection at its first statement, not when
    made: a request holds none while its body arrives or while it waits on another service (an
    identity provider's keys), and one that answers without the database takes none. It binds
    its tenant on the connection it takes (`TenantConnection`), so that every transaction on it
    binds the tenant in its BEGIN."""

    __slots__ = ("_start_options",)

    def __init__(self, engine: AsyncEngine, options: Mapping[str, Any]) -> None:
        super().__init__(engine)
        self._start_options = options

    @property
    def options(self) -> Mapping[str, Any]:
        return self._start_options

    async def start(self, is_ctxmanager: bool = False) -> AsyncConnection:
        await super().start(is_ctxmanager)
        assert self.sync_connection is not None
        driver = self.sync_connection.connection.driver_connection
        if not isinstance(driver, TenantConnection):  # every engine of make_engine has it
            raise TypeError("a LazyConnection binds its tenant through a TenantConnection")
        driver.bind(self._start_options.get(TENANT_OPTION))
        return self

    async def started(self) -> Connection:
        if self.sync_connection is None:
            await self.start()
            assert self.sync_connection is not None
        return self.sync_connection

    def in_transaction(self) -> bool:
        return self.sync_connection is not None and self.sync_connection.in_transaction()

    # Each way in that needs the pooled connection starts it first (SQLAlchemy's signatures).
    async def execute(self, *args: Any, **kwargs: Any) -> Any:
        await self.started()
        return await super().execute(*args, **kwargs)

    async def scalar(self, *args: Any, **kwargs: Any) -> Any:
        await self.started()
        return await super().scalar(*args, **kwargs)

    async def scalars(self, *args: Any, **kwargs: Any) -> Any:
        await self.started()
        return await super().scalars(*args, **kwargs)

    async def exec_driver_sql(self, *args: Any, **kwargs: Any) -> Any:
        await self.started()
        return await super().exec_driver_sql(*args, **kwargs)

    async def get_raw_connection(self) -> Any:
        await self.started()
        return await super().get_raw_connection()

    async def run_sync(self, *args: Any, **kwargs: Any) -> Any:
        await self.started()
        return await super().run_sync(*args, **kwargs)

    async def commit(self) -> None:
        if self.sync_connection is not None:
            await super().commit()

    async def rollback(self) -> None:
        if self.sync_connection is not None:
            await super().rollback()

    async def close(self) -> None:
        """Give the pooled connection back, its transaction rolled back (a committed one has
        nothing left to roll back). The ROLLBACK is awaited here, on the adapter's own
        transaction, as `begun_driver` awaits its BEGIN: SQLAlchemy's close then has no I/O
        left to do in its greenlet (a read's CPU, bench/README.md, 2026-12-03 09:33). If that
        ROLLBACK fails or is cancelled, the connection is in no state to be used again: it is
        invalidated (closed, never back in the pool) before it is given back."""
        sync = self.sync_connection
        if sync is None:
            return
        try:
            await _roll_back_directly(sync)
        except BaseException:
            with contextlib.suppress(Exception):
                await self.invalidate()
            raise
        finally:
            await super().close()


async def _roll_back_directly(sync: Connection) -> None:
    """Roll back the asyncpg transaction under `sync`, if one is open, without SQLAlchemy's
    greenlet (SQLAlchemy 2.1's adapter, pinned in uv.lock: `_transaction`, discarded by
    `_call_and_discard` whatever the outcome). Anything unexpected is left to SQLAlchemy."""
    if sync.closed or sync.invalidated:
        return
    adapted = sync.connection.dbapi_connection
    transaction = getattr(adapted, "_transaction", None)
    discard = getattr(adapted, "_call_and_discard", None)
    if transaction is None or discard is None:
        return
    await discard(transaction.rollback)


async def started(connection: AsyncConnection) -> AsyncConnection:
    """`connection` with its pooled connection taken (for `begin_nested`, which cannot take it)."""
    if isinstance(connection, LazyConnection):
        await connection.started()
    return connection


@dataclass
class Database:
    """The engines a process uses. The API uses `app`; the worker uses `system`."""

    admin_url: URL
    app_engine: AsyncEngine
    system_engine: AsyncEngine
    # The default for connections that do not say (jobs, scripts); a request passes its app's.
    shared_event_delay_seconds: float = DEFAULT_SHARED_EVENT_DELAY_SECONDS
    # Requests take one of these (as many as the app's pool has connections) before a
    # connection (see FairGate).
    request_slots: FairGate | None = None
    request_wait_seconds: float = 1.0

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

    def connection(
        self,
        tenant_id: uuid.UUID | None = None,
        *,
        shared_event_delay_seconds: float | None = None,
        system: bool = False,
    ) -> LazyConnection:
        """A connection of the app engine (the system engine's with `system`) whose every
        transaction binds `tenant_id` (or no tenant); it also carries the longest delay of
        events about shared findings written through it (`WG_SHARED_EVENT_DELAY_SECONDS`). It
        takes a pooled connection at its first statement; the caller closes it."""
        delay = self.shared_event_delay_seconds
        if shared_event_delay_seconds is not None:
            delay = shared_event_delay_seconds
        return LazyConnection(
            self.system_engine if system else self.app_engine,
            {TENANT_OPTION: tenant_id, SHARED_EVENT_DELAY_KEY: delay},
        )

    @asynccontextmanager
    async def transaction(
        self, tenant_id: uuid.UUID | None = None, *, system: bool = False
    ) -> AsyncIterator[AsyncConnection]:
        """A connection in one transaction, committed on success and rolled back on error."""
        connection = self.connection(tenant_id, system=system)
        try:
            await connection.start()
            async with connection.begin():
                yield connection
        finally:
            await connection.close()

    def system_transaction(self) -> contextlib.AbstractAsyncContextManager[AsyncConnection]:
        return self.transaction(system=True)

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


def _options(connection: AsyncConnection) -> Mapping[str, Any]:
    return connection.options if isinstance(connection, LazyConnection) else {}


def shared_event_delay(connection: AsyncConnection) -> float:
    """The longest delay of events about shared findings written through `connection`."""
    delay = _options(connection).get(SHARED_EVENT_DELAY_KEY, DEFAULT_SHARED_EVENT_DELAY_SECONDS)
    return float(delay)


_UNKNOWN = object()


async def begun_driver(connection: AsyncConnection) -> asyncpg.Connection:
    """The asyncpg connection under `connection`, in the connection's transaction: begun now
    (with its tenant bound) if it was not yet, as for any statement.

    SQLAlchemy's asyncpg adapter sends its BEGIN before the first statement it runs; a driver
    query must not run before it. The usual case needs no greenlet switch: beginning the
    Connection does no I/O (SQLAlchemy leaves the BEGIN to the adapter) and the adapter's BEGIN
    (which binds the tenant: `TenantConnection`) is awaited directly (SQLAlchemy 2.1's adapter,
    pinned in uv.lock). Anything else (a connection invalidated since, a failed BEGIN, a
    changed adapter) goes through SQLAlchemy, whose error handling replaces a lost
    connection's pool."""
    await started(connection)
    sync = connection.sync_connection
    if sync is not None and not sync.closed and not sync.invalidated:
        if not sync.in_transaction():
            sync.begin()
        pooled = sync.connection
        driver = cast(asyncpg.Connection, pooled.driver_connection)
        begun = getattr(pooled.dbapi_connection, "_transaction", _UNKNOWN)
        start = getattr(pooled.dbapi_connection, "_start_transaction", None)
        if begun is not None and begun is not _UNKNOWN:
            return driver
        if begun is None and start is not None:
            try:
                await start()
            except Exception:  # noqa: S110
                pass  # again below, through SQLAlchemy's error handling
            else:
                return driver
    tenant_id = _options(connection).get(TENANT_OPTION)
    await connection.exec_driver_sql(
        "SELECT set_config('app.tenant_id', $1, true)", (str(tenant_id) if tenant_id else "",)
    )
    raw = await connection.get_raw_connection()
    return cast(asyncpg.Connection, raw.driver_connection)


async def driver_fetch(connection: AsyncConnection, sql: str, *args: Any) -> list[Any]:
    """Run `sql` ($1, $2... placeholders) with asyncpg on the connection's own driver
    connection, in its transaction (begun first, as for any statement): for hot read paths
    where SQLAlchemy's statement and result machinery costs more than the query. Rows are
    asyncpg Records."""
    driver = await begun_driver(connection)
    rows: list[Any] = await driver.fetch(sql, *args)
    return rows
