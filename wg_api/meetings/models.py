"""Meeting tables (migrations 0012, 0013). Visibility: RLS through
`wg_group_role(working_group_id)`; calendar feeds belong to their tenant."""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import ARRAY, JSONB, UUID

from wg_api.platform.models import metadata


def _uuid(name: str, **kwargs: object) -> sa.Column[object]:
    return sa.Column(name, UUID(as_uuid=True), **kwargs)  # type: ignore[arg-type]


def _moment(name: str, **kwargs: object) -> sa.Column[object]:
    return sa.Column(name, sa.DateTime(timezone=True), **kwargs)  # type: ignore[arg-type]


meeting_series = sa.Table(
    "meeting_series",
    metadata,
    _uuid("id", primary_key=True),
    _uuid("working_group_id", nullable=False),
    sa.Column("rrule", sa.Text, nullable=False),
    sa.Column("timezone", sa.Text, nullable=False),
    sa.Column("start_local", sa.DateTime(timezone=False), nullable=False),
    sa.Column("duration_minutes", sa.Integer, nullable=False),
    sa.Column("title", sa.Text, nullable=False),
    sa.Column("description", sa.Text),
    sa.Column("location", JSONB, nullable=False),
    sa.Column("reminders_minutes_before", ARRAY(sa.Integer), nullable=False),
    sa.Column("sequence", sa.Integer, nullable=False, server_default="0"),
    _moment("created_at", server_default=sa.func.now()),
    _moment("updated_at", server_default=sa.func.now()),
)

meetings = sa.Table(
    "meetings",
    metadata,
    _uuid("id", primary_key=True),
    _uuid("working_group_id", nullable=False),
    _uuid("series_id"),
    sa.Column("series_index", sa.Integer),
    sa.Column("title", sa.Text, nullable=False),
    sa.Column("description", sa.Text),
    sa.Column("start_local", sa.DateTime(timezone=False), nullable=False),
    sa.Column("timezone", sa.Text, nullable=False),
    _moment("starts_at", nullable=False),
    _moment("ends_at", nullable=False),
    sa.Column("duration_minutes", sa.Integer, nullable=False),
    sa.Column("location", JSONB, nullable=False),
    sa.Column("status", sa.Text, nullable=False, server_default="scheduled"),
    sa.Column("cancel_reason", sa.Text),
    sa.Column("sequence", sa.Integer, nullable=False, server_default="0"),
    _moment("recurrence_id"),
    sa.Column("is_exception", sa.Boolean, nullable=False, server_default=sa.false()),
    sa.Column("reminders_minutes_before", ARRAY(sa.Integer), nullable=False),
    _moment("created_at", server_default=sa.func.now()),
    _moment("updated_at", server_default=sa.func.now()),
)

meeting_rsvps = sa.Table(
    "meeting_rsvps",
    metadata,
    _uuid("meeting_id", primary_key=True),
    _uuid("working_group_id", nullable=False),
    _uuid("tenant_id", primary_key=True),
    sa.Column("response", sa.Text, nullable=False),
    sa.Column("attendees", JSONB, nullable=False),
    sa.Column("comment", sa.Text),
    _moment("updated_at", server_default=sa.func.now()),
)

agenda_items = sa.Table(
    "agenda_items",
    metadata,
    _uuid("id", primary_key=True),
    _uuid("meeting_id", nullable=False),
    _uuid("working_group_id", nullable=False),
    _uuid("tenant_id", nullable=False),
    sa.Column("title", sa.Text, nullable=False),
    sa.Column("description", sa.Text),
    sa.Column("duration_minutes", sa.Integer),
    sa.Column("status", sa.Text, nullable=False, server_default="proposed"),
    sa.Column("position", sa.Integer),
    _moment("created_at", server_default=sa.func.now()),
    _moment("updated_at", server_default=sa.func.now()),
)

meeting_minutes = sa.Table(
    "meeting_minutes",
    metadata,
    _uuid("meeting_id", primary_key=True),
    _uuid("working_group_id", nullable=False),
    sa.Column("draft", JSONB),
    _moment("draft_updated_at"),
    sa.Column("published", JSONB),
    _moment("published_at"),
    sa.Column("revision", sa.Integer, nullable=False, server_default="0"),
)

action_items = sa.Table(
    "action_items",
    metadata,
    _uuid("id", primary_key=True),
    _uuid("meeting_id", nullable=False),
    _uuid("working_group_id", nullable=False),
    sa.Column("title", sa.Text, nullable=False),
    _uuid("owner_tenant_id"),
    sa.Column("due_on", sa.Date),
    sa.Column("status", sa.Text, nullable=False, server_default="open"),
    _moment("created_at", server_default=sa.func.now()),
    _moment("updated_at", server_default=sa.func.now()),
)

meeting_attendance = sa.Table(
    "meeting_attendance",
    metadata,
    _uuid("meeting_id", primary_key=True),
    _uuid("working_group_id", nullable=False),
    _uuid("tenant_id", primary_key=True),
    sa.Column("attended", sa.Boolean, nullable=False),
    sa.Column("attendees_count", sa.Integer),
    _moment("recorded_at", server_default=sa.func.now()),
)

meeting_reminders = sa.Table(
    "meeting_reminders",
    metadata,
    _uuid("meeting_id", primary_key=True),
    _uuid("working_group_id", nullable=False),
    sa.Column("minutes_before", sa.Integer, primary_key=True),
    _moment("starts_at", primary_key=True),
    _moment("due_at", nullable=False),
    _moment("sent_at"),
)

# Migration 0013: tenant RLS; only the token's SHA-256 is stored.
calendar_feeds = sa.Table(
    "calendar_feeds",
    metadata,
    _uuid("tenant_id", primary_key=True),
    _uuid("id", primary_key=True),
    _uuid("working_group_id"),
    sa.Column("name", sa.Text),
    sa.Column("token_hash", sa.LargeBinary, nullable=False),
    _moment("created_at", server_default=sa.func.now()),
    _moment("revoked_at"),
)
