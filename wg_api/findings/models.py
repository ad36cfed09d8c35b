"""Findings: what an audit or visit observed at a supplier. Private to their tenant."""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import JSONB, UUID

from wg_api.platform.models import metadata

findings = sa.Table(
    "findings",
    metadata,
    sa.Column(
        "id", UUID(as_uuid=True), primary_key=True, server_default=sa.text("gen_random_uuid()")
    ),
    sa.Column("tenant_id", UUID(as_uuid=True), nullable=False),
    sa.Column("supplier_id", UUID(as_uuid=True), nullable=False),
    sa.Column("external_id", sa.Text),
    sa.Column("kind", sa.Text, nullable=False),
    sa.Column("area", sa.Text, nullable=False),
    sa.Column("severity", sa.Text),
    sa.Column("basis", sa.Text),
    sa.Column("title", sa.Text, nullable=False),
    sa.Column("description", sa.Text, nullable=False),
    sa.Column("observed_on", sa.Date, nullable=False),
    sa.Column("source_scheme", sa.Text, nullable=False),
    sa.Column("source_reference", sa.Text),
    sa.Column("status", sa.Text, nullable=False),
    sa.Column("affected_workers", sa.Integer),
    # Python None is SQL NULL, not the JSON value null, so `IS NULL` means "no CAP".
    sa.Column("cap", JSONB(none_as_null=True)),
    sa.Column("child_labour_case", JSONB(none_as_null=True)),
    sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.func.now()),
    sa.Column("updated_at", sa.DateTime(timezone=True), server_default=sa.func.now()),
)
