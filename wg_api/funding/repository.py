"""Every funding query. RLS decides which rows a caller sees; these filter by initiative as well.

Other tenants' money reaches a member who is not a facilitator only through the database
functions `initiative_funding` and `initiative_funder_lines`, which apply the three-funder rule.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import msgspec
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

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
from wg_api.funding.models import tenant_directory as tenants
from wg_api.platform.database import begun_driver, driver_fetch
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


async def insert_initiative(session: AsyncConnection, values: dict[str, Any]) -> uuid.UUID:
    initiative_id = uuid.uuid4()
    await session.execute(sa.insert(initiatives).values(id=initiative_id, **values))
    return initiative_id


async def get_initiative(
    session: AsyncConnection, initiative_id: uuid.UUID, *, with_funding: bool = True
) -> Record | None:
    base = _with_funding() if with_funding else sa.select(*initiatives.c)
    statement = base.where(initiatives.c.id == initiative_id)
    row: Record | None = (await session.execute(statement)).one_or_none()
    return row


async def lock_initiative_as_facilitator(
    session: AsyncConnection, initiative_id: uuid.UUID
) -> bool:
    """Lock the row for a change; only a facilitator's lock finds it (RLS)."""
    found = await session.scalar(
        sa.select(initiatives.c.id).where(initiatives.c.id == initiative_id).with_for_update()
    )
    return found is not None


async def lock_initiative(session: AsyncConnection, initiative_id: uuid.UUID) -> str | None:
    """Lock the initiative's row (any tenant that may pledge); its status, or None."""
    status: str | None = await session.scalar(sa.select(sa.func.lock_initiative(initiative_id)))
    return status


async def mark_funded(session: AsyncConnection, initiative_id: uuid.UUID) -> bool:
    """Move `open -> funded` when committed pledges reach the target; True if it moved now."""
    return bool(await session.scalar(sa.select(sa.func.initiative_mark_funded(initiative_id))))


async def list_initiatives(
    session: AsyncConnection,
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
    session: AsyncConnection, initiative_id: uuid.UUID, values: dict[str, Any]
) -> None:
    await session.execute(
        sa.update(initiatives)
        .where(initiatives.c.id == initiative_id)
        .values(**values, updated_at=sa.func.now())
    )


async def insert_pledge(session: AsyncConnection, values: dict[str, Any]) -> uuid.UUID:
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
    session: AsyncConnection, pledge_id: uuid.UUID, *, for_update: bool = False
) -> Record | None:
    statement = _pledge_select().where(pledges.c.id == pledge_id)
    if for_update:
        statement = statement.with_for_update(of=pledges)
    row: Record | None = (await session.execute(statement)).one_or_none()
    return row


async def list_pledges(
    session: AsyncConnection,
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
    session: AsyncConnection, pledge_id: uuid.UUID, values: dict[str, Any]
) -> None:
    await session.execute(
        sa.update(pledges)
        .where(pledges.c.id == pledge_id)
        .values(**values, updated_at=sa.func.now())
    )


async def insert_payment(session: AsyncConnection, values: dict[str, Any]) -> Record:
    row: Record = (
        await session.execute(sa.insert(payments).values(**values).returning(*payments.c))
    ).one()
    return row


async def insert_expense(session: AsyncConnection, values: dict[str, Any]) -> Record:
    row: Record = (
        await session.execute(sa.insert(expenses).values(**values).returning(*expenses.c))
    ).one()
    return row


_reversal = ledger_bookings.alias("reversal")
_expense_booking = ledger_bookings.alias("expense_booking")
EXPENSE_COLUMNS = (
    *expenses.c,
    _expense_booking.c.id.label("booking_id"),
    _expense_booking.c.description.label("booking_description"),
    sa.exists().where(_reversal.c.reverses == _expense_booking.c.id).label("reversed"),
)


def _expense_select() -> sa.Select[Any]:
    return sa.select(*EXPENSE_COLUMNS).select_from(
        expenses.join(_expense_booking, _expense_booking.c.expense_id == expenses.c.id)
    )


async def get_expense(session: AsyncConnection, expense_id: uuid.UUID) -> Record | None:
    row: Record | None = (
        await session.execute(_expense_select().where(expenses.c.id == expense_id))
    ).one_or_none()
    return row


async def list_expenses(
    session: AsyncConnection,
    initiative_id: uuid.UUID,
    *,
    after: tuple[datetime, uuid.UUID] | None,
    limit: int,
) -> list[Record]:
    statement = (
        _expense_select()
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
    session: AsyncConnection,
    booking: dict[str, Any],
    currency: str,
    entries: Sequence[tuple[str, int, int]],
) -> Record:
    """One booking and its entries, (account, debit, credit) in `currency`; the database refuses
    the transaction at commit unless debits equal credits. Answers the booking's id and time."""
    booking_id = uuid.uuid4()
    booked: Record = (
        await session.execute(
            sa.insert(ledger_bookings)
            .values(id=booking_id, **booking)
            .returning(ledger_bookings.c.id, ledger_bookings.c.booked_at)
        )
    ).one()
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
    return booked


@dataclass(frozen=True)
class FundersLines:
    """A restricted reader's funders lines, merged into its statement by time."""

    ids: list[uuid.UUID]
    booked_at: list[datetime]
    amounts: list[int]
    descriptions: list[str]


# The statement, one rule for JSON and CSV: the cash side of each visible booking (in: debit,
# out: credit) and the funders lines, oldest first (a funders line before a booking at the same
# moment), with the running balance; a restricted reader ($2) sees no funders' bookings and no
# balance before its first funders line.
_STATEMENT = """
    WITH booked AS (
        SELECT b.id, b.booked_at, 1 AS place, b.seq, b.kind, b.description,
               e.debit - e.credit AS amount, b.tenant_id IS NOT NULL AS from_funder,
               b.original_amount, b.original_currency, b.fx_rate::text AS fx_rate
        FROM ledger_entries e
        JOIN ledger_bookings b ON b.id = e.booking_id
        WHERE e.initiative_id = $1 AND e.account = 'cash' AND b.initiative_id = $1
          AND (NOT $2 OR b.tenant_id IS NULL)
        UNION ALL
        SELECT f.id, f.booked_at, 0, 0, 'funders', f.description, f.amount, false,
               NULL, NULL, NULL
        FROM unnest($3::uuid[], $4::timestamptz[], $5::bigint[], $6::text[])
             AS f (id, booked_at, amount, description)
    ),
    running AS (
        SELECT booked.*,
               CASE WHEN NOT $2 OR count(*) FILTER (WHERE kind = 'funders') OVER w > 0
                    THEN sum(amount) OVER w END AS balance
        FROM booked
        WINDOW w AS (ORDER BY booked_at, place, seq ROWS UNBOUNDED PRECEDING)
    )
"""
# Constant strings joined; every value is a $n parameter.
_STATEMENT_ROWS = (
    _STATEMENT  # noqa: S608
    + """
    SELECT id, booked_at, kind, description, amount, original_amount, original_currency,
           fx_rate, balance::bigint AS balance
    FROM running ORDER BY booked_at, place, seq
"""
)
_STATEMENT_JSON = (
    _STATEMENT  # noqa: S608
    + """
    SELECT coalesce(json_agg(json_build_object(
               'id', id,
               'booked_at', (to_json(booked_at AT TIME ZONE 'UTC') #>> '{}') || 'Z',
               'kind', kind,
               'description', description,
               'amount', json_build_object('amount', amount, 'currency', $7::text),
               'original_amount', CASE WHEN original_amount IS NOT NULL THEN json_build_object(
                   'amount', original_amount, 'currency', original_currency) END,
               'fx_rate', fx_rate,
               'balance', CASE WHEN balance IS NOT NULL THEN json_build_object(
                   'amount', balance, 'currency', $7::text) END
           ) ORDER BY booked_at, place, seq), '[]')::text AS entries,
           coalesce(sum(amount) FILTER (WHERE from_funder), 0)::bigint AS paid,
           coalesce(sum(amount) FILTER (WHERE NOT from_funder AND kind <> 'funders'), 0)::bigint
               AS spent
    FROM running
"""
)


def _statement_args(
    initiative_id: uuid.UUID, restricted: bool, lines: FundersLines
) -> tuple[Any, ...]:
    return (
        initiative_id,
        restricted,
        lines.ids,
        lines.booked_at,
        lines.amounts,
        lines.descriptions,
    )


async def statement_json(
    session: AsyncConnection,
    initiative_id: uuid.UUID,
    currency: str,
    *,
    restricted: bool,
    lines: FundersLines,
) -> Any:
    """The entries as one JSON array built by PostgreSQL, with the sums of money in and out."""
    rows = await driver_fetch(
        session, _STATEMENT_JSON, *_statement_args(initiative_id, restricted, lines), currency
    )
    return rows[0]


async def stream_statement_rows(
    session: AsyncConnection,
    initiative_id: uuid.UUID,
    *,
    restricted: bool,
    lines: FundersLines,
    chunk: int = 500,
) -> AsyncIterator[Any]:
    """The entries through a server-side cursor, `chunk` at a time: constant memory."""
    driver = await begun_driver(session)
    async for row in driver.cursor(
        _STATEMENT_ROWS, *_statement_args(initiative_id, restricted, lines), prefetch=chunk
    ):
        yield row


async def funder_lines(session: AsyncConnection, initiative_id: uuid.UUID) -> list[Record]:
    """Months with payments from at least three tenants, the rest carried forward."""
    return list(
        (
            await session.execute(
                sa.text("SELECT booked_at, amount FROM initiative_funder_lines(:id)"),
                {"id": initiative_id},
            )
        ).all()
    )


async def insert_indicator(session: AsyncConnection, values: dict[str, Any]) -> Record:
    row: Record = (
        await session.execute(sa.insert(indicators).values(**values).returning(*indicators.c))
    ).one()
    return row


async def get_indicator(session: AsyncConnection, indicator_id: uuid.UUID) -> Record | None:
    return (
        await session.execute(sa.select(*indicators.c).where(indicators.c.id == indicator_id))
    ).one_or_none()


async def list_indicators(
    session: AsyncConnection,
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


async def insert_result(session: AsyncConnection, values: dict[str, Any]) -> Record:
    row: Record = (
        await session.execute(
            sa.insert(indicator_results).values(**values).returning(*indicator_results.c)
        )
    ).one()
    return row


async def results_of(session: AsyncConnection, indicator_ids: Sequence[uuid.UUID]) -> list[Record]:
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
    session: AsyncConnection, pledge_id: uuid.UUID, type: str, data: msgspec.Struct | dict[str, Any]
) -> None:
    """`type` into the feeds of the pledging tenant and the group's facilitators only."""
    await session.execute(
        sa.text("SELECT publish_pledge_event(:pledge_id, :type, CAST(:data AS jsonb))"),
        {"pledge_id": pledge_id, "type": type, "data": msgspec.json.encode(data).decode()},
    )
