"""Working-group tables. Visibility: RLS through `wg_group_role(group_id)` (see migration 0003).

Insert a working group WITHOUT `RETURNING`: the row is only visible once its first membership
exists, so create the group, then the facilitator membership, then read it back.
"""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import UUID

from wg_api.platform.models import metadata

working_groups = sa.Table(
    "working_groups",
    metadata,
    sa.Column("id", UUID(as_uuid=True), primary_key=True),
    sa.Column("name", sa.Text, nullable=False),
    sa.Column("description", sa.Text),
    sa.Column("timezone", sa.Text, nullable=False, server_default="Asia/Hong_Kong"),
    sa.Column("anonymity_threshold", sa.Integer, nullable=False, server_default="3"),
    sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.func.now()),
    sa.Column("updated_at", sa.DateTime(timezone=True), server_default=sa.func.now()),
)

working_group_members = sa.Table(
    "working_group_members",
    metadata,
    sa.Column("group_id", UUID(as_uuid=True), primary_key=True),
    sa.Column("tenant_id", UUID(as_uuid=True), primary_key=True),
    sa.Column("role", sa.Text, nullable=False),
    sa.Column("status", sa.Text, nullable=False, server_default="active"),
    sa.Column("joined_at", sa.DateTime(timezone=True), server_default=sa.func.now()),
    sa.Column("left_at", sa.DateTime(timezone=True)),
)

invitations = sa.Table(
    "invitations",
    metadata,
    sa.Column(
        "id", UUID(as_uuid=True), primary_key=True, server_default=sa.text("gen_random_uuid()")
    ),
    sa.Column("group_id", UUID(as_uuid=True), nullable=False),
    sa.Column("tenant_id", UUID(as_uuid=True), nullable=False),
    sa.Column("role", sa.Text, nullable=False),
    sa.Column("status", sa.Text, nullable=False, server_default="pending"),
    sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.func.now()),
    sa.Column("responded_at", sa.DateTime(timezone=True)),
)
