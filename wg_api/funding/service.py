"""Funding rules: the initiative's states, pledges and their commitments, payments and expenses
into the ledger, the statement, the cost split, outcome indicators, and who learns what.

Money is whole minor units everywhere; a rate is a Decimal kept with the record that used it.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import msgspec
from sqlalchemy.ext.asyncio import AsyncConnection

from wg_api.funding import money, repository
from wg_api.funding.schemas import (
    FEWER_THAN_3,
    CostSplit,
    CostSplitIn,
    Expense,
    ExpenseIn,
    Funding,
    Indicator,
    IndicatorIn,
    Initiative,
    InitiativeIn,
    InitiativePatch,
    Money,
    MoneyIn,
    Payment,
    PaymentIn,
    Pledge,
    PledgeIn,
    Result,
    ResultIn,
    Reversal,
    Share,
    StatementTotals,
)
from wg_api.platform.errors import Conflict, FieldError, Forbidden, NotFound, ValidationFailed
from wg_api.platform.models import Record
from wg_api.platform.pagination import Page, identifier, keyset, moment, paginate
from wg_api.working_groups import service as working_groups
from wg_api.working_groups.schemas import TenantRef

INITIATIVE_NOT_FOUND = "No such initiative."
PLEDGE_NOT_FOUND = "No such pledge."
INDICATOR_NOT_FOUND = "No such indicator."
EXPENSE_NOT_FOUND = "No such expense."
FACILITATORS_ONLY = "Only the group's facilitators may do this."
FUNDER_ROLES = ("facilitator", "member")
COMMITTED = ("committed", "partially_paid", "fulfilled")
# The moves PATCH may make; `open -> funded` happens by itself, `cancelled` from any live state.
MOVES = {("draft", "open"), ("funded", "active"), ("active", "completed")}
CANCELLABLE = ("draft", "open", "funded", "active")
PLEDGING = ("open", "funded")
BOOKING = ("open", "funded", "active")
# Funders lines get stable ids that carry nothing but the initiative and the month.
FUNDERS_LINE_NAMESPACE = uuid.UUID("5d0c6e3e-6a44-4b8e-9d6b-5f4a1d0b7c21")


class InvalidTransition(Conflict):
    kind = "invalid-transition"
    title = "Invalid transition"
    description = (
        "The resource is not in a state that allows this: see the state machine of initiatives "
        "and pledges (an initiative becomes funded by itself; a commitment binds once funded)."
    )


@dataclass(frozen=True)
class Seat:
    """The caller at an initiative: its membership of the group and the initiative's row."""

    member: working_groups.Membership
    initiative: Record

    @property
    def restricted(self) -> bool:
        """Whether other tenants' money reaches this caller only as three-funder aggregates."""
        return not self.member.is_facilitator and self.initiative.pledge_visibility == "totals_only"


def _money(amount: int, currency: str) -> Money:
    return Money(amount=amount, currency=currency)


def _rate_text(rate: Decimal | str | None) -> str | None:
    return None if rate is None else str(rate)


def initiative_out(row: Record) -> Initiative:
    currency = row.currency
    spent = row.spent or 0
    committed = row.committed
    paid = row.paid
    funding = Funding(
        target=_money(row.funding_target, currency),
        committed=None if committed is None else _money(committed, currency),
        paid=None if paid is None else _money(paid, currency),
        spent=_money(spent, currency),
        balance=None if paid is None else _money(paid + spent, currency),
        funders=FEWER_THAN_3 if row.funders is None else row.funders,
        percent_committed=None if committed is None else committed * 100 // row.funding_target,
    )
    return Initiative(
        id=row.id,
        working_group_id=row.working_group_id,
        title=row.title,
        description=row.description,
        currency=currency,
        budget=_money(row.budget, currency),
        funding_target=_money(row.funding_target, currency),
        starts_on=row.starts_on,
        ends_on=row.ends_on,
        pledge_visibility=row.pledge_visibility,
        status=row.status,
        funding=funding,
        funded_at=row.funded_at,
        created_at=row.created_at,
        updated_at=row.updated_at,
    )


def pledge_out(row: Record, initiative_currency: str) -> Pledge:
    return Pledge(
        id=row.id,
        initiative_id=row.initiative_id,
        tenant=TenantRef(id=row.tenant_id, slug=row.tenant_slug, name=row.tenant_name),
        amount=_money(row.amount, row.currency),
        fx_rate=_rate_text(row.fx_rate),
        amount_in_initiative_currency=_money(
            row.amount_in_initiative_currency, initiative_currency
        ),
        status=row.status,
        paid=_money(row.paid, row.currency),
        note=row.note,
        created_at=row.created_at,
        updated_at=row.updated_at,
    )


def _payment_out(row: Record, initiative_currency: str) -> Payment:
    return Payment(
        id=row.id,
        pledge_id=row.pledge_id,
        amount=_money(row.amount, row.currency),
        fx_rate=_rate_text(row.fx_rate),
        amount_in_initiative_currency=_money(
            row.amount_in_initiative_currency, initiative_currency
        ),
        received_on=row.received_on,
        reference=row.reference,
        created_at=row.created_at,
    )


def _expense_out(row: Record, initiative_currency: str) -> Expense:
    return Expense(
        id=row.id,
        initiative_id=row.initiative_id,
        description=row.description,
        category=row.category,
        amount=_money(row.amount, row.currency),
        fx_rate=_rate_text(row.fx_rate),
        amount_in_initiative_currency=_money(
            row.amount_in_initiative_currency, initiative_currency
        ),
        incurred_on=row.incurred_on,
        reversed=row.reversed,
        created_at=row.created_at,
    )


def _initiative_event(row: Record, **extra: Any) -> dict[str, Any]:
    """What every member learns of an initiative: never an amount of anyone's money."""
    return {
        "initiative": {
            "id": str(row.id),
            "working_group_id": str(row.working_group_id),
            "title": row.title,
            "status": row.status,
            "funding_target": {"amount": row.funding_target, "currency": row.currency},
        },
        **extra,
    }


async def _seat(
    session: AsyncConnection,
    tenant_id: uuid.UUID,
    initiative_id: uuid.UUID,
    *,
    with_funding: bool = False,
) -> Seat:
    """The initiative as the caller may see it (its funding block only when asked: that is
    the aggregate work), or 404 exactly as for a random id."""
    row = await repository.get_initiative(session, initiative_id, with_funding=with_funding)
    if row is None:
        raise NotFound(INITIATIVE_NOT_FOUND)
    member = await working_groups.membership(session, row.working_group_id, tenant_id)
    if member is None:
        raise NotFound(INITIATIVE_NOT_FOUND)
    return Seat(member, row)


def _require_facilitator(member: working_groups.Membership) -> None:
    if not member.is_facilitator:
        raise Forbidden(FACILITATORS_ONLY)


def _currency_errors(field: str, currency: str) -> list[FieldError]:
    if money.is_currency(currency):
        return []
    return [FieldError(field, "is not an ISO 4217 currency with minor units (funds codes neither)")]


def _conversion(
    field: str, amount: MoneyIn, rate_text: str | None, into: str
) -> tuple[int, Decimal | None]:
    """The amount in `into`'s minor units and the rate used; 422 naming the field at fault."""
    errors = _currency_errors(f"{field}.currency", amount.currency)
    if errors:
        raise ValidationFailed("The amount is not valid.", errors=errors)
    if amount.currency == into:
        if rate_text is not None:
            raise ValidationFailed(
                "No fx_rate for an amount in the initiative's currency.",
                errors=[FieldError("fx_rate", f"must be left out: the amount is in {into}")],
            )
        return amount.amount, None
    if rate_text is None:
        raise ValidationFailed(
            "An fx_rate is needed for an amount in another currency.",
            errors=[
                FieldError("fx_rate", f"is required: {into} per one {amount.currency}, a string")
            ],
        )
    if (error := money.rate_error(rate_text)) is not None:
        raise ValidationFailed("The fx_rate is not valid.", errors=[FieldError("fx_rate", error)])
    rate = money.parse_rate(rate_text)
    converted = money.convert(amount.amount, amount.currency, rate, into)
    return _checked_conversion(field, converted, into), rate


def _checked_conversion(field: str, converted: int, into: str) -> int:
    if converted <= 0:
        raise ValidationFailed(
            "The amount is worth nothing in the initiative's currency.",
            errors=[FieldError(f"{field}.amount", f"converts to 0 {into}")],
        )
    if converted >= money.AMOUNT_LIMIT:
        raise ValidationFailed(
            "The amount is too large in the initiative's currency.",
            errors=[FieldError("fx_rate", f"converts to 10^15 {into} minor units or more")],
        )
    return converted


def _initiative_errors(
    title: str, currency: str, budget: MoneyIn, target: MoneyIn | None, starts: Any, ends: Any
) -> list[FieldError]:
    errors = _currency_errors("currency", currency)
    if not title.strip():
        errors.append(FieldError("title", "must not be blank"))
    if budget.currency != currency:
        errors.append(
            FieldError("budget.currency", f"must be the initiative's currency, {currency}")
        )
    if target is not None and target.currency != currency:
        errors.append(
            FieldError("funding_target.currency", f"must be the initiative's currency, {currency}")
        )
    if ends < starts:
        errors.append(FieldError("ends_on", "must not be before starts_on"))
    return errors


async def create_initiative(
    session: AsyncConnection, tenant_id: uuid.UUID, group_id: uuid.UUID, data: InitiativeIn
) -> Initiative:
    member = await working_groups.require_member(session, group_id, tenant_id)
    _require_facilitator(member)
    target = data.funding_target or data.budget
    errors = _initiative_errors(
        data.title, data.currency, data.budget, target, data.starts_on, data.ends_on
    )
    if errors:
        raise ValidationFailed("The initiative is not valid.", errors=errors)
    initiative_id = await repository.insert_initiative(
        session,
        {
            "working_group_id": group_id,
            "title": data.title.strip(),
            "description": data.description,
            "currency": data.currency,
            "budget": data.budget.amount,
            "funding_target": target.amount,
            "starts_on": data.starts_on,
            "ends_on": data.ends_on,
            "pledge_visibility": data.pledge_visibility,
        },
    )
    return await get_initiative(session, tenant_id, initiative_id)


async def get_initiative(
    session: AsyncConnection, tenant_id: uuid.UUID, initiative_id: uuid.UUID
) -> Initiative:
    seat = await _seat(session, tenant_id, initiative_id, with_funding=True)
    return initiative_out(seat.initiative)


async def list_initiatives(
    session: AsyncConnection,
    tenant_id: uuid.UUID,
    group_id: uuid.UUID,
    *,
    after: tuple[Any, ...] | None,
    limit: int,
) -> Page[Initiative]:
    await working_groups.require_member(session, group_id, tenant_id)
    rows = await repository.list_initiatives(
        session, group_id, after=keyset(after, moment, identifier), limit=limit + 1
    )
    return paginate(
        [initiative_out(r) for r in rows], limit, lambda i: [i.created_at.isoformat(), str(i.id)]
    )


async def initiative_for_change(
    session: AsyncConnection, tenant_id: uuid.UUID, initiative_id: uuid.UUID
) -> Initiative:
    """The initiative, locked against concurrent changes, for a facilitator (else 403)."""
    seat = await _seat(session, tenant_id, initiative_id)
    _require_facilitator(seat.member)
    await repository.lock_initiative_as_facilitator(session, initiative_id)
    return await get_initiative(session, tenant_id, initiative_id)


async def change_initiative(
    session: AsyncConnection, tenant_id: uuid.UUID, current: Initiative, patch: InitiativePatch
) -> Initiative:
    fields = {
        name: getattr(patch, name)
        for name in patch.__struct_fields__
        if name != "status" and getattr(patch, name) is not msgspec.UNSET
    }
    status = None if patch.status is msgspec.UNSET else patch.status
    if fields and current.status != "draft":
        raise InvalidTransition(
            f"Only a draft's fields change; this initiative is {current.status}."
        )
    values: dict[str, Any] = {}
    if fields:
        currency = fields.get("currency", current.currency)
        budget = fields.get("budget") or MoneyIn(current.budget.amount, current.budget.currency)
        target = fields.get("funding_target") or MoneyIn(
            current.funding_target.amount, current.funding_target.currency
        )
        title = fields.get("title", current.title)
        starts, ends = (
            fields.get("starts_on", current.starts_on),
            fields.get("ends_on", current.ends_on),
        )
        errors = _initiative_errors(title, currency, budget, target, starts, ends)
        if errors:
            raise ValidationFailed("The initiative is not valid.", errors=errors)
        values = {
            "title": title.strip(),
            "currency": currency,
            "budget": budget.amount,
            "funding_target": target.amount,
            "starts_on": starts,
            "ends_on": ends,
            "pledge_visibility": fields.get("pledge_visibility", current.pledge_visibility),
            "description": fields.get("description", current.description),
        }
    if status is not None and status != current.status:
        if (current.status, status) not in MOVES and not (
            status == "cancelled" and current.status in CANCELLABLE
        ):
            raise InvalidTransition(
                f"An initiative does not move from {current.status} to {status}"
                + (" by PATCH: it becomes funded by itself." if status == "funded" else ".")
            )
        values["status"] = status
    if not values:
        return current
    await repository.update_initiative(session, current.id, values)
    changed = await get_initiative(session, tenant_id, current.id)
    if "status" in values:
        event = {"open": "opened", "completed": "completed", "cancelled": "cancelled"}.get(
            status or ""
        )
        if event is not None:
            await _publish_initiative_event(
                session, current.id, f"initiative.{event}", current.status
            )
    return changed


async def _publish_initiative_event(
    session: AsyncConnection, initiative_id: uuid.UUID, type: str, previous: str
) -> None:
    row = await repository.get_initiative(session, initiative_id, with_funding=False)
    assert row is not None
    await working_groups.publish_to_group(
        session,
        row.working_group_id,
        type,
        _initiative_event(row, previous_status=previous),
    )


async def create_pledge(
    session: AsyncConnection, tenant_id: uuid.UUID, initiative_id: uuid.UUID, data: PledgeIn
) -> Pledge:
    seat = await _seat(session, tenant_id, initiative_id)
    if seat.member.role not in FUNDER_ROLES:
        raise Forbidden("Observers do not pledge; members and facilitators do.")
    initiative = seat.initiative
    if initiative.status not in PLEDGING:
        raise InvalidTransition(
            f"Pledges are taken while open or funded; this is {initiative.status}."
        )
    converted, rate = _conversion("amount", data.amount, data.fx_rate, initiative.currency)
    pledge_id = await repository.insert_pledge(
        session,
        {
            "tenant_id": tenant_id,
            "working_group_id": initiative.working_group_id,
            "initiative_id": initiative.id,
            "amount": data.amount.amount,
            "currency": data.amount.currency,
            "fx_rate": rate,
            "amount_in_initiative_currency": converted,
            "note": data.note,
        },
    )
    return await get_pledge(session, tenant_id, pledge_id)


async def _pledge_seat(
    session: AsyncConnection,
    tenant_id: uuid.UUID,
    pledge_id: uuid.UUID,
    *,
    for_update: bool = False,
) -> tuple[Record, working_groups.Membership]:
    row = await repository.get_pledge(session, pledge_id, for_update=for_update)
    if row is None:
        raise NotFound(PLEDGE_NOT_FOUND)
    member = await working_groups.membership(session, row.working_group_id, tenant_id)
    if member is None:
        raise NotFound(PLEDGE_NOT_FOUND)
    return row, member


async def get_pledge(
    session: AsyncConnection, tenant_id: uuid.UUID, pledge_id: uuid.UUID
) -> Pledge:
    row, _ = await _pledge_seat(session, tenant_id, pledge_id)
    return pledge_out(row, row.initiative_currency)


async def list_pledges(
    session: AsyncConnection,
    tenant_id: uuid.UUID,
    initiative_id: uuid.UUID,
    *,
    after: tuple[Any, ...] | None,
    limit: int,
) -> Page[Pledge]:
    seat = await _seat(session, tenant_id, initiative_id)
    rows = await repository.list_pledges(
        session,
        initiative_id,
        only_tenant=tenant_id if seat.restricted else None,
        after=keyset(after, moment, identifier),
        limit=limit + 1,
    )
    return paginate(
        [pledge_out(r, seat.initiative.currency) for r in rows],
        limit,
        lambda p: [p.created_at.isoformat(), str(p.id)],
    )


async def _own_pledge_locked(
    session: AsyncConnection, tenant_id: uuid.UUID, pledge_id: uuid.UUID
) -> tuple[Record, str]:
    """The caller's own pledge and its initiative's status, the initiative's row locked first
    (so commitments serialise on it and the funded move is decided once)."""
    row, _ = await _pledge_seat(session, tenant_id, pledge_id)
    if row.tenant_id != tenant_id:
        raise Forbidden("Only the pledging tenant commits or withdraws its pledge.")
    status = await repository.lock_initiative(session, row.initiative_id)
    if status is None:
        raise Forbidden("Only members and facilitators of the group pledge.")
    locked, _ = await _pledge_seat(session, tenant_id, pledge_id, for_update=True)
    return locked, status


async def commit_pledge(
    session: AsyncConnection, tenant_id: uuid.UUID, pledge_id: uuid.UUID
) -> Pledge:
    row, initiative_status = await _own_pledge_locked(session, tenant_id, pledge_id)
    if row.status != "offered":
        raise InvalidTransition(f"Only an offered pledge is committed; this one is {row.status}.")
    if initiative_status not in PLEDGING:
        raise InvalidTransition(f"The initiative is {initiative_status}: it takes no commitments.")
    await repository.update_pledge(session, pledge_id, {"status": "committed"})
    pledge = await get_pledge(session, tenant_id, pledge_id)
    await repository.publish_pledge_event(session, pledge_id, "pledge.committed", pledge)
    if await repository.mark_funded(session, row.initiative_id):
        await _publish_initiative_event(session, row.initiative_id, "initiative.funded", "open")
    return pledge


async def withdraw_pledge(
    session: AsyncConnection, tenant_id: uuid.UUID, pledge_id: uuid.UUID
) -> Pledge:
    row, initiative_status = await _own_pledge_locked(session, tenant_id, pledge_id)
    unpaid_while_open = row.status == "committed" and row.paid == 0 and initiative_status == "open"
    if row.status != "offered" and not unpaid_while_open:
        raise InvalidTransition(
            "A pledge is withdrawn while offered, or committed with no payment while the "
            f"initiative is open; this pledge is {row.status} and the initiative "
            f"{initiative_status}."
        )
    await repository.update_pledge(session, pledge_id, {"status": "withdrawn"})
    pledge = await get_pledge(session, tenant_id, pledge_id)
    await repository.publish_pledge_event(session, pledge_id, "pledge.withdrawn", pledge)
    return pledge


async def record_payment(
    session: AsyncConnection, tenant_id: uuid.UUID, pledge_id: uuid.UUID, data: PaymentIn
) -> Payment:
    row, member = await _pledge_seat(session, tenant_id, pledge_id)
    _require_facilitator(member)
    await repository.lock_initiative_as_facilitator(session, row.initiative_id)
    seat = await _seat(session, tenant_id, row.initiative_id)
    row, _ = await _pledge_seat(session, tenant_id, pledge_id, for_update=True)
    if row.status not in ("committed", "partially_paid"):
        raise InvalidTransition(
            f"Payments are recorded on committed pledges; this one is {row.status}."
        )
    if seat.initiative.status == "cancelled":
        raise InvalidTransition("The initiative is cancelled: it takes no payments.")
    if data.amount.currency != row.currency:
        raise ValidationFailed(
            "A payment is in its pledge's currency.",
            errors=[
                FieldError("amount.currency", f"must be the pledge's currency, {row.currency}")
            ],
        )
    left = row.amount - row.paid
    if data.amount.amount > left:
        raise ValidationFailed(
            "The payment is more than the pledge has left to pay.",
            errors=[FieldError("amount.amount", f"must be at most {left} (what is left to pay)")],
        )
    currency = seat.initiative.currency
    rate: Decimal | None = row.fx_rate
    converted = (
        data.amount.amount
        if rate is None
        else _checked_conversion(
            "amount", money.convert(data.amount.amount, row.currency, rate, currency), currency
        )
    )
    payment = await repository.insert_payment(
        session,
        {
            "tenant_id": row.tenant_id,
            "working_group_id": row.working_group_id,
            "initiative_id": row.initiative_id,
            "pledge_id": pledge_id,
            "amount": data.amount.amount,
            "currency": row.currency,
            "fx_rate": rate,
            "amount_in_initiative_currency": converted,
            "received_on": data.received_on,
            "reference": data.reference,
        },
    )
    paid = row.paid + data.amount.amount
    await repository.update_pledge(
        session,
        pledge_id,
        {"paid": paid, "status": "fulfilled" if paid == row.amount else "partially_paid"},
    )
    description = f"Payment from {row.tenant_name}" + (
        f" ({data.reference})" if data.reference else ""
    )
    await repository.book(
        session,
        {
            "working_group_id": row.working_group_id,
            "initiative_id": row.initiative_id,
            "tenant_id": row.tenant_id,
            "kind": "payment",
            "description": description,
            "payment_id": payment.id,
            **_original(data.amount, rate),
        },
        currency,
        [("cash", converted, 0), ("contributions", 0, converted)],
    )
    out = _payment_out(payment, currency)
    await repository.publish_pledge_event(
        session,
        pledge_id,
        "payment.recorded",
        {
            "payment": msgspec.to_builtins(out),
            "initiative_id": str(row.initiative_id),
            "pledge_status": "fulfilled" if paid == row.amount else "partially_paid",
        },
    )
    return out


def _original(amount: MoneyIn, rate: Decimal | None) -> dict[str, Any]:
    if rate is None:
        return {}
    return {"original_amount": amount.amount, "original_currency": amount.currency, "fx_rate": rate}


async def record_expense(
    session: AsyncConnection, tenant_id: uuid.UUID, initiative_id: uuid.UUID, data: ExpenseIn
) -> Expense:
    seat = await _seat(session, tenant_id, initiative_id)
    _require_facilitator(seat.member)
    await repository.lock_initiative_as_facilitator(session, initiative_id)
    seat = await _seat(session, tenant_id, initiative_id)
    initiative = seat.initiative
    if initiative.status not in BOOKING:
        raise InvalidTransition(
            f"Expenses are recorded while open, funded or active; this is {initiative.status}."
        )
    errors = []
    if not data.description.strip():
        errors.append(FieldError("description", "must not be blank"))
    if not data.category.strip():
        errors.append(FieldError("category", "must not be blank"))
    if errors:
        raise ValidationFailed("The expense is not valid.", errors=errors)
    converted, rate = _conversion("amount", data.amount, data.fx_rate, initiative.currency)
    expense = await repository.insert_expense(
        session,
        {
            "working_group_id": initiative.working_group_id,
            "initiative_id": initiative_id,
            "description": data.description.strip(),
            "category": data.category.strip(),
            "amount": data.amount.amount,
            "currency": data.amount.currency,
            "fx_rate": rate,
            "amount_in_initiative_currency": converted,
            "incurred_on": data.incurred_on,
        },
    )
    await repository.book(
        session,
        {
            "working_group_id": initiative.working_group_id,
            "initiative_id": initiative_id,
            "kind": "expense",
            "description": f"{expense.description} ({expense.category})",
            "expense_id": expense.id,
            **_original(data.amount, rate),
        },
        initiative.currency,
        [("expenses", converted, 0), ("cash", 0, converted)],
    )
    recorded = await repository.get_expense(session, expense.id)
    assert recorded is not None
    return _expense_out(recorded, initiative.currency)


async def reverse_expense(
    session: AsyncConnection, tenant_id: uuid.UUID, expense_id: uuid.UUID
) -> Reversal:
    """Correct an expense the ledger's way: a reversing booking, the original kept as it was."""
    row = await repository.get_expense(session, expense_id)
    member = (
        None
        if row is None
        else await working_groups.membership(session, row.working_group_id, tenant_id)
    )
    if row is None or member is None:
        raise NotFound(EXPENSE_NOT_FOUND)
    _require_facilitator(member)
    await repository.lock_initiative_as_facilitator(session, row.initiative_id)
    seat = await _seat(session, tenant_id, row.initiative_id)
    row = await repository.get_expense(session, expense_id)
    assert row is not None
    if row.reversed:
        raise InvalidTransition("This expense is already reversed.")
    amount = row.amount_in_initiative_currency
    booked = await repository.book(
        session,
        {
            "working_group_id": row.working_group_id,
            "initiative_id": row.initiative_id,
            "kind": "reversal",
            "description": f"Reversal of: {row.booking_description}",
            "reverses": row.booking_id,
        },
        seat.initiative.currency,
        [("cash", amount, 0), ("expenses", 0, amount)],
    )
    return Reversal(
        id=booked.id,
        expense_id=expense_id,
        amount=_money(amount, seat.initiative.currency),
        booked_at=booked.booked_at,
    )


async def list_expenses(
    session: AsyncConnection,
    tenant_id: uuid.UUID,
    initiative_id: uuid.UUID,
    *,
    after: tuple[Any, ...] | None,
    limit: int,
) -> Page[Expense]:
    seat = await _seat(session, tenant_id, initiative_id)
    rows = await repository.list_expenses(
        session, initiative_id, after=keyset(after, moment, identifier), limit=limit + 1
    )
    return paginate(
        [_expense_out(r, seat.initiative.currency) for r in rows],
        limit,
        lambda e: [e.created_at.isoformat(), str(e.id)],
    )


@dataclass(frozen=True)
class StatementSource:
    seat: Seat
    funder_lines: repository.FundersLines

    @property
    def currency(self) -> str:
        return str(self.seat.initiative.currency)


async def statement_source(
    session: AsyncConnection, tenant_id: uuid.UUID, initiative_id: uuid.UUID
) -> StatementSource:
    seat = await _seat(session, tenant_id, initiative_id)
    lines = repository.FundersLines([], [], [], [])
    if seat.restricted:
        for line in await repository.funder_lines(session, initiative_id):
            month = line.booked_at.strftime("%Y-%m")
            lines.ids.append(uuid.uuid5(FUNDERS_LINE_NAMESPACE, f"{initiative_id}/{month}"))
            lines.booked_at.append(line.booked_at)
            lines.amounts.append(line.amount)
            lines.descriptions.append(
                f"Payments from at least 3 funders, received up to the end of {month}"
            )
    return StatementSource(seat, lines)


async def statement_json(session: AsyncConnection, source: StatementSource) -> bytes:
    """The statement's JSON body; PostgreSQL writes the entries (10,000 in milliseconds)."""
    currency = source.currency
    restricted = source.seat.restricted
    row = await repository.statement_json(
        session,
        source.seat.initiative.id,
        currency,
        restricted=restricted,
        lines=source.funder_lines,
    )
    # The same sums as the funding block's: a restricted reader's rows are expenses only, and
    # the money it may see paid is what its funders lines released.
    paid: int | None = row["paid"]
    if restricted:
        paid = sum(source.funder_lines.amounts) if source.funder_lines.amounts else None
    spent: int = row["spent"]
    totals = StatementTotals(
        paid=None if paid is None else _money(paid, currency),
        spent=_money(spent, currency),
        balance=None if paid is None else _money(paid + spent, currency),
    )
    return b"".join(
        (
            b'{"currency":',
            msgspec.json.encode(currency),
            b',"entries":',
            row["entries"].encode(),
            b',"totals":',
            msgspec.json.encode(totals),
            b"}",
        )
    )


def statement_rows(session: AsyncConnection, source: StatementSource) -> AsyncIterator[Any]:
    """The statement's entries one at a time from a server-side cursor (for CSV)."""
    return repository.stream_statement_rows(
        session,
        source.seat.initiative.id,
        restricted=source.seat.restricted,
        lines=source.funder_lines,
    )


async def cost_split(
    session: AsyncConnection, tenant_id: uuid.UUID, initiative_id: uuid.UUID, data: CostSplitIn
) -> CostSplit:
    seat = await _seat(session, tenant_id, initiative_id)
    initiative = seat.initiative
    amount = data.amount or MoneyIn(initiative.budget, initiative.currency)
    errors = _currency_errors("amount.currency", amount.currency)
    seen: set[uuid.UUID] = set()
    for index, funder in enumerate(data.funders):
        field = f"funders[{index}].tenant_id"
        if funder.tenant_id in seen:
            errors.append(FieldError(field, "is listed twice"))
            continue
        seen.add(funder.tenant_id)
        found = await working_groups.membership(
            session, initiative.working_group_id, funder.tenant_id
        )
        if found is None or found.role not in FUNDER_ROLES:
            errors.append(FieldError(field, "is not a member or facilitator of the group"))
    if errors:
        raise ValidationFailed("The cost split is not valid.", errors=errors)
    shares = money.split(amount.amount, [(f.tenant_id, f.weight) for f in data.funders])
    return CostSplit(
        shares=[
            Share(tenant_id=f.tenant_id, amount=_money(shares[f.tenant_id], amount.currency))
            for f in data.funders
        ]
    )


def _result_out(row: Record) -> Result:
    return Result(
        id=row.id,
        indicator_id=row.indicator_id,
        period_start=row.period_start,
        period_end=row.period_end,
        value=row.value,
        breakdown=row.breakdown,
        note=row.note,
        created_at=row.created_at,
    )


def _indicator_out(row: Record, results: list[Result]) -> Indicator:
    return Indicator(
        id=row.id,
        initiative_id=row.initiative_id,
        name=row.name,
        unit=row.unit,
        baseline=row.baseline,
        target=row.target,
        breakdown=row.breakdown,
        results=results,
        total=sum(r.value for r in results),
        created_at=row.created_at,
    )


async def _indicators_out(session: AsyncConnection, rows: list[Record]) -> list[Indicator]:
    results = await repository.results_of(session, [r.id for r in rows])
    by_indicator: dict[uuid.UUID, list[Result]] = {r.id: [] for r in rows}
    for result in results:
        by_indicator[result.indicator_id].append(_result_out(result))
    return [_indicator_out(r, by_indicator[r.id]) for r in rows]


async def create_indicator(
    session: AsyncConnection, tenant_id: uuid.UUID, initiative_id: uuid.UUID, data: IndicatorIn
) -> Indicator:
    seat = await _seat(session, tenant_id, initiative_id)
    _require_facilitator(seat.member)
    errors = []
    if not data.name.strip():
        errors.append(FieldError("name", "must not be blank"))
    if data.breakdown is not None and len(set(data.breakdown)) != len(data.breakdown):
        errors.append(FieldError("breakdown", "lists a key twice"))
    if errors:
        raise ValidationFailed("The indicator is not valid.", errors=errors)
    row = await repository.insert_indicator(
        session,
        {
            "working_group_id": seat.initiative.working_group_id,
            "initiative_id": initiative_id,
            "name": data.name.strip(),
            "unit": data.unit,
            "baseline": data.baseline,
            "target": data.target,
            "breakdown": data.breakdown,
        },
    )
    return _indicator_out(row, [])


async def list_indicators(
    session: AsyncConnection,
    tenant_id: uuid.UUID,
    initiative_id: uuid.UUID,
    *,
    after: tuple[Any, ...] | None,
    limit: int,
) -> Page[Indicator]:
    await _seat(session, tenant_id, initiative_id)
    rows = await repository.list_indicators(
        session, initiative_id, after=keyset(after, moment, identifier), limit=limit + 1
    )
    page = paginate(rows, limit, lambda r: [r.created_at.isoformat(), str(r.id)])
    return Page(items=await _indicators_out(session, page.items), next_cursor=page.next_cursor)


async def _indicator_row(
    session: AsyncConnection, tenant_id: uuid.UUID, indicator_id: uuid.UUID
) -> tuple[Record, working_groups.Membership]:
    row = await repository.get_indicator(session, indicator_id)
    if row is None:
        raise NotFound(INDICATOR_NOT_FOUND)
    member = await working_groups.membership(session, row.working_group_id, tenant_id)
    if member is None:
        raise NotFound(INDICATOR_NOT_FOUND)
    return row, member


async def get_indicator(
    session: AsyncConnection, tenant_id: uuid.UUID, indicator_id: uuid.UUID
) -> Indicator:
    row, _ = await _indicator_row(session, tenant_id, indicator_id)
    return (await _indicators_out(session, [row]))[0]


async def report_result(
    session: AsyncConnection, tenant_id: uuid.UUID, indicator_id: uuid.UUID, data: ResultIn
) -> Result:
    indicator, member = await _indicator_row(session, tenant_id, indicator_id)
    _require_facilitator(member)
    errors = []
    if data.period_end < data.period_start:
        errors.append(FieldError("period_end", "must not be before period_start"))
    keys = indicator.breakdown
    if data.breakdown is not None:
        if keys is None:
            errors.append(FieldError("breakdown", "this indicator has no breakdown"))
        elif set(data.breakdown) != set(keys):
            errors.append(FieldError("breakdown", f"must have exactly the keys {', '.join(keys)}"))
        elif sum(data.breakdown.values()) != data.value:
            errors.append(
                FieldError(
                    "breakdown",
                    f"adds up to {sum(data.breakdown.values())}, not to the value {data.value}",
                )
            )
    if errors:
        raise ValidationFailed("The result is not valid.", errors=errors)
    row = await repository.insert_result(
        session,
        {
            "working_group_id": indicator.working_group_id,
            "initiative_id": indicator.initiative_id,
            "indicator_id": indicator_id,
            "period_start": data.period_start,
            "period_end": data.period_end,
            "value": data.value,
            "breakdown": data.breakdown,
            "note": data.note,
        },
    )
    return _result_out(row)
