"""Every query of calendars: feeds (tenant RLS) and the cheap version of a calendar's content."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from wg_api.meetings.models import calendar_feeds
from wg_api.platform.database import Database, driver_fetch


@dataclass(frozen=True)
class FeedRecord:
    id: uuid.UUID
    tenant_id: uuid.UUID
    working_group_id: uuid.UUID | None
    name: str | None
    created_at: datetime
    revoked_at: datetime | None


_FEED_COLUMNS = tuple(calendar_feeds.c[name] for name in FeedRecord.__dataclass_fields__)


def _feed(row: Any) -> FeedRecord:
    return FeedRecord(*row)


async def insert_feed(session: AsyncConnection, values: dict[str, Any]) -> FeedRecord:
    row = (
        await session.execute(sa.insert(calendar_feeds).values(**values).returning(*_FEED_COLUMNS))
    ).one()
    return _feed(row)


async def feeds(
    session: AsyncConnection,
    tenant_id: uuid.UUID,
    *,
    after: tuple[datetime, uuid.UUID] | None,
    limit: int,
) -> list[FeedRecord]:
    statement = (
        sa.select(*_FEED_COLUMNS)
        .where(calendar_feeds.c.tenant_id == tenant_id)
        .order_by(calendar_feeds.c.created_at, calendar_feeds.c.id)
        .limit(limit)
    )
    if after is not None:
        statement = statement.where(
            sa.tuple_(calendar_feeds.c.created_at, calendar_feeds.c.id) > after
        )
    return [_feed(row) for row in await session.execute(statement)]


async def feed(
    session: AsyncConnection, tenant_id: uuid.UUID, feed_id: uuid.UUID
) -> FeedRecord | None:
    row = (
        await session.execute(
            sa.select(*_FEED_COLUMNS).where(
                calendar_feeds.c.tenant_id == tenant_id, calendar_feeds.c.id == feed_id
            )
        )
    ).one_or_none()
    return _feed(row) if row is not None else None


async def revoke(session: AsyncConnection, tenant_id: uuid.UUID, feed_id: uuid.UUID) -> None:
    await session.execute(
        sa.update(calendar_feeds)
        .where(
            calendar_feeds.c.tenant_id == tenant_id,
            calendar_feeds.c.id == feed_id,
            calendar_feeds.c.revoked_at.is_(None),
        )
        .values(revoked_at=sa.func.now())
    )


async def revoke_named(session: AsyncConnection, tenant_id: uuid.UUID, name: str) -> int:
    result = await session.execute(
        sa.update(calendar_feeds)
        .where(
            calendar_feeds.c.tenant_id == tenant_id,
            calendar_feeds.c.name == name,
            calendar_feeds.c.revoked_at.is_(None),
        )
        .values(revoked_at=sa.func.now())
    )
    return int(getattr(result, "rowcount", 0) or 0)


@dataclass(frozen=True)
class FeedState:
    """A live feed found by its token's hash, with what its ETag is made of: the groups it
    shows now (id, name, `updated_at`; for a group feed, none when the tenant left the group)
    and their version."""

    tenant_id: uuid.UUID
    feed_id: uuid.UUID
    all_groups: bool
    groups: tuple[tuple[uuid.UUID, str, datetime], ...]
    version: tuple[int, datetime | None, int, datetime | None]


async def feed_for_token(database: Database, token_hash: bytes) -> FeedState | None:
    """Before any tenant is known: the live feed with this token hash, through the owner's
    function (migration 0014). One statement on a pooled connection of the app role outside any
    transaction (no tenant to bind, nothing to commit): a polling calendar client pays one round
    trip for it."""
    async with database.app_engine.connect() as connection:
        raw = await connection.get_raw_connection()
        driver = raw.driver_connection
        assert driver is not None
        rows = await driver.fetch("SELECT * FROM calendar_feed_for_token($1)", token_hash)
    if not rows:
        return None
    first = rows[0]
    return FeedState(
        tenant_id=first["tenant_id"],
        feed_id=first["feed_id"],
        all_groups=first["all_groups"],
        groups=tuple(
            sorted(
                (row["group_id"], row["group_name"], row["group_updated"])
                for row in rows
                if row["group_id"] is not None
            )
        ),
        version=(
            first["meetings"],
            first["meetings_updated"],
            first["series"],
            first["series_updated"],
        ),
    )


async def calendar_version(
    session: AsyncConnection, group_ids: Sequence[uuid.UUID]
) -> tuple[int, datetime | None, int, datetime | None]:
    """What changes whenever anything a calendar of these groups shows changes (an occurrence or
    series written, deleted or added: every write sets `updated_at`), through the owner's
    function (migration 0013), for those of the groups the tenant is an active member of."""
    [row] = await driver_fetch(
        session,
        "SELECT meetings, meetings_updated, series, series_updated "
        "FROM meeting_calendar_version($1::uuid[])",
        list(group_ids),
    )
    return (row["meetings"], row["meetings_updated"], row["series"], row["series_updated"])
