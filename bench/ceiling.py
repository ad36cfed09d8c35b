"""The ceiling: the bench's queries answered by bare Litestar + raw asyncpg, nothing else.

No authentication, no SQLAlchemy, no services or Structs: the tenant comes as `?tenant_id=`. Each
endpoint does the database work of its real counterpart, the way the real one does it: one
transaction as the app role (row-level security applies), the tenant bound with
`set_config('app.tenant_id', $1, true)`, the same SELECT, the rows encoded as JSON. What the real
endpoint spends beyond this is the cost of the framework around the query: auth, validation,
SQLAlchemy, Structs. Served exactly as `wg-api serve` serves (`wg_api.cli.run_server`: the same
server, worker processes and event loop).

    python -m bench.ceiling --port 8101     # reads DATABASE_URL etc. like `wg-api serve`
"""

from __future__ import annotations

import argparse
import base64
import gc
import uuid
from collections.abc import Sequence
from typing import Annotated, Any

import asyncpg
import msgspec
from litestar import Litestar, get
from litestar.datastructures import State
from litestar.params import QueryParameter

from bench.generate import connect_kwargs
from wg_api.cli import SERVERS, default_workers, run_server
from wg_api.platform.database import asyncpg_url, resolve_admin_url, role_url
from wg_api.platform.pagination import limit_clause
from wg_api.settings import Settings
from wg_api.sharing.service import ROUNDING_BASE

FINDING_COLUMNS = (
    "id, supplier_id, external_id, kind, area, severity, basis, title, description, observed_on, "
    "source_scheme, source_reference, status, affected_workers, cap, child_labour_case, "
    "created_at, updated_at"
)
SUPPLIER_COLUMNS = (
    "s.id, s.name, s.local_name, s.address, s.country, s.province, s.city, s.sector, s.os_id, "
    "l.internal_code, l.created_at"
)
SHARED_COLUMNS = (
    "f.id, f.group_id, f.kind, f.area, f.severity, f.basis, f.status, f.observed_period, "
    "f.title, f.description, f.affected_workers_band, f.source_scheme, f.child_labour_case, "
    "s.id AS supplier_id, s.name AS supplier_name, s.local_name AS supplier_local_name, "
    "s.address AS supplier_address, s.country AS supplier_country, "
    "s.province AS supplier_province, s.city AS supplier_city, s.sector AS supplier_sector, "
    "s.os_id AS supplier_os_id"
)
# `is_own` from the caller's shares, probed per listed row as the app does
# (wg_api.sharing.repository.shared_page).
OWN_JOIN = (
    "LEFT JOIN LATERAL (SELECT true AS is_own FROM shares sh WHERE sh.shared_finding_id = f.id "
    "AND sh.tenant_id = $2 AND sh.status = 'active' LIMIT 1) own ON true"
)
# The app's call (wg_api.sharing.repository.insight_cells), parameter for parameter.
INSIGHTS_SQL = (
    "SELECT cell, findings, suppliers, contributors FROM group_insights($1::uuid, $2::text[], "
    "$3::uuid, $4::text, $5::text, $6::text, $7::text, $8::text, $9::int)"
)
PAGE = 50

TenantId = Annotated[uuid.UUID, QueryParameter(name="tenant_id")]
GroupId = Annotated[uuid.UUID, QueryParameter(name="group_id")]
Filter = Annotated[str | None, QueryParameter()]
ResourceId = Annotated[uuid.UUID, QueryParameter(name="id")]


async def _read(state: State, tenant_id: uuid.UUID, sql: str, *args: Any) -> list[dict[str, Any]]:
    """One transaction as the app role with the tenant bound, like every real /v1 request."""
    pool: asyncpg.Pool = state.pool
    async with pool.acquire() as conn, conn.transaction():
        await conn.execute("SELECT set_config('app.tenant_id', $1, true)", str(tenant_id))
        rows: Sequence[asyncpg.Record] = await conn.fetch(sql, *args)
    return [dict(row) for row in rows]


def _page(rows: list[dict[str, Any]], keyset: tuple[str, ...]) -> dict[str, Any]:
    """The shape of a real page: `items`, and a keyset `next_cursor` when one more row exists."""
    items = rows[:PAGE]
    cursor = None
    if len(rows) > PAGE:
        last = msgspec.json.encode([items[-1][key] for key in keyset])
        cursor = base64.urlsafe_b64encode(last).rstrip(b"=").decode()
    return {"items": items, "next_cursor": cursor}


@get("/healthz")
async def healthz() -> dict[str, str]:
    return {"status": "ok"}


@get("/me")
async def me(state: State, tenant_id: TenantId) -> dict[str, Any]:
    rows = await _read(
        state, tenant_id, "SELECT id, slug, name, kind FROM tenants WHERE id = $1", tenant_id
    )
    return {"tenant": rows[0] if rows else None}


@get("/findings")
async def findings(
    state: State,
    tenant_id: TenantId,
    area: Annotated[str | None, QueryParameter(name="area")] = None,
    status: Annotated[str | None, QueryParameter(name="status")] = None,
) -> dict[str, Any]:
    """The tenant's newest 50 findings (51 read, to know whether there is a next page)."""
    conditions = ["tenant_id = $1"]
    args: list[Any] = [str(tenant_id)]
    for column, value in (("area", area), ("status", status)):
        if value is not None:
            args.append(value)
            conditions.append(f"{column} = ${len(args)}")
    # The limit as the app writes it (wg_api.platform.pagination.limit_clause).
    limit = limit_clause(args, PAGE + 1, filtered=len(args) > 1)
    sql = (
        f"SELECT {FINDING_COLUMNS} FROM findings WHERE {' AND '.join(conditions)} "
        f"ORDER BY observed_on DESC, id DESC {limit}"
    )
    return _page(await _read(state, tenant_id, sql, *args), ("observed_on", "id"))


@get("/finding")
async def finding(state: State, tenant_id: TenantId, finding_id: ResourceId) -> dict[str, Any]:
    """One of the tenant's findings by id (wg_api.findings.repository.read_one)."""
    sql = f"SELECT {FINDING_COLUMNS} FROM findings WHERE tenant_id = $1 AND id = $2"
    rows = await _read(state, tenant_id, sql, tenant_id, finding_id)
    return rows[0] if rows else {}


@get("/supplier")
async def supplier(state: State, tenant_id: TenantId, supplier_id: ResourceId) -> dict[str, Any]:
    """A supplier the tenant links to, with its internal code (wg_api.suppliers.repository
    .linked)."""
    sql = (
        f"SELECT {SUPPLIER_COLUMNS} FROM suppliers s JOIN supplier_links l "
        "ON l.supplier_id = s.id WHERE l.tenant_id = $1 AND s.id = $2"
    )
    rows = await _read(state, tenant_id, sql, tenant_id, supplier_id)
    return rows[0] if rows else {}


@get("/suppliers")
async def suppliers(state: State, tenant_id: TenantId) -> dict[str, Any]:
    """The tenant's linked suppliers by name (kept on the link), with its internal codes."""
    sql = (
        f"SELECT {SUPPLIER_COLUMNS} FROM supplier_links l "
        "JOIN suppliers s ON s.id = l.supplier_id WHERE l.tenant_id = $1 "
        f"ORDER BY l.supplier_name, l.supplier_id LIMIT {PAGE + 1}"
    )
    return _page(await _read(state, tenant_id, sql, tenant_id), ("name", "id"))


@get("/shared-findings")
async def shared_findings(
    state: State,
    tenant_id: TenantId,
    group_id: GroupId,
    area: Filter = None,
    country: Filter = None,
) -> dict[str, Any]:
    """A group's shared findings by supplier name, newest quarter first (row-level security
    shows them to members), with `is_own` from the caller's shares."""
    conditions = ["f.group_id = $1"]
    args: list[Any] = [group_id, tenant_id]
    for column, value in (("area", area), ("country", country)):
        if value is not None:
            args.append(value)
            conditions.append(f"f.{column} = ${len(args)}")
    # The limit as the app writes it (wg_api.platform.pagination.limit_clause).
    limit = limit_clause(args, PAGE + 1, filtered=len(args) > 2)
    sql = (
        f"SELECT {SHARED_COLUMNS}, own.is_own IS NOT NULL AS is_own "
        f"FROM shared_findings f JOIN suppliers s ON s.id = f.supplier_id {OWN_JOIN} "
        f"WHERE {' AND '.join(conditions)} "
        f"ORDER BY f.supplier_name, f.supplier_id, f.observed_period DESC, f.id {limit}"
    )
    rows = await _read(state, tenant_id, sql, *args)
    return _page(rows, ("supplier_name", "supplier_id", "observed_period", "id"))


@get("/shared-finding")
async def shared_finding(
    state: State, tenant_id: TenantId, group_id: GroupId, shared_id: ResourceId
) -> dict[str, Any]:
    """One shared finding of a group (row-level security shows it to members), with `is_own`."""
    sql = (
        f"SELECT {SHARED_COLUMNS}, own.is_own IS NOT NULL AS is_own "
        f"FROM shared_findings f JOIN suppliers s ON s.id = f.supplier_id {OWN_JOIN} "
        "WHERE f.group_id = $1 AND f.id = $3"
    )
    rows = await _read(state, tenant_id, sql, group_id, tenant_id, shared_id)
    return rows[0] if rows else {}


@get("/insights")
async def insights(
    state: State,
    tenant_id: TenantId,
    group_id: GroupId,
    group_by: Filter = None,
    area: Filter = None,
    severity: Filter = None,
    country: Filter = None,
    period: Filter = None,
    kind: Filter = None,
) -> dict[str, Any]:
    """The insights function as the app calls it; published cells listed, suppressed counted."""
    dims = [d for d in (group_by or "").split(",") if d]
    rows = await _read(
        state,
        tenant_id,
        INSIGHTS_SQL,
        group_id,
        dims,
        None,
        area,
        severity,
        country,
        period,
        kind,
        ROUNDING_BASE,
    )
    return {
        "group_by": dims,
        "cells": [row for row in rows if row["findings"] is not None],
        "suppressed_cells": sum(1 for row in rows if row["findings"] is None),
    }


async def _init_connection(conn: asyncpg.Connection) -> None:
    for jsonb in ("json", "jsonb"):
        await conn.set_type_codec(
            jsonb,
            schema="pg_catalog",
            encoder=lambda value: msgspec.json.encode(value).decode(),
            decoder=msgspec.json.decode,
        )


def create_app(settings: Settings, *, freeze_after_startup: bool = False) -> Litestar:
    app_url = (
        asyncpg_url(settings.app_database_url)
        if settings.app_database_url
        else role_url(resolve_admin_url(settings), settings.app_role)
    )

    async def open_pool(app: Litestar) -> None:
        # As many connections as the real engine may open: pool_size plus its overflow.
        app.state.pool = await asyncpg.create_pool(
            **connect_kwargs(app_url),
            min_size=settings.db_pool_size,
            max_size=settings.db_pool_size,  # the fixed pool of `wg-api serve`
            init=_init_connection,
            server_settings={"application_name": "wg-bench-ceiling"},
        )
        if freeze_after_startup:
            # Served as `wg-api serve` serves: start-up's objects out of the collector's sight
            # (`wg_api.app.freeze_heap`), so neither side pays full collections of them.
            gc.collect()
            gc.freeze()

    async def close_pool(app: Litestar) -> None:
        await app.state.pool.close()

    return Litestar(
        route_handlers=[
            healthz,
            me,
            findings,
            finding,
            suppliers,
            supplier,
            shared_findings,
            shared_finding,
            insights,
        ],
        on_startup=[open_pool],
        on_shutdown=[close_pool],
        openapi_config=None,
        # It logs nothing; and in-process (`bench.inprocess --ceiling`) it must not configure
        # the real app's loggers.
        logging_config=None,
    )


def served_ceiling() -> Litestar:
    """The factory each server process calls (like `wg_api.cli:served_app`)."""
    return create_app(Settings.from_env(), freeze_after_startup=True)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.ceiling", description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8101)
    parser.add_argument("--workers", type=int, default=0, help="default: as `wg-api serve`")
    parser.add_argument("--server", default="uvicorn", choices=SERVERS)
    args = parser.parse_args(argv)
    run_server(
        "bench.ceiling:served_ceiling",
        host=args.host,
        port=args.port,
        workers=args.workers or default_workers(),
        server=args.server,
    )


if __name__ == "__main__":
    main()
