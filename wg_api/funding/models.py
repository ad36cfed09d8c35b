"""Funding tables: initiatives, pledges, payments, expenses, the ledger, indicators, results."""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import ARRAY, JSONB, UUID

from wg_api.platform.models import metadata


def _id() -> sa.Column[object]:
    return sa.Column(
        "id", UUID(as_uuid=True), primary_key=True, server_default=sa.text("gen_random_uuid()")
    )


def _uuid(name: str, nullable: bool = False) -> sa.Column[object]:
    return sa.Column(name, UUID(as_uuid=True), nullable=nullable)


def _created_at() -> sa.Column[object]:
    return sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.func.now())


initiatives = sa.Table(
    "initiatives",
    metadata,
    _id(),
    _uuid("working_group_id"),
    sa.Column("title", sa.Text, nullable=False),
    sa.Column("description", sa.Text),
    sa.Column("currency", sa.Text, nullable=False),
    sa.Column("budget", sa.BigInteger, nullable=False),
    sa.Column("funding_target", sa.BigInteger, nullable=False),
    sa.Column("starts_on", sa.Date, nullable=False),
    sa.Column("ends_on", sa.Date, nullable=False),
    sa.Column("pledge_visibility", sa.Text, nullable=False),
    sa.Column("status", sa.Text, nullable=False, server_default="draft"),
    sa.Column("funded_at", sa.DateTime(timezone=True)),
    _created_at(),
    sa.Column("updated_at", sa.DateTime(timezone=True), server_default=sa.func.now()),
)

pledges = sa.Table(
    "pledges",
    metadata,
    _id(),
    _uuid("tenant_id"),
    _uuid("working_group_id"),
    _uuid("initiative_id"),
    sa.Column("amount", sa.BigInteger, nullable=False),
    sa.Column("currency", sa.Text, nullable=False),
    sa.Column("fx_rate", sa.Numeric),
    sa.Column("amount_in_initiative_currency", sa.BigInteger, nullable=False),
    sa.Column("status", sa.Text, nullable=False, server_default="offered"),
    sa.Column("paid", sa.BigInteger, nullable=False, server_default="0"),
    sa.Column("note", sa.Text),
    _created_at(),
    sa.Column("updated_at", sa.DateTime(timezone=True), server_default=sa.func.now()),
)

payments = sa.Table(
    "payments",
    metadata,
    _id(),
    _uuid("tenant_id"),
    _uuid("working_group_id"),
    _uuid("initiative_id"),
    _uuid("pledge_id"),
    sa.Column("amount", sa.BigInteger, nullable=False),
    sa.Column("currency", sa.Text, nullable=False),
    sa.Column("fx_rate", sa.Numeric),
    sa.Column("amount_in_initiative_currency", sa.BigInteger, nullable=False),
    sa.Column("received_on", sa.Date, nullable=False),
    sa.Column("reference", sa.Text),
    _created_at(),
)

expenses = sa.Table(
    "expenses",
    metadata,
    _id(),
    _uuid("working_group_id"),
    _uuid("initiative_id"),
    sa.Column("description", sa.Text, nullable=False),
    sa.Column("category", sa.Text, nullable=False),
    sa.Column("amount", sa.BigInteger, nullable=False),
    sa.Column("currency", sa.Text, nullable=False),
    sa.Column("fx_rate", sa.Numeric),
    sa.Column("amount_in_initiative_currency", sa.BigInteger, nullable=False),
    sa.Column("incurred_on", sa.Date, nullable=False),
    _created_at(),
)

ledger_bookings = sa.Table(
    "ledger_bookings",
    metadata,
    _id(),
    sa.Column("seq", sa.BigInteger, sa.Identity(always=True)),
    _uuid("working_group_id"),
    _uuid("initiative_id"),
    _uuid("tenant_id", nullable=True),
    sa.Column("kind", sa.Text, nullable=False),
    sa.Column("description", sa.Text, nullable=False),
    sa.Column("booked_at", sa.DateTime(timezone=True), server_default=sa.func.now()),
    _uuid("payment_id", nullable=True),
    _uuid("expense_id", nullable=True),
    _uuid("reverses", nullable=True),
    sa.Column("original_amount", sa.BigInteger),
    sa.Column("original_currency", sa.Text),
    sa.Column("fx_rate", sa.Numeric),
)

ledger_entries = sa.Table(
    "ledger_entries",
    metadata,
    sa.Column("id", sa.BigInteger, sa.Identity(always=True), primary_key=True),
    _uuid("booking_id"),
    _uuid("working_group_id"),
    _uuid("initiative_id"),
    _uuid("tenant_id", nullable=True),
    sa.Column("account", sa.Text, nullable=False),
    sa.Column("debit", sa.BigInteger, nullable=False, server_default="0"),
    sa.Column("credit", sa.BigInteger, nullable=False, server_default="0"),
    sa.Column("currency", sa.Text, nullable=False),
)

indicators = sa.Table(
    "indicators",
    metadata,
    _id(),
    _uuid("working_group_id"),
    _uuid("initiative_id"),
    sa.Column("name", sa.Text, nullable=False),
    sa.Column("unit", sa.Text, nullable=False),
    sa.Column("baseline", sa.BigInteger, nullable=False),
    sa.Column("target", sa.BigInteger, nullable=False),
    sa.Column("breakdown", ARRAY(sa.Text)),
    _created_at(),
)

indicator_results = sa.Table(
    "indicator_results",
    metadata,
    _id(),
    _uuid("working_group_id"),
    _uuid("initiative_id"),
    _uuid("indicator_id"),
    sa.Column("period_start", sa.Date, nullable=False),
    sa.Column("period_end", sa.Date, nullable=False),
    sa.Column("value", sa.BigInteger, nullable=False),
    sa.Column("breakdown", JSONB(none_as_null=True)),
    sa.Column("note", sa.Text),
    _created_at(),
)


# The public tenant directory as funding reads it (a pledge is answered with its tenant's slug and
# name where the reader may see them): a read-only view of identity's table (a TableClause, not
# mapped metadata), so funding depends on the directory's columns, never on identity's code.
tenant_directory = sa.table(
    "tenants",
    sa.column("id", UUID(as_uuid=True)),
    sa.column("slug", sa.Text),
    sa.column("name", sa.Text),
)
