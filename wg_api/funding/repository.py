"""Every funding query. RLS decides which rows a caller sees; these filter by initiative as well.

Other tenants' money reaches a member who is not a facilitator only through the database
functions `initiative_funding` and `initiative_funder_lines`, which apply the three-funder rule.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Sequence
from datetime import datetime
from typing import Any

import msgspec
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from wg_api.funding.models import (
    expenses,
    indicator_results,
    indicators,
    initiatives,
    ledger_bookings,
    ledger_entries,
    payments,
    pledges,
)
from wg_api.identity.models import tenants
from wg_api.platform.database import driver_fetch
from wg_api.platform.models import Record

FUNDING = (
    sa.func.initiative_funding(initiatives.c.id)
    .table_valued(
        sa.column("committed", sa.BigInteger),
        sa.column("funders", sa.Integer),
        sa.column("paid", sa.BigInteger),
        sa.column("spent", sa.BigInteger),
        joins_implicitly=True,
    )
    .lateral("funding")
)
INITIATIVE_COLUMNS = (
    *initiatives.c,
    FUNDING.c.committed,
    FUNDING.c.funders,
    FUNDING.c.paid,
    FUNDING.c.spent,
)
PLEDGE_COLUMNS = (
    *pledges.c,
    tenants.c.slug.label("tenant_slug"),
    tenants.c.name.label("tenant_name"),
    initiatives.c.currency.label("initiative_currency"),
)


def _with_funding() -> sa.Select[Any]:
    return sa.select(*INITIATIVE_COLUMNS).select_from(
        initiatives.join(FUNDING, sa.true(), isouter=True)
    )


async def insert_initiative(session: AsyncSession, values: dict[str, Any]) -> uuid.UUID:
    initiative_id = uuid.uuid4()
    await session.execute(sa.insert(initiatives).values(id=initiative_id, **values))
    return initiative_id


async def get_initiative(
    session: AsyncSession, initiative_id: uuid.UUID, *, with_funding: bool = True
) -> Record | None:
    base = _with_funding() if with_funding else sa.select(*initiatives.c)
    statement = base.where(initiatives.c.id == initiative_id)
    row: Record | None = (await session.execute(statement)).one_or_none()
    return row


async def lock_initiative_as_facilitator(session: AsyncSession, initiative_id: uuid.UUID) -> bool:
    """Lock the row for a change; only a facilitator's lock finds it (RLS)."""
    found = await session.scalar(
        sa.select(initiatives.c.id).where(initiatives.c.id == initiative_id).with_for_update()
    )
    return found is not None


async def lock_initiative(session: AsyncSession, initiative_id: uuid.UUID) -> str | None:
    """Lock the initiative's row (any tenant that may pledge); its status, or None."""
    status: str | None = await session.scalar(sa.select(sa.func.lock_initiative(initiative_id)))
    return status


async def mark_funded(session: AsyncSession, initiative_id: uuid.UUID) -> bool:
    """Move `open -> funded` when committed pledges reach the target; True if it moved now."""
    return bool(await session.scalar(sa.select(sa.func.initiative_mark_funded(initiative_id))))


async def list_initiatives(
    session: AsyncSession,
    group_id: uuid.UUID,
    *,
    after: tuple[datetime, uuid.UUID] | None,
    limit: int,
) -> list[Record]:
    statement = (
        _with_funding()
        .where(initiatives.c.working_group_id == group_id)
        .order_by(initiatives.c.created_at.desc(), initiatives.c.id.desc())
        .limit(limit)
    )
    if after is not None:
        statement = statement.where(
            sa.tuple_(initiatives.c.created_at, initiatives.c.id) < sa.tuple_(*after)
        )
    return list((await session.execute(statement)).all())


async def update_initiative(
    session: AsyncSession, initiative_id: uuid.UUID, values: dict[str, Any]
) -> None:
    await session.execute(
        sa.update(initiatives)
        .where(initiatives.c.id == initiative_id)
        .values(**values, updated_at=sa.func.now())
    )


async def insert_pledge(session: AsyncSession, values: dict[str, Any]) -> uuid.UUID:
    pledge_id = uuid.uuid4()
    await session.execute(sa.insert(pledges).values(id=pledge_id, **values))
    return pledge_id


def _pledge_select() -> sa.Select[Any]:
    return sa.select(*PLEDGE_COLUMNS).select_from(
        pledges.join(tenants, tenants.c.id == pledges.c.tenant_id).join(
            initiatives, initiatives.c.id == pledges.c.initiative_id
        )
    )


async def get_pledge(
    session: AsyncSession, pledge_id: uuid.UUID, *, for_update: bool = False
) -> Record | None:
    statement = _pledge_select().where(pledges.c.id == pledge_id)
    if for_update:
        statement = statement.with_for_update(of=pledges)
    row: Record | None = (await session.execute(statement)).one_or_none()
    return row


async def list_pledges(
    session: AsyncSession,
    initiative_id: uuid.UUID,
    *,
    only_tenant: uuid.UUID | None,
    after: tuple[datetime, uuid.UUID] | None,
    limit: int,
) -> list[Record]:
    statement = (
        _pledge_select()
        .where(pledges.c.initiative_id == initiative_id)
        .order_by(pledges.c.created_at, pledges.c.id)
        .limit(limit)
    )
    if only_tenant is not None:
        statement = statement.where(pledges.c.tenant_id == only_tenant)
    if after is not None:
        statement = statement.where(
            sa.tuple_(pledges.c.created_at, pledges.c.id) > sa.tuple_(*after)
        )
    return list((await session.execute(statement)).all())


async def update_pledge(
    session: AsyncSession, pledge_id: uuid.UUID, values: dict[str, Any]
) -> None:
    await session.execute(
        sa.update(pledges)
        .where(pledges.c.id == pledge_id)
        .values(**values, updated_at=sa.func.now())
    )


async def insert_payment(session: AsyncSession, values: dict[str, Any]) -> Record:
    row: Record = (
        await session.execute(sa.insert(payments).values(**values).returning(*payments.c))
    ).one()
    return row


async def insert_expense(session: AsyncSession, values: dict[str, Any]) -> Record:
    row: Record = (
        await session.execute(sa.insert(expenses).values(**values).returning(*expenses.c))
    ).one()
    return row


async def list_expenses(
    session: AsyncSession,
    initiative_id: uuid.UUID,
    *,
    after: tuple[datetime, uuid.UUID] | None,
    limit: int,
) -> list[Record]:
    statement = (
        sa.select(*expenses.c)
        .where(expenses.c.initiative_id == initiative_id)
        .order_by(expenses.c.created_at, expenses.c.id)
        .limit(limit)
    )
    if after is not None:
        statement = statement.where(
            sa.tuple_(expenses.c.created_at, expenses.c.id) > sa.tuple_(*after)
        )
    return list((await session.execute(statement)).all())


async def book(
    session: AsyncSession,
    booking: dict[str, Any],
    currency: str,
    entries: Sequence[tuple[str, int, int]],
) -> None:
    """One booking and its entries, (account, debit, credit) in `currency`; the database refuses
    the transaction at commit unless debits equal credits."""
    booking_id = uuid.uuid4()
    await session.execute(sa.insert(ledger_bookings).values(id=booking_id, **booking))
    await session.execute(
        sa.insert(ledger_entries),
        [
            {
                "booking_id": booking_id,
                "working_group_id": booking["working_group_id"],
                "initiative_id": booking["initiative_id"],
                "tenant_id": booking.get("tenant_id"),
                "account": account,
                "debit": debit,
                "credit": credit,
                "currency": currency,
            }
            for account, debit, credit in entries
        ],
    )


# The statement's bookings with their cash movement (debit in, credit out), oldest first.
_STATEMENT = """
    SELECT b.id, b.booked_at, b.kind, b.description, e.debit - e.credit AS amount,
           b.tenant_id IS NOT NULL AS from_funder, b.original_amount, b.original_currency, b.fx_rate::text AS fx_rate
    FROM ledger_entries e
    JOIN ledger_bookings b ON b.id = e.booking_id
    WHERE e.initiative_id = $1 AND e.account = 'cash' AND b.initiative_id = $1 {only_expenses}
    ORDER BY b.booked_at, b.seq
"""


def _statement_sql(without_funders: bool) -> str:
    return _STATEMENT.format(only_expenses="AND b.tenant_id IS NULL" if without_funders else "")


async def statement_rows(
    session: AsyncSession, initiative_id: uuid.UUID, *, without_funders: bool
) -> list[Any]:
    """Every visible booking; the hot path goes straight to the driver (asyncpg Records)."""
    return await driver_fetch(session, _statement_sql(without_funders), initiative_id)


async def stream_statement_rows(
    session: AsyncSession, initiative_id: uuid.UUID, *, without_funders: bool, chunk: int = 500
) -> AsyncIterator[Any]:
    """The same rows through a server-side cursor, `chunk` at a time: constant memory."""
    connection = await session.connection()
    raw = await connection.get_raw_connection()
    driver = raw.driver_connection
    assert driver is not None
    async for row in driver.cursor(_statement_sql(without_funders), initiative_id, prefetch=chunk):
        yield row


async def funder_lines(session: AsyncSession, initiative_id: uuid.UUID) -> list[Record]:
    """Months with payments from at least three tenants, the rest carried forward."""
    return list(
        (
            await session.execute(
                sa.text("SELECT booked_at, amount FROM initiative_funder_lines(:id)"),
                {"id": initiative_id},
            )
        ).all()
    )


async def insert_indicator(session: AsyncSession, values: dict[str, Any]) -> Record:
    row: Record = (
        await session.execute(sa.insert(indicators).values(**values).returning(*indicators.c))
    ).one()
    return row


async def get_indicator(session: AsyncSession, indicator_id: uuid.UUID) -> Record | None:
    return (
        await session.execute(sa.select(*indicators.c).where(indicators.c.id == indicator_id))
    ).one_or_none()


async def list_indicators(
    session: AsyncSession,
    initiative_id: uuid.UUID,
    *,
    after: tuple[datetime, uuid.UUID] | None,
    limit: int,
) -> list[Record]:
    statement = (
        sa.select(*indicators.c)
        .where(indicators.c.initiative_id == initiative_id)
        .order_by(indicators.c.created_at, indicators.c.id)
        .limit(limit)
    )
    if after is not None:
        statement = statement.where(
            sa.tuple_(indicators.c.created_at, indicators.c.id) > sa.tuple_(*after)
        )
    return list((await session.execute(statement)).all())


async def insert_result(session: AsyncSession, values: dict[str, Any]) -> Record:
    row: Record = (
        await session.execute(
            sa.insert(indicator_results).values(**values).returning(*indicator_results.c)
        )
    ).one()
    return row


async def results_of(session: AsyncSession, indicator_ids: Sequence[uuid.UUID]) -> list[Record]:
    if not indicator_ids:
        return []
    return list(
        (
            await session.execute(
                sa.select(*indicator_results.c)
                .where(indicator_results.c.indicator_id.in_(indicator_ids))
                .order_by(indicator_results.c.period_start, indicator_results.c.id)
            )
        ).all()
    )


async def publish_pledge_event(
    session: AsyncSession, pledge_id: uuid.UUID, type: str, data: msgspec.Struct | dict[str, Any]
) -> None:
    """`type` into the feeds of the pledging tenant and the group's facilitators only."""
    await session.execute(
        sa.text("SELECT publish_pledge_event(:pledge_id, :type, CAST(:data AS jsonb))"),
        {"pledge_id": pledge_id, "type": type, "data": msgspec.json.encode(data).decode()},
    )
