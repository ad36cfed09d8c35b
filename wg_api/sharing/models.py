"""Sharing tables. `shared_findings.contributor` is not readable by the app role (see 0004)."""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import JSONB, UUID

from wg_api.platform.models import metadata

shared_findings = sa.Table(
    "shared_findings",
    metadata,
    sa.Column(
        "id", UUID(as_uuid=True), primary_key=True, server_default=sa.text("gen_random_uuid()")
    ),
    sa.Column("group_id", UUID(as_uuid=True), nullable=False),
    sa.Column("contributor", UUID(as_uuid=True), nullable=False),
    sa.Column("supplier_id", UUID(as_uuid=True), nullable=False),
    sa.Column("supplier_name", sa.Text, nullable=False),  # the list's order; canonical anyway
    sa.Column("country", sa.String(2), nullable=False),
    sa.Column("kind", sa.Text, nullable=False),
    sa.Column("area", sa.Text, nullable=False),
    sa.Column("severity", sa.Text),
    sa.Column("basis", sa.Text),
    sa.Column("status", sa.Text, nullable=False),
    sa.Column("observed_period", sa.Text, nullable=False),
    sa.Column("title", sa.Text, nullable=False),
    sa.Column("description", sa.Text),
    sa.Column("affected_workers_band", sa.Text),
    sa.Column("source_scheme", sa.Text, nullable=False),
    sa.Column("child_labour_case", JSONB),
)

shares = sa.Table(
    "shares",
    metadata,
    sa.Column(
        "id", UUID(as_uuid=True), primary_key=True, server_default=sa.text("gen_random_uuid()")
    ),
    sa.Column("tenant_id", UUID(as_uuid=True), nullable=False),
    sa.Column("finding_id", UUID(as_uuid=True), nullable=False),
    sa.Column("group_id", UUID(as_uuid=True), nullable=False),
    sa.Column("shared_finding_id", UUID(as_uuid=True)),
    sa.Column("include_description", sa.Boolean, nullable=False, server_default=sa.true()),
    sa.Column("status", sa.Text, nullable=False, server_default="active"),
    sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.func.now()),
    sa.Column("withdrawn_at", sa.DateTime(timezone=True)),
)


# The public supplier registry as sharing reads it: a shared record is answered with its
# supplier's registry entry. A read-only view of suppliers' table (a TableClause, not mapped
# metadata), so sharing depends on the registry's columns, never on the suppliers domain's code.
supplier_registry = sa.table(
    "suppliers",
    sa.column("id", UUID(as_uuid=True)),
    sa.column("name", sa.Text),
    sa.column("local_name", sa.Text),
    sa.column("address", sa.Text),
    sa.column("country", sa.Text),
    sa.column("province", sa.Text),
    sa.column("city", sa.Text),
    sa.column("sector", sa.Text),
    sa.column("os_id", sa.Text),
)
