"""The common supplier registry and each tenant's private links to it."""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import UUID

from wg_api.platform.models import metadata

suppliers = sa.Table(
    "suppliers",
    metadata,
    sa.Column(
        "id", UUID(as_uuid=True), primary_key=True, server_default=sa.text("gen_random_uuid()")
    ),
    sa.Column("name", sa.Text, nullable=False),
    sa.Column("local_name", sa.Text),
    sa.Column("address", sa.Text, nullable=False),
    sa.Column("country", sa.String(2), nullable=False),
    sa.Column("province", sa.Text),
    sa.Column("city", sa.Text),
    sa.Column("sector", sa.Text),
    sa.Column("os_id", sa.Text, unique=True),
    sa.Column("match_key", sa.Text, nullable=False, unique=True),
    sa.Column("match_name", sa.Text, nullable=False),
    sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.func.now()),
)

supplier_links = sa.Table(
    "supplier_links",
    metadata,
    sa.Column("tenant_id", UUID(as_uuid=True), primary_key=True),
    sa.Column("supplier_id", UUID(as_uuid=True), primary_key=True),
    sa.Column("internal_code", sa.Text),
    sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.func.now()),
    sa.Column("supplier_name", sa.Text, nullable=False),  # kept by triggers, for ordering
)
