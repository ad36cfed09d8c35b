"""The outbox: `record_event` writes an event in the caller's transaction; the feed reads it back.

The feed is ordered by (transaction id, sequence) and only shows events of transactions older than
the oldest one still running (`pg_snapshot_xmin`), so a slow transaction that commits late can
never slip in behind a reader's cursor.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import msgspec
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from wg_api.platform.errors import Gone, InvalidRequest
from wg_api.platform.models import events
from wg_api.platform.pagination import BAD_CURSOR, decode_cursor, encode_cursor


class Event(msgspec.Struct):
    id: uuid.UUID
    type: str
    occurred_at: datetime
    data: dict[str, Any]


class EventFeed(msgspec.Struct):
    items: list[Event]
    next_cursor: str | None
    has_more: bool


async def record_event(
    session: AsyncSession, tenant_id: uuid.UUID, type: str, data: msgspec.Struct | dict[str, Any]
) -> None:
    """Record `type` for `tenant_id` in the same transaction as the change it describes."""
    payload = msgspec.to_builtins(data) if isinstance(data, msgspec.Struct) else data
    await session.execute(sa.insert(events).values(tenant_id=tenant_id, type=type, data=payload))


_FEED = sa.text(
    """
    SELECT id, type, occurred_at, data, xid::text AS xid, seq
    FROM events
    WHERE tenant_id = :tenant_id
      AND (xid, seq) > (CAST(:after_xid AS xid8), :after_seq)
      AND xid < pg_snapshot_xmin(pg_current_snapshot())
      AND (CAST(:types AS text[]) IS NULL OR type = ANY(CAST(:types AS text[])))
    ORDER BY xid, seq
    LIMIT :limit
    """
)


async def read_feed(
    session: AsyncSession,
    tenant_id: uuid.UUID,
    *,
    after: str | None,
    types: list[str] | None,
    limit: int,
    retention_days: int,
) -> EventFeed:
    after_xid, after_seq = 0, 0
    if after:
        xid, seq, occurred_ts = decode_cursor(after, 3)
        if not (
            isinstance(xid, str)
            and xid.isascii()
            and xid.isdigit()
            and int(xid) < 2**64
            and type(seq) is int
            and 0 <= seq < 2**63
            and type(occurred_ts) in (int, float)
        ):
            raise InvalidRequest(BAD_CURSOR)
        oldest = datetime.now(UTC) - timedelta(days=retention_days)
        if occurred_ts < oldest.timestamp():
            raise Gone(
                f"The cursor is older than the {retention_days}-day retention; "
                "start again from the beginning of the feed."
            )
        # asyncpg sends an xid8 parameter as an integer.
        after_xid, after_seq = int(xid), seq
    rows = (
        await session.execute(
            _FEED,
            {
                "tenant_id": tenant_id,
                "after_xid": after_xid,
                "after_seq": after_seq,
                "types": types or None,
                "limit": limit + 1,
            },
        )
    ).all()
    has_more = len(rows) > limit
    rows = rows[:limit]
    items = [Event(id=r.id, type=r.type, occurred_at=r.occurred_at, data=r.data) for r in rows]
    if rows:
        last = rows[-1]
        next_cursor: str | None = encode_cursor([last.xid, last.seq, last.occurred_at.timestamp()])
    else:
        next_cursor = after
    return EventFeed(items=items, next_cursor=next_cursor, has_more=has_more)


async def purge_events(session: AsyncSession, retention_days: int) -> int:
    """Delete every tenant's events older than the retention (the owner's function, migration
    0008: the system role calling it has no BYPASSRLS)."""
    deleted = await session.scalar(
        sa.text("SELECT purge_events(:days)"), {"days": int(retention_days)}
    )
    return int(deleted or 0)
