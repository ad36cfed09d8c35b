"""Every supplier query: the common registry and the caller's private links."""

from __future__ import annotations

import uuid
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection

from wg_api.platform.database import driver_fetch, started
from wg_api.platform.models import Record
from wg_api.suppliers.matching import CJK_SUFFIX_PATTERN
from wg_api.suppliers.models import supplier_links, suppliers

CANONICAL = (
    suppliers.c.id,
    suppliers.c.name,
    suppliers.c.local_name,
    suppliers.c.address,
    suppliers.c.country,
    suppliers.c.province,
    suppliers.c.city,
    suppliers.c.sector,
    suppliers.c.os_id,
)


def _like(q: str) -> str:
    return "%" + q.lower().replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"


async def by_id(session: AsyncConnection, supplier_id: uuid.UUID) -> Record | None:
    statement = sa.select(*CANONICAL).where(suppliers.c.id == supplier_id)
    return (await session.execute(statement)).one_or_none()


async def by_os_id(session: AsyncConnection, os_id: str) -> Record | None:
    statement = sa.select(*CANONICAL).where(suppliers.c.os_id == os_id)
    return (await session.execute(statement)).one_or_none()


async def by_match_key(session: AsyncConnection, key: str) -> Record | None:
    statement = sa.select(*CANONICAL).where(suppliers.c.match_key == key)
    return (await session.execute(statement)).one_or_none()


async def insert_supplier(session: AsyncConnection, values: dict[str, Any]) -> Record | None:
    """Insert unless the match key or OS ID exists already (then None: someone else won)."""
    statement = insert(suppliers).values(**values).on_conflict_do_nothing().returning(*CANONICAL)
    return (await session.execute(statement)).one_or_none()


async def similar(
    session: AsyncConnection, *, match_name: str, local_name: str | None, country: str, limit: int
) -> list[Record]:
    """Registry rows in `country` whose normalised name (or local name) resembles the given one.

    `local_name` must already be normalised (`normalise_local_name`).
    """
    name_similarity = sa.func.similarity(suppliers.c.match_name, match_name)
    # Stored local names keep their legal suffix (有限公司, ...); compare them without it.
    stored_local = sa.func.regexp_replace(
        sa.func.btrim(sa.func.coalesce(suppliers.c.local_name, "")), CJK_SUFFIX_PATTERN, ""
    )
    local_similarity = (
        sa.func.similarity(stored_local, local_name) if local_name else sa.literal(0.0)
    )
    condition: sa.ColumnElement[bool] = suppliers.c.match_name.op("%")(match_name)
    if local_name:
        condition = sa.or_(condition, stored_local.op("%")(local_name))
    statement = (
        sa.select(
            *CANONICAL,
            suppliers.c.address.label("raw_address"),
            name_similarity.label("name_similarity"),
            local_similarity.label("local_similarity"),
        )
        .where(suppliers.c.country == country, condition)
        .order_by(sa.func.greatest(name_similarity, local_similarity).desc(), suppliers.c.id)
        .limit(limit)
    )
    return list((await session.execute(statement)).all())


INTERNAL_CODE_INDEX = "supplier_links_internal_code"


async def link(
    session: AsyncConnection,
    tenant_id: uuid.UUID,
    supplier_id: uuid.UUID,
    internal_code: str | None,
) -> Record | None:
    """Link (or keep the link, setting the code if given). None when the tenant's internal code
    is taken by another of its suppliers, e.g. by a concurrent request."""
    statement = insert(supplier_links).values(
        tenant_id=tenant_id, supplier_id=supplier_id, internal_code=internal_code
    )
    upsert = statement.on_conflict_do_update(
        index_elements=[supplier_links.c.tenant_id, supplier_links.c.supplier_id],
        set_={
            "internal_code": sa.func.coalesce(
                statement.excluded.internal_code, supplier_links.c.internal_code
            )
        },
    ).returning(supplier_links.c.internal_code, supplier_links.c.created_at)
    if internal_code is None:
        row: Record = (await session.execute(upsert)).one()
        return row
    try:
        async with (await started(session)).begin_nested():
            return (await session.execute(upsert)).one()
    except IntegrityError as exc:
        if INTERNAL_CODE_INDEX in str(exc.orig):
            return None
        raise


async def internal_code_owner(
    session: AsyncConnection, tenant_id: uuid.UUID, internal_code: str
) -> uuid.UUID | None:
    statement = sa.select(supplier_links.c.supplier_id).where(
        supplier_links.c.tenant_id == tenant_id, supplier_links.c.internal_code == internal_code
    )
    owner: uuid.UUID | None = await session.scalar(statement)
    return owner


async def is_linked(session: AsyncConnection, tenant_id: uuid.UUID, supplier_id: uuid.UUID) -> bool:
    statement = sa.select(sa.literal(1)).where(
        supplier_links.c.tenant_id == tenant_id, supplier_links.c.supplier_id == supplier_id
    )
    return (await session.scalar(statement)) is not None


_LINKED_COLUMNS = (
    "s.id, s.name, s.local_name, s.address, s.country, s.province, s.city, s.sector, s.os_id, "
    "l.internal_code, l.created_at"
)
_LINKED = (
    f"SELECT {_LINKED_COLUMNS} FROM supplier_links l "  # noqa: S608
    "JOIN suppliers s ON s.id = l.supplier_id WHERE l.tenant_id = $1 AND l.supplier_id = $2"
)


async def linked(session: AsyncConnection, tenant_id: uuid.UUID, supplier_id: uuid.UUID) -> Any:
    """A supplier the tenant links to, with its code: an asyncpg Record, or None. A read of one
    resource, so straight to the driver as the list goes."""
    rows = await driver_fetch(session, _LINKED, tenant_id, supplier_id)
    return rows[0] if rows else None


async def list_linked(
    session: AsyncConnection,
    tenant_id: uuid.UUID,
    *,
    q: str | None,
    country: str | None,
    after: tuple[Any, ...] | None,
    limit: int,
) -> list[Any]:
    """The tenant's suppliers by name: one range of `supplier_links_by_name`, which keeps the
    supplier's name on the link. Hot path, so straight to the driver."""
    conditions: list[str] = []
    args: list[Any] = [tenant_id]

    def condition(template: str, *values: Any) -> None:
        placeholders = []
        for value in values:
            args.append(value)
            placeholders.append(f"${len(args)}")
        conditions.append(template.format(*placeholders))

    if country:
        condition("s.country = {}", country)
    if q:
        condition(
            "(lower(s.name) LIKE {0} OR lower(coalesce(s.local_name, '')) LIKE {0} "
            "OR lower(coalesce(l.internal_code, '')) LIKE {0})",
            _like(q),
        )
    if after:
        condition("(l.supplier_name, l.supplier_id) > ({}, {})", after[0], after[1])
    args.append(limit + 1)
    where = "".join(f"AND {c} " for c in conditions)
    # Only fixed column names and $n placeholders are joined in; every value is a parameter.
    sql = (
        f"SELECT {_LINKED_COLUMNS} FROM supplier_links l "  # noqa: S608
        "JOIN suppliers s ON s.id = l.supplier_id "
        f"WHERE l.tenant_id = $1 {where} "
        f"ORDER BY l.supplier_name, l.supplier_id LIMIT ${len(args)}"
    )
    return await driver_fetch(session, sql, *args)


async def search_registry(
    session: AsyncConnection,
    *,
    q: str | None,
    country: str | None,
    after: tuple[Any, ...] | None,
    limit: int,
) -> list[Record]:
    statement = sa.select(*CANONICAL)
    if country:
        statement = statement.where(suppliers.c.country == country)
    if q:
        pattern = _like(q)
        statement = statement.where(
            sa.or_(
                sa.func.lower(suppliers.c.name).like(pattern),
                sa.func.lower(sa.func.coalesce(suppliers.c.local_name, "")).like(pattern),
                suppliers.c.os_id == q.upper(),
            )
        )
    if after:
        statement = statement.where(
            sa.tuple_(suppliers.c.name, suppliers.c.id) > sa.tuple_(after[0], after[1])
        )
    statement = statement.order_by(suppliers.c.name, suppliers.c.id).limit(limit + 1)
    return list((await session.execute(statement)).all())


async def unlink(session: AsyncConnection, tenant_id: uuid.UUID, supplier_id: uuid.UUID) -> bool:
    result = await session.execute(
        sa.delete(supplier_links).where(
            supplier_links.c.tenant_id == tenant_id, supplier_links.c.supplier_id == supplier_id
        )
    )
    return bool(result.rowcount)
