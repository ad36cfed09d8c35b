"""msgspec Structs in and out of the funding endpoints. Money is whole minor units, always."""

from __future__ import annotations

import uuid
from datetime import date, datetime
from typing import Annotated, Literal

import msgspec
from msgspec import UNSET, Meta, UnsetType

from wg_api.funding.money import AMOUNT_LIMIT
from wg_api.working_groups.schemas import TenantRef

InitiativeStatus = Literal["draft", "open", "funded", "active", "completed", "cancelled"]
PledgeStatus = Literal["offered", "committed", "partially_paid", "fulfilled", "withdrawn"]
Visibility = Literal["open", "totals_only"]
EntryKind = Literal["payment", "expense", "reversal", "funders"]
FEWER_THAN_3: Literal["fewer than 3"] = "fewer than 3"

Amount = Annotated[
    int,
    Meta(
        ge=1,
        lt=AMOUNT_LIMIT,
        description="Minor units of the currency's ISO 4217 exponent (HKD 150000 is HK$1,500.00).",
    ),
]
CurrencyCode = Annotated[str, Meta(pattern="^[A-Z]{3}$", examples=["HKD"])]
Rate = Annotated[
    str,
    Meta(
        min_length=1,
        max_length=40,
        description="A positive decimal string of at most 12 significant digits: units of the "
        "initiative's currency per one unit of the pledge's (or expense's) currency.",
        examples=["7.8123"],
    ),
]
Title = Annotated[str, Meta(min_length=1, max_length=300)]
Text = Annotated[str, Meta(max_length=10000)]
Note = Annotated[str, Meta(max_length=2000)]
Reference = Annotated[str, Meta(min_length=1, max_length=200)]
Category = Annotated[str, Meta(min_length=1, max_length=100)]
Measure = Annotated[int, Meta(ge=0, lt=AMOUNT_LIMIT)]
BreakdownKey = Annotated[str, Meta(pattern="^[a-z][a-z0-9_]{0,63}$")]
Weight = Annotated[int, Meta(ge=1, le=1_000_000)]


class MoneyIn(msgspec.Struct, forbid_unknown_fields=True):
    amount: Amount
    currency: CurrencyCode


class Money(msgspec.Struct):
    """An amount in answers: may be zero or negative (money out is negative)."""

    amount: int
    currency: str


class InitiativeIn(msgspec.Struct, forbid_unknown_fields=True):
    title: Title
    currency: CurrencyCode
    budget: MoneyIn
    starts_on: date
    ends_on: date
    description: Text | None = None
    funding_target: MoneyIn | None = None
    pledge_visibility: Visibility = "totals_only"


class InitiativePatch(msgspec.Struct, forbid_unknown_fields=True):
    """Fields change only while `draft`; `status` moves the initiative along its states."""

    title: Title | UnsetType = UNSET
    description: Text | UnsetType | None = UNSET
    currency: CurrencyCode | UnsetType = UNSET
    budget: MoneyIn | UnsetType = UNSET
    funding_target: MoneyIn | UnsetType = UNSET
    starts_on: date | UnsetType = UNSET
    ends_on: date | UnsetType = UNSET
    pledge_visibility: Visibility | UnsetType = UNSET
    status: InitiativeStatus | UnsetType = UNSET


class Funding(msgspec.Struct):
    """Totals in the initiative's currency. Under `totals_only`, a member who is not a
    facilitator sees an aggregate of funders' money only when three tenants stand behind it."""

    target: Money
    committed: Money | None
    paid: Money | None
    spent: Money
    balance: Money | None
    funders: int | Literal["fewer than 3"]
    percent_committed: int | None


class Initiative(msgspec.Struct):
    id: uuid.UUID
    working_group_id: uuid.UUID
    title: str
    description: str | None
    currency: str
    budget: Money
    funding_target: Money
    starts_on: date
    ends_on: date
    pledge_visibility: Visibility
    status: InitiativeStatus
    funding: Funding
    funded_at: datetime | None
    created_at: datetime
    updated_at: datetime


class PledgeIn(msgspec.Struct, forbid_unknown_fields=True):
    amount: MoneyIn
    fx_rate: Rate | None = None
    note: Note | None = None


class Pledge(msgspec.Struct):
    id: uuid.UUID
    initiative_id: uuid.UUID
    tenant: TenantRef
    amount: Money
    fx_rate: str | None
    amount_in_initiative_currency: Money
    status: PledgeStatus
    paid: Money
    note: str | None
    created_at: datetime
    updated_at: datetime


class PaymentIn(msgspec.Struct, forbid_unknown_fields=True):
    amount: MoneyIn
    received_on: date
    reference: Reference | None = None


class Payment(msgspec.Struct):
    id: uuid.UUID
    pledge_id: uuid.UUID
    amount: Money
    fx_rate: str | None
    amount_in_initiative_currency: Money
    received_on: date
    reference: str | None
    created_at: datetime


class ExpenseIn(msgspec.Struct, forbid_unknown_fields=True):
    description: Annotated[str, Meta(min_length=1, max_length=500)]
    category: Category
    amount: MoneyIn
    incurred_on: date
    fx_rate: Rate | None = None


class Expense(msgspec.Struct):
    id: uuid.UUID
    initiative_id: uuid.UUID
    description: str
    category: str
    amount: Money
    fx_rate: str | None
    amount_in_initiative_currency: Money
    incurred_on: date
    reversed: bool
    created_at: datetime


class Reversal(msgspec.Struct):
    """A correcting booking: the expense's money back into the initiative's cash."""

    id: uuid.UUID
    expense_id: uuid.UUID
    amount: Money
    booked_at: datetime


class FunderWeight(msgspec.Struct, forbid_unknown_fields=True):
    tenant_id: uuid.UUID
    weight: Weight


class CostSplitIn(msgspec.Struct, forbid_unknown_fields=True):
    funders: Annotated[list[FunderWeight], Meta(min_length=1, max_length=200)]
    amount: MoneyIn | None = None


class Share(msgspec.Struct):
    tenant_id: uuid.UUID
    amount: Money


class CostSplit(msgspec.Struct):
    shares: list[Share]


class IndicatorIn(msgspec.Struct, forbid_unknown_fields=True):
    name: Title
    unit: Category
    baseline: Measure
    target: Measure
    breakdown: Annotated[list[BreakdownKey], Meta(min_length=2, max_length=20)] | None = None


class ResultIn(msgspec.Struct, forbid_unknown_fields=True):
    period_start: date
    period_end: date
    value: Measure
    breakdown: dict[BreakdownKey, Measure] | None = None
    note: Note | None = None


class Result(msgspec.Struct):
    id: uuid.UUID
    indicator_id: uuid.UUID
    period_start: date
    period_end: date
    value: int
    breakdown: dict[str, int] | None
    note: str | None
    created_at: datetime


class Indicator(msgspec.Struct):
    id: uuid.UUID
    initiative_id: uuid.UUID
    name: str
    unit: str
    baseline: int
    target: int
    breakdown: list[str] | None
    results: list[Result]
    total: int
    created_at: datetime


class StatementEntry(msgspec.Struct):
    id: uuid.UUID
    booked_at: datetime
    kind: EntryKind
    description: str
    amount: Money
    original_amount: Money | None
    fx_rate: str | None
    balance: Money | None


class StatementTotals(msgspec.Struct):
    paid: Money | None
    spent: Money
    balance: Money | None


class Statement(msgspec.Struct):
    currency: str
    entries: list[StatementEntry]
    totals: StatementTotals


STATEMENT_COLUMNS = (
    "id",
    "booked_at",
    "kind",
    "description",
    "amount",
    "currency",
    "original_amount",
    "original_currency",
    "fx_rate",
    "balance",
)
