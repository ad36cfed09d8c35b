"""Every findings query. All of them filter by tenant as well; RLS is the net under that."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import insert as insert_on_conflict
from sqlalchemy.ext.asyncio import AsyncSession

from wg_api.findings.models import findings
from wg_api.platform.models import Record

COLUMNS = tuple(c for c in findings.c if c.name != "tenant_id")


@dataclass(frozen=True)
class FindingFilters:
    supplier_id: uuid.UUID | None = None
    area: str | None = None
    severity: str | None = None
    status: str | None = None
    observed_from: date | None = None
    observed_to: date | None = None
    updated_since: datetime | None = None


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


async def list_page(
    session: AsyncSession,
    tenant_id: uuid.UUID,
    filters: FindingFilters,
    *,
    after: tuple[date, uuid.UUID] | None,
    limit: int,
) -> list[Record]:
    """Newest observation first; keyset on (observed_on, id) descending."""
    statement = sa.select(*COLUMNS).where(findings.c.tenant_id == tenant_id)
    if filters.supplier_id is not None:
        statement = statement.where(findings.c.supplier_id == filters.supplier_id)
    if filters.area is not None:
        statement = statement.where(findings.c.area == filters.area)
    if filters.severity is not None:
        statement = statement.where(findings.c.severity == filters.severity)
    if filters.status is not None:
        statement = statement.where(findings.c.status == filters.status)
    if filters.observed_from is not None:
        statement = statement.where(findings.c.observed_on >= filters.observed_from)
    if filters.observed_to is not None:
        statement = statement.where(findings.c.observed_on <= filters.observed_to)
    if filters.updated_since is not None:
        statement = statement.where(findings.c.updated_at >= filters.updated_since)
    if after is not None:
        statement = statement.where(
            sa.tuple_(findings.c.observed_on, findings.c.id) < sa.tuple_(after[0], after[1])
        )
    statement = statement.order_by(findings.c.observed_on.desc(), findings.c.id.desc())
    return list((await session.execute(statement.limit(limit + 1))).all())
