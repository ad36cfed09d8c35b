"""The outbox: `record_event` writes an event in the caller's transaction; the feed reads it back.

An event is readable from its `visible_at` (when it was written; later for events about shared
findings, which wait a random delay per group). The feed is ordered by a per-tenant position that
the database gives an event once it is committed and visible (`position_events()`, run by the
reader before it reads): positions are handed out under a per-tenant lock, each holder committing
before the next reads the head, so whoever sees position p sees every position below it, and an
event that commits or becomes visible late gets a position after every cursor already handed out.
No transaction can hold the feed back, and no event is skipped or repeated by a resuming reader.

The cursor is (position, when that position was given), sealed by the service's `CursorCipher`
and bound to the tenant: it reveals nothing, and one older than the retention is a 410.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import msgspec
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from wg_api.platform.database import Database
from wg_api.platform.errors import Gone, InvalidRequest
from wg_api.platform.models import events
from wg_api.platform.pagination import BAD_CURSOR, CursorCipher


class Event(msgspec.Struct):
    id: uuid.UUID
    type: str
    occurred_at: datetime
    data: dict[str, Any]


class EventFeed(msgspec.Struct):
    items: list[Event]
    next_cursor: str
    has_more: bool


async def record_event(
    session: AsyncConnection, tenant_id: uuid.UUID, type: str, data: msgspec.Struct | dict[str, Any]
) -> None:
    """Record `type` for `tenant_id` in the same transaction as the change it describes."""
    payload = msgspec.to_builtins(data) if isinstance(data, msgspec.Struct) else data
    await session.execute(sa.insert(events).values(tenant_id=tenant_id, type=type, data=payload))


_FEED = sa.text(
    """
    SELECT id, type, occurred_at, data, position, positioned_at
    FROM events
    WHERE tenant_id = :tenant_id
      AND position > :after
      AND (CAST(:types AS text[]) IS NULL OR type = ANY(CAST(:types AS text[])))
    ORDER BY position
    LIMIT :limit
    """
)
# position_events() gives at most this many positions per call (see migration 0007).
POSITION_BATCH = 5000
# The purge keeps events this much longer than the retention, past any positioner still running
# when a reader's cursor was stamped.
PURGE_MARGIN = timedelta(hours=1)


def feed_cursor_context(tenant_id: uuid.UUID) -> str:
    return f"events:{tenant_id}"


async def read_feed(
    database: Database,
    cipher: CursorCipher,
    tenant_id: uuid.UUID,
    *,
    after: str | None,
    types: list[str] | None,
    limit: int,
    retention_days: int,
) -> EventFeed:
    context = feed_cursor_context(tenant_id)
    after_position, after_stamp = 0, None
    if after:
        position, stamp = cipher.open(after, context, 2)
        if type(position) is not int or position < 0 or type(stamp) not in (int, float):
            raise InvalidRequest(BAD_CURSOR)
        oldest = datetime.now(UTC) - timedelta(days=retention_days)
        if stamp < oldest.timestamp():
            raise Gone(
                f"The cursor is older than the {retention_days}-day retention; "
                "start again from the beginning of the feed."
            )
        after_position, after_stamp = position, float(stamp)
    # Its own transaction, committed before the answer leaves: positions handed out are kept.
    async with database.transaction(tenant_id) as session:
        positioned = (
            await session.execute(
                sa.text("SELECT position_events() AS placed, clock_timestamp() AS now")
            )
        ).one()
        placed, read_at = int(positioned.placed), positioned.now.timestamp()
        rows = (
            await session.execute(
                _FEED,
                {
                    "tenant_id": tenant_id,
                    "after": after_position,
                    "types": types or None,
                    "limit": limit + 1,
                },
            )
        ).all()
    has_more = len(rows) > limit or placed >= POSITION_BATCH
    rows = rows[:limit]
    items = [Event(id=r.id, type=r.type, occurred_at=r.occurred_at, data=r.data) for r in rows]
    if rows:
        position, stamp = rows[-1].position, rows[-1].positioned_at.timestamp()
    elif types is None or after_stamp is None:
        # Nothing after the position now; whatever comes later is positioned after this moment.
        position, stamp = after_position, read_at
    else:
        # A filtered read proves nothing about other types after the position: keep its age.
        position, stamp = after_position, after_stamp
    return EventFeed(
        items=items, next_cursor=cipher.seal([position, stamp], context), has_more=has_more
    )


async def purge_events(session: AsyncConnection, retention_days: int) -> int:
    """Delete every tenant's events positioned (or, never read, visible) longer ago than the
    retention (the owner's function, migration 0008: the system role has no BYPASSRLS)."""
    deleted = await session.scalar(
        sa.text("SELECT purge_events(:days)"), {"days": int(retention_days)}
    )
    return int(deleted or 0)
