"""Every findings query. All of them filter by tenant as well; RLS is the net under that."""

from __future__ import annotations

import uuid
from datetime import date
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import insert as insert_on_conflict
from sqlalchemy.ext.asyncio import AsyncSession

from wg_api.findings.models import findings
from wg_api.findings.schemas import FindingFilters
from wg_api.platform.database import driver_fetch
from wg_api.platform.models import Record

COLUMNS = tuple(c for c in findings.c if c.name != "tenant_id")


async def insert(session: AsyncSession, tenant_id: uuid.UUID, values: dict[str, Any]) -> Record:
    statement = sa.insert(findings).values(tenant_id=tenant_id, **values).returning(*COLUMNS)
    row: Record = (await session.execute(statement)).one()
    return row


async def insert_unless_external_id_taken(
    session: AsyncSession, tenant_id: uuid.UUID, values: dict[str, Any]
) -> Record | None:
    """Insert, or None when the tenant already has a finding with this external id (a concurrent
    request may have just inserted it: the unique index decides, not an earlier SELECT)."""
    statement = (
        insert_on_conflict(findings)
        .values(tenant_id=tenant_id, **values)
        .on_conflict_do_nothing(
            index_elements=[findings.c.tenant_id, findings.c.external_id],
            index_where=findings.c.external_id.is_not(None),
        )
        .returning(*COLUMNS)
    )
    return (await session.execute(statement)).one_or_none()


async def get(
    session: AsyncSession, tenant_id: uuid.UUID, finding_id: uuid.UUID, *, for_update: bool = False
) -> Record | None:
    statement = sa.select(*COLUMNS).where(
        findings.c.tenant_id == tenant_id, findings.c.id == finding_id
    )
    if for_update:
        statement = statement.with_for_update()
    return (await session.execute(statement)).one_or_none()


async def get_many(
    session: AsyncSession, tenant_id: uuid.UUID, finding_ids: list[uuid.UUID]
) -> list[Record]:
    statement = (
        sa.select(*COLUMNS)
        .where(findings.c.tenant_id == tenant_id, findings.c.id.in_(finding_ids))
        .order_by(findings.c.id)
    )
    return list((await session.execute(statement)).all())


async def get_by_external_id(
    session: AsyncSession, tenant_id: uuid.UUID, external_id: str, *, for_update: bool = False
) -> Record | None:
    statement = sa.select(*COLUMNS).where(
        findings.c.tenant_id == tenant_id, findings.c.external_id == external_id
    )
    if for_update:
        statement = statement.with_for_update()
    return (await session.execute(statement)).one_or_none()


async def external_id_taken(
    session: AsyncSession, tenant_id: uuid.UUID, external_id: str, other_than: uuid.UUID | None
) -> bool:
    statement = sa.select(findings.c.id).where(
        findings.c.tenant_id == tenant_id, findings.c.external_id == external_id
    )
    found = await session.scalar(statement)
    return found is not None and found != other_than


async def update(
    session: AsyncSession, tenant_id: uuid.UUID, finding_id: uuid.UUID, values: dict[str, Any]
) -> Record:
    statement = (
        sa.update(findings)
        .where(findings.c.tenant_id == tenant_id, findings.c.id == finding_id)
        .values(**values, updated_at=sa.func.now())
        .returning(*COLUMNS)
    )
    row: Record = (await session.execute(statement)).one()
    return row


async def delete(session: AsyncSession, tenant_id: uuid.UUID, finding_id: uuid.UUID) -> None:
    await session.execute(
        sa.delete(findings).where(findings.c.tenant_id == tenant_id, findings.c.id == finding_id)
    )


_LIST_COLUMNS = ", ".join(c.name for c in COLUMNS)


async def list_page(
    session: AsyncSession,
    tenant_id: uuid.UUID,
    filters: FindingFilters,
    *,
    after: tuple[date, uuid.UUID] | None,
    limit: int,
) -> list[Any]:
    """Newest observation first; keyset on (observed_on, id) descending.

    The hottest read of the API, so it goes straight to the driver (asyncpg Records).
    """
    conditions = ["tenant_id = $1"]
    args: list[Any] = [tenant_id]

    def condition(template: str, value: Any) -> None:
        args.append(value)
        conditions.append(template.format(f"${len(args)}"))

    if filters.supplier_id is not None:
        condition("supplier_id = {}", filters.supplier_id)
    if filters.area is not None:
        condition("area = {}", filters.area)
    if filters.severity is not None:
        condition("severity = {}", filters.severity)
    if filters.status is not None:
        condition("status = {}", filters.status)
    if filters.observed_from is not None:
        condition("observed_on >= {}", filters.observed_from)
    if filters.observed_to is not None:
        condition("observed_on <= {}", filters.observed_to)
    if filters.updated_since is not None:
        condition("updated_at >= {}", filters.updated_since)
    if after is not None:
        args.extend(after)
        conditions.append(f"(observed_on, id) < (${len(args) - 1}, ${len(args)})")
    args.append(limit + 1)
    # Only fixed column names and $n placeholders are joined in; every value is a parameter.
    sql = (
        f"SELECT {_LIST_COLUMNS} FROM findings WHERE {' AND '.join(conditions)} "  # noqa: S608
        f"ORDER BY observed_on DESC, id DESC LIMIT ${len(args)}"
    )
    return await driver_fetch(session, sql, *args)
