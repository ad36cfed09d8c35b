"""Every sharing query. Shared findings are read through RLS (members of the group, or the
contributor); `contributor` is never selected: the app role has no privilege on that column."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

import msgspec
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from wg_api.platform.database import driver_fetch, shared_event_delay
from wg_api.platform.models import Record
from wg_api.platform.pagination import limit_clause
from wg_api.sharing.models import shared_findings, shares
from wg_api.sharing.models import supplier_registry as suppliers

SHARE_COLUMNS = (
    shares.c.id,
    shares.c.finding_id,
    shares.c.group_id,
    shares.c.shared_finding_id,
    shares.c.status,
    shares.c.include_description,
    shares.c.created_at,
    shares.c.withdrawn_at,
)


@dataclass(frozen=True)
class SharedFilters:
    supplier_id: uuid.UUID | None = None
    area: str | None = None
    severity: str | None = None
    country: str | None = None
    period: str | None = None
    kind: str | None = None


async def scrub_names(session: AsyncConnection, group_id: uuid.UUID) -> list[tuple[str, str]]:
    """What the caller's shares into the group are scrubbed of: (name, slug) of every tenant
    that is, was or is invited to be in the group, and (alias, slug) for each of its aliases; for
    a caller that left, only the tenants that were members while it was."""
    rows = await session.execute(
        sa.text(
            "SELECT term, n.slug FROM shared_finding_contributor_names(:group_id) n, "
            "unnest(ARRAY[n.name] || n.aliases) AS term"
        ),
        {"group_id": group_id},
    )
    return [(row.term, row.slug) for row in rows]


async def below_threshold(session: AsyncConnection, group_id: uuid.UUID) -> bool:
    """Whether the group's member tenants that can share (never observers) are fewer than its
    threshold; answered only to its active members and its contributors (false otherwise)."""
    below = await session.scalar(
        sa.text("SELECT wg_group_below_threshold(:group_id)"), {"group_id": group_id}
    )
    return bool(below)


async def linkable_groups(
    session: AsyncConnection, finding_id: uuid.UUID, group_id: uuid.UUID
) -> list[uuid.UUID]:
    """The groups where the caller's finding is actively shared, when they and `group_id` have
    fewer than k + 1 member tenants in common (migration 0006); empty when it may be shared."""
    linked: list[uuid.UUID] | None = await session.scalar(
        sa.text("SELECT share_linkable_groups(:finding_id, :group_id)"),
        {"finding_id": finding_id, "group_id": group_id},
    )
    return list(linked or [])


async def publish_to_group(
    session: AsyncConnection, shared_id: uuid.UUID, type: str, data: dict[str, Any]
) -> None:
    """`type` into the feed of the group's other active members; only the contributor may. The
    database dates it by the day and draws the group's delay, up to the session's setting."""
    await session.execute(
        sa.text(
            "SELECT publish_shared_finding_event(:id, :type, CAST(:data AS jsonb), :max_delay)"
        ),
        {
            "id": shared_id,
            "type": type,
            "data": msgspec.json.encode(data).decode(),
            "max_delay": shared_event_delay(session),
        },
    )


async def insert_shared_finding(
    session: AsyncConnection, group_id: uuid.UUID, contributor: uuid.UUID, values: dict[str, Any]
) -> uuid.UUID:
    shared_id = uuid.uuid4()
    # No RETURNING: the row is checked against SELECT policies, and ids are made here anyway.
    await session.execute(
        sa.insert(shared_findings).values(
            id=shared_id, group_id=group_id, contributor=contributor, **values
        )
    )
    return shared_id


async def update_shared_finding(
    session: AsyncConnection, shared_id: uuid.UUID, values: dict[str, Any]
) -> None:
    await session.execute(
        sa.update(shared_findings).where(shared_findings.c.id == shared_id).values(**values)
    )


async def delete_shared_finding(session: AsyncConnection, shared_id: uuid.UUID) -> None:
    await session.execute(sa.delete(shared_findings).where(shared_findings.c.id == shared_id))


async def insert_share(
    session: AsyncConnection,
    *,
    tenant_id: uuid.UUID,
    finding_id: uuid.UUID,
    group_id: uuid.UUID,
    shared_finding_id: uuid.UUID,
    include_description: bool,
) -> Record:
    statement = (
        sa.insert(shares)
        .values(
            tenant_id=tenant_id,
            finding_id=finding_id,
            group_id=group_id,
            shared_finding_id=shared_finding_id,
            include_description=include_description,
        )
        .returning(*SHARE_COLUMNS)
    )
    row: Record = (await session.execute(statement)).one()
    return row


async def active_share(
    session: AsyncConnection, tenant_id: uuid.UUID, finding_id: uuid.UUID, group_id: uuid.UUID
) -> Record | None:
    statement = sa.select(*SHARE_COLUMNS).where(
        shares.c.tenant_id == tenant_id,
        shares.c.finding_id == finding_id,
        shares.c.group_id == group_id,
        shares.c.status == "active",
    )
    return (await session.execute(statement)).one_or_none()


async def shares_of(
    session: AsyncConnection,
    tenant_id: uuid.UUID,
    finding_id: uuid.UUID,
    *,
    active_only: bool = False,
    for_update: bool = False,
) -> list[Record]:
    statement = sa.select(*SHARE_COLUMNS).where(
        shares.c.tenant_id == tenant_id, shares.c.finding_id == finding_id
    )
    if active_only:
        statement = statement.where(shares.c.status == "active")
    if for_update:
        statement = statement.with_for_update()
    statement = statement.order_by(shares.c.created_at, shares.c.id)
    return list((await session.execute(statement)).all())


async def share_by_id(
    session: AsyncConnection, tenant_id: uuid.UUID, finding_id: uuid.UUID, share_id: uuid.UUID
) -> Record | None:
    statement = (
        sa.select(*SHARE_COLUMNS)
        .where(
            shares.c.tenant_id == tenant_id,
            shares.c.finding_id == finding_id,
            shares.c.id == share_id,
        )
        .with_for_update()
    )
    return (await session.execute(statement)).one_or_none()


async def mark_withdrawn(
    session: AsyncConnection, tenant_id: uuid.UUID, share_id: uuid.UUID
) -> Record:
    statement = (
        sa.update(shares)
        .where(shares.c.tenant_id == tenant_id, shares.c.id == share_id)
        .values(status="withdrawn", withdrawn_at=sa.func.now(), shared_finding_id=None)
        .returning(*SHARE_COLUMNS)
    )
    row: Record = (await session.execute(statement)).one()
    return row


def _shared_select(tenant_id: uuid.UUID, *, with_own: bool = True) -> sa.Select[Any]:
    """Shared records with their supplier's canonical fields; `is_own` from the caller's own
    active shares."""
    own: sa.ColumnElement[bool] = (
        sa.select(sa.literal(1))
        .where(
            shares.c.shared_finding_id == shared_findings.c.id,
            shares.c.tenant_id == tenant_id,
            shares.c.status == "active",
        )
        .exists()
        if with_own
        else sa.false()
    )
    return sa.select(
        shared_findings.c.id,
        shared_findings.c.group_id,
        shared_findings.c.kind,
        shared_findings.c.area,
        shared_findings.c.severity,
        shared_findings.c.basis,
        shared_findings.c.status,
        shared_findings.c.observed_period,
        shared_findings.c.title,
        shared_findings.c.description,
        shared_findings.c.affected_workers_band,
        shared_findings.c.source_scheme,
        shared_findings.c.child_labour_case,
        suppliers.c.id.label("supplier_id"),
        suppliers.c.name.label("supplier_name"),
        suppliers.c.local_name.label("supplier_local_name"),
        suppliers.c.address.label("supplier_address"),
        suppliers.c.country.label("supplier_country"),
        suppliers.c.province.label("supplier_province"),
        suppliers.c.city.label("supplier_city"),
        suppliers.c.sector.label("supplier_sector"),
        suppliers.c.os_id.label("supplier_os_id"),
        own.label("is_own"),
    ).join(suppliers, suppliers.c.id == shared_findings.c.supplier_id)


# The list's columns in order, as (expression, name): its SELECT and `LIST_FIELDS` (the order in
# which `service.shared_from_record` takes them) both come from here.
_LIST_COLUMNS = (
    *(
        (f"f.{name}", name)
        for name in (
            "id",
            "group_id",
            "kind",
            "area",
            "severity",
            "basis",
            "status",
            "observed_period",
            "title",
            "description",
            "affected_workers_band",
            "source_scheme",
            "child_labour_case",
        )
    ),
    *(
        (f"s.{name}", f"supplier_{name}")
        for name in (
            "id",
            "name",
            "local_name",
            "address",
            "country",
            "province",
            "city",
            "sector",
            "os_id",
        )
    ),
    ("own.is_own IS NOT NULL", "is_own"),
)
LIST_FIELDS = tuple(name for _, name in _LIST_COLUMNS)
_LIST_SELECT = ", ".join(f"{expression} AS {name}" for expression, name in _LIST_COLUMNS)
# The group's reader row (`group_readers`, kept by triggers, 0020; row-level security shows it to
# the group's active members only) is joined to the page, one of it to each row: rows only while
# the group is at its threshold, and for an active member. Its version (0021) comes first on each
# row; its names are read apart, when the version is new to this server (`reader_row`). The
# ORDER BY is the list's own: the reader row is one, so the plan keeps the index's order.
_LIST_SQL = (
    # Only the fixed expressions above are joined in.
    f"SELECT r.version, {_LIST_SELECT} "  # noqa: S608
    "FROM group_readers r "
    "JOIN shared_findings f ON f.group_id = r.group_id AND NOT r.below_threshold "
    "JOIN suppliers s ON s.id = f.supplier_id "
    # A lateral probe per listed row: as EXISTS, the planner hashes all the caller's shares.
    "LEFT JOIN LATERAL (SELECT true AS is_own FROM shares sh WHERE sh.shared_finding_id = f.id "
    "AND sh.tenant_id = $2 AND sh.status = 'active' LIMIT 1) own ON true "
    "WHERE r.group_id = $1 AND f.group_id = $1 "
)
# Where the list's columns (LIST_FIELDS) start in a row of it.
PAGE_OFFSET = 1
_LIST_FILTERS = (
    ("supplier_id", "f.supplier_id"),
    ("area", "f.area"),
    ("severity", "f.severity"),
    ("country", "f.country"),
    ("period", "f.observed_period"),
    ("kind", "f.kind"),
)


def _list_statement(
    tenant_id: uuid.UUID,
    group_id: uuid.UUID,
    filters: SharedFilters,
    after: tuple[Any, ...] | None,
    limit: int,
) -> tuple[str, list[Any]]:
    """The list's SELECT ($1 the group, $2 the caller) and its arguments."""
    args: list[Any] = [group_id, tenant_id]
    conditions = []
    for name, column in _LIST_FILTERS:
        value = getattr(filters, name)
        if value is not None:
            args.append(value)
            conditions.append(f"AND {column} = ${len(args)} ")
    filtered = len(args) > 2
    if after is not None:
        args.extend(after)
        a, b, c, d = (f"${n}" for n in range(len(args) - 3, len(args) + 1))
        conditions.append(
            f"AND ((f.supplier_name, f.supplier_id) > ({a}, {b}) OR "
            f"((f.supplier_name, f.supplier_id) = ({a}, {b}) AND "
            f"(f.observed_period < {c} OR (f.observed_period = {c} AND f.id > {d})))) "
        )
    # Only fixed column names, $n placeholders and an integer are joined in; every value is a
    # parameter.
    sql = (
        _LIST_SQL
        + "".join(conditions)
        + "ORDER BY f.supplier_name, f.supplier_id, f.observed_period DESC, f.id "
        + limit_clause(args, limit + 1, filtered=filtered)
    )
    return sql, args


_READ_ONE_SQL = _LIST_SQL + "AND f.id = $3"


async def shared_read(
    session: AsyncConnection, tenant_id: uuid.UUID, group_id: uuid.UUID, shared_id: uuid.UUID
) -> tuple[int, Any] | None:
    """One shared finding as the list shows it (a tuple of `LIST_FIELDS`) with its reader row's
    version, or None: for an id not in the group, a group below its threshold and anyone but an
    active member alike. A read of one resource, so straight to the driver as the list goes."""
    rows = await driver_fetch(session, _READ_ONE_SQL, group_id, tenant_id, shared_id)
    if not rows:
        return None
    return rows[0][0], rows[0][PAGE_OFFSET:]


@dataclass(frozen=True)
class ReaderRow:
    """A group's row of `group_readers`: below its threshold or not, the names to redact there
    and the row's version."""

    below_threshold: bool
    names: list[str]
    version: int


async def reader_row(session: AsyncConnection, group_id: uuid.UUID) -> ReaderRow | None:
    """The group's reader row, None for anyone but an active member (row-level security)."""
    rows = await driver_fetch(
        session,
        "SELECT below_threshold, names, version FROM group_readers WHERE group_id = $1",
        group_id,
    )
    return ReaderRow(rows[0][0], list(rows[0][1]), rows[0][2]) if rows else None


async def shared_page(
    session: AsyncConnection,
    tenant_id: uuid.UUID,
    group_id: uuid.UUID,
    filters: SharedFilters,
    *,
    after: tuple[Any, ...] | None,
    limit: int,
) -> tuple[int | None, list[Any]]:
    """A page of the group's shared findings with its reader row's version, for an active
    member of a group at its threshold: by supplier (name, id), then newest period, then the
    random id, never by insertion (one range of `shared_findings_by_supplier`, which keeps the
    supplier's name on the record), `is_own` from the caller's shares. No rows (and no version)
    for an empty page, a group below its threshold and anyone but an active member alike:
    `reader_row` tells them apart. A hot read, so straight to the driver; the page's rows are
    tuples of `LIST_FIELDS`."""
    sql, args = _list_statement(tenant_id, group_id, filters, after, limit)
    rows = await driver_fetch(session, sql, *args)
    if not rows:
        return None, []
    return rows[0][0], [row[PAGE_OFFSET:] for row in rows]


async def shared_one(
    session: AsyncConnection, tenant_id: uuid.UUID, group_id: uuid.UUID, shared_id: uuid.UUID
) -> Record | None:
    statement = _shared_select(tenant_id).where(
        shared_findings.c.group_id == group_id, shared_findings.c.id == shared_id
    )
    row: Record | None = (await session.execute(statement)).one_or_none()
    return row


async def supplier_in_visible_share(session: AsyncConnection, supplier_id: uuid.UUID) -> bool:
    """RLS limits this to groups the caller is an active member of (or its own shares)."""
    statement = (
        sa.select(sa.literal(1)).where(shared_findings.c.supplier_id == supplier_id).limit(1)
    )
    return (await session.scalar(statement)) is not None


async def insight_cells(
    session: AsyncConnection,
    group_id: uuid.UUID,
    dimensions: list[str],
    filters: SharedFilters,
    rounding_base: int,
) -> list[Record]:
    statement = sa.text(
        "SELECT cell, findings, suppliers, contributors FROM group_insights("
        "CAST(:group_id AS uuid), CAST(:dims AS text[]), CAST(:supplier_id AS uuid), "
        "CAST(:area AS text), CAST(:severity AS text), CAST(:country AS text), "
        "CAST(:period AS text), CAST(:kind AS text), CAST(:rounding AS int))"
    )
    rows = await session.execute(
        statement,
        {
            "group_id": group_id,
            "dims": dimensions,
            "supplier_id": filters.supplier_id,
            "area": filters.area,
            "severity": filters.severity,
            "country": filters.country,
            "period": filters.period,
            "kind": filters.kind,
            "rounding": rounding_base,
        },
    )
    return list(rows.all())


async def active_shared_finding_ids(
    session: AsyncConnection, tenant_id: uuid.UUID
) -> list[uuid.UUID]:
    """The tenant's findings that have an active share somewhere."""
    statement = (
        sa.select(shares.c.finding_id)
        .where(shares.c.tenant_id == tenant_id, shares.c.status == "active")
        .distinct()
        .order_by(shares.c.finding_id)
    )
    return list(await session.scalars(statement))
