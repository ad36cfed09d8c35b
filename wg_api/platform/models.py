"""The shared SQLAlchemy metadata and the platform's own tables (Core, no ORM on hot paths)."""

from __future__ import annotations

from typing import Any, TypeAlias

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import BYTEA, JSONB, UUID

metadata = sa.MetaData()

events = sa.Table(
    "events",
    metadata,
    sa.Column("seq", sa.BigInteger, primary_key=True),
    sa.Column(
        "id", UUID(as_uuid=True), nullable=False, server_default=sa.text("gen_random_uuid()")
    ),
    sa.Column("tenant_id", UUID(as_uuid=True), nullable=False),
    sa.Column("type", sa.Text, nullable=False),
    sa.Column("occurred_at", sa.DateTime(timezone=True), server_default=sa.func.now()),
    sa.Column("data", JSONB, nullable=False),
    # When it may be read, its place in the tenant's feed, and when it got that place.
    sa.Column("visible_at", sa.DateTime(timezone=True), server_default=sa.func.now()),
    sa.Column("position", sa.BigInteger),
    sa.Column("positioned_at", sa.DateTime(timezone=True)),
)

idempotency_keys = sa.Table(
    "idempotency_keys",
    metadata,
    sa.Column("tenant_id", UUID(as_uuid=True), primary_key=True),
    sa.Column("key", sa.Text, primary_key=True),
    sa.Column("request_hash", BYTEA, nullable=False),
    sa.Column("status_code", sa.Integer, nullable=False),
    sa.Column("headers", JSONB, nullable=False),
    sa.Column("body", BYTEA, nullable=False),
    sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.func.now()),
    sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
)

jobs = sa.Table(
    "jobs",
    metadata,
    sa.Column("id", sa.BigInteger, primary_key=True),
    sa.Column("name", sa.Text, nullable=False),
    sa.Column("fire_time", sa.DateTime(timezone=True), nullable=False),
    sa.Column("status", sa.Text, nullable=False, server_default="pending"),
    sa.Column("attempts", sa.Integer, nullable=False, server_default="0"),
    sa.Column("claimed_by", sa.Text),
    sa.Column("claimed_at", sa.DateTime(timezone=True)),
    sa.Column("finished_at", sa.DateTime(timezone=True)),
    sa.Column("last_error", sa.Text),
    sa.Column("result", JSONB),
    sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.func.now()),
)

# A result row of any width (SQLAlchemy 2.1 types rows by their column tuple).
Record: TypeAlias = sa.Row[*tuple[Any, ...]]
