"""Every meeting query. They filter by group as well; RLS (`wg_group_role`) is the net."""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import msgspec
import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncConnection

from wg_api.meetings.models import (
    action_items,
    agenda_items,
    meeting_attendance,
    meeting_minutes,
    meeting_reminders,
    meeting_rsvps,
    meeting_series,
    meetings,
)
from wg_api.platform.models import Record


@dataclass(frozen=True)
class MeetingRecord:
    """One occurrence as stored; `my_rsvp` is the reading tenant's answer when it was asked for."""

    id: uuid.UUID
    working_group_id: uuid.UUID
    series_id: uuid.UUID | None
    series_index: int | None
    title: str
    description: str | None
    start_local: datetime
    timezone: str
    starts_at: datetime
    ends_at: datetime
    duration_minutes: int
    location: dict[str, Any]
    status: str
    cancel_reason: str | None
    sequence: int
    recurrence_id: datetime | None
    is_exception: bool
    reminders_minutes_before: list[int]
    created_at: datetime
    updated_at: datetime
    my_rsvp: str | None = None


@dataclass(frozen=True)
class SeriesRecord:
    id: uuid.UUID
    working_group_id: uuid.UUID
    rrule: str
    timezone: str
    start_local: datetime
    duration_minutes: int
    title: str
    description: str | None
    location: dict[str, Any]
    reminders_minutes_before: list[int]
    sequence: int
    created_at: datetime
    updated_at: datetime


_MEETING_FIELDS = tuple(name for name in MeetingRecord.__dataclass_fields__ if name != "my_rsvp")
# Location comes as text and is decoded by msgspec: the driver's JSON decoding is the slow part
# of reading a year of occurrences.
_MEETING_COLUMNS = tuple(
    sa.cast(meetings.c.location, sa.Text).label("location")
    if name == "location"
    else meetings.c[name]
    for name in _MEETING_FIELDS
)
_LOCATION = _MEETING_FIELDS.index("location")
_SERIES_COLUMNS = tuple(meeting_series.c[name] for name in SeriesRecord.__dataclass_fields__)
_json = msgspec.json.Decoder(dict[str, Any])


def _meeting(row: Record) -> MeetingRecord:
    """Columns in the record's field order (`my_rsvp` last when selected)."""
    values = list(row)
    values[_LOCATION] = _json.decode(values[_LOCATION])
    return MeetingRecord(*values)


def _series(row: Record) -> SeriesRecord:
    return SeriesRecord(**dict(row._mapping))


def _with_rsvp(tenant_id: uuid.UUID | None) -> sa.Select[Any]:
    if tenant_id is None:
        return sa.select(*_MEETING_COLUMNS)
    answer = (
        sa.select(meeting_rsvps.c.response)
        .where(meeting_rsvps.c.meeting_id == meetings.c.id, meeting_rsvps.c.tenant_id == tenant_id)
        .scalar_subquery()
        .label("my_rsvp")
    )
    return sa.select(*_MEETING_COLUMNS, answer)


async def insert_series(session: AsyncConnection, values: dict[str, Any]) -> None:
    await session.execute(sa.insert(meeting_series).values(**values))


async def update_series(
    session: AsyncConnection, series_id: uuid.UUID, values: dict[str, Any]
) -> None:
    await session.execute(
        sa.update(meeting_series)
        .where(meeting_series.c.id == series_id)
        .values(**values, updated_at=sa.func.now())
    )


async def series(
    session: AsyncConnection, series_id: uuid.UUID, *, lock: bool = False
) -> SeriesRecord | None:
    statement = sa.select(*_SERIES_COLUMNS).where(meeting_series.c.id == series_id)
    if lock:
        statement = statement.with_for_update()
    row = (await session.execute(statement)).one_or_none()
    return _series(row) if row is not None else None


async def series_many(
    session: AsyncConnection, series_ids: Iterable[uuid.UUID]
) -> list[SeriesRecord]:
    ids = list(set(series_ids))
    if not ids:
        return []
    rows = await session.execute(sa.select(*_SERIES_COLUMNS).where(meeting_series.c.id.in_(ids)))
    return [_series(row) for row in rows]


async def series_counts(session: AsyncConnection, series_id: uuid.UUID) -> int:
    return int(
        await session.scalar(
            sa.select(sa.func.count())
            .select_from(meetings)
            .where(meetings.c.series_id == series_id)
        )
        or 0
    )


async def insert_meetings(session: AsyncConnection, rows: Sequence[dict[str, Any]]) -> None:
    if rows:
        await session.execute(sa.insert(meetings), list(rows))


async def meeting(
    session: AsyncConnection,
    meeting_id: uuid.UUID,
    *,
    tenant_id: uuid.UUID | None = None,
    lock: bool = False,
) -> MeetingRecord | None:
    statement = _with_rsvp(tenant_id).where(meetings.c.id == meeting_id)
    if lock:
        statement = statement.with_for_update(of=meetings)
    row = (await session.execute(statement)).one_or_none()
    return _meeting(row) if row is not None else None


async def series_meetings(session: AsyncConnection, series_id: uuid.UUID) -> list[MeetingRecord]:
    rows = await session.execute(
        sa.select(*_MEETING_COLUMNS)
        .where(meetings.c.series_id == series_id)
        .order_by(meetings.c.series_index)
        .with_for_update()
    )
    return [_meeting(row) for row in rows]


async def update_meeting(
    session: AsyncConnection, meeting_id: uuid.UUID, values: dict[str, Any]
) -> None:
    await session.execute(
        sa.update(meetings)
        .where(meetings.c.id == meeting_id)
        .values(**values, updated_at=sa.func.now())
    )


async def raise_sequences(session: AsyncConnection, meeting_ids: Iterable[uuid.UUID]) -> None:
    ids = list(meeting_ids)
    if ids:
        await session.execute(
            sa.update(meetings)
            .where(meetings.c.id.in_(ids))
            .values(sequence=meetings.c.sequence + 1, updated_at=sa.func.now())
        )


async def delete_meetings(session: AsyncConnection, meeting_ids: Iterable[uuid.UUID]) -> None:
    ids = list(meeting_ids)
    if ids:
        await session.execute(sa.delete(meetings).where(meetings.c.id.in_(ids)))


async def occurrences(
    session: AsyncConnection,
    group_ids: Sequence[uuid.UUID],
    *,
    starts_from: datetime,
    starts_before: datetime,
    status: str | None = None,
    tenant_id: uuid.UUID | None = None,
    after: tuple[datetime, uuid.UUID] | None = None,
    limit: int | None = None,
) -> list[MeetingRecord]:
    statement = (
        _with_rsvp(tenant_id)
        .where(
            meetings.c.working_group_id.in_(list(group_ids)),
            meetings.c.starts_at >= starts_from,
            meetings.c.starts_at < starts_before,
        )
        .order_by(meetings.c.starts_at, meetings.c.id)
    )
    if status is not None:
        statement = statement.where(meetings.c.status == status)
    if after is not None:
        statement = statement.where(sa.tuple_(meetings.c.starts_at, meetings.c.id) > after)
    if limit is not None:
        statement = statement.limit(limit)
    return [_meeting(row) for row in await session.execute(statement)]


async def busy_times(
    session: AsyncConnection, group_id: uuid.UUID, starts_from: datetime, ends_after: datetime
) -> list[tuple[uuid.UUID, datetime, datetime]]:
    """When each member tenant of the group is in a meeting of another of its groups (times
    only, through the owner's function: the caller cannot read those groups)."""
    rows = await session.execute(
        sa.text("SELECT * FROM meeting_slot_busy_times(:group, :begin, :end)"),
        {"group": group_id, "begin": starts_from, "end": ends_after},
    )
    return [(row.busy_tenant, row.busy_from, row.busy_to) for row in rows]


# Reminders ------------------------------------------------------------------------------------


async def replace_reminders(
    session: AsyncConnection, meeting_ids: Sequence[uuid.UUID], rows: Sequence[dict[str, Any]]
) -> None:
    """Forget the unsent reminders of these meetings and plan `rows` instead; a reminder already
    sent for the same start and offset is not planned again."""
    if meeting_ids:
        await session.execute(
            sa.delete(meeting_reminders).where(
                meeting_reminders.c.meeting_id.in_(list(meeting_ids)),
                meeting_reminders.c.sent_at.is_(None),
            )
        )
    if rows:
        await session.execute(insert(meeting_reminders).on_conflict_do_nothing(), list(rows))


async def send_due_reminders(
    session: AsyncConnection, now: datetime, limit: int
) -> tuple[int, int]:
    """As the system role, through the owner's function (migration 0012): mark due reminders
    sent and write their events, in the caller's transaction. A reminder whose meeting was
    cancelled, moved or has started meanwhile is marked and dropped. Answers (marked, written)."""
    row = (
        await session.execute(
            sa.text("SELECT marked, written FROM send_meeting_reminders(:now, :limit)"),
            {"now": now, "limit": limit},
        )
    ).one()
    return int(row.marked), int(row.written)


async def open_ended_series_owners(session: AsyncConnection) -> list[tuple[uuid.UUID, uuid.UUID]]:
    """As the system role: each series with neither COUNT nor UNTIL, with an active facilitator
    of its group to extend it for (a group without one keeps what it has)."""
    rows = await session.execute(
        sa.text("SELECT series_id, facilitator_tenant_id FROM open_ended_meeting_series()")
    )
    return [(row.series_id, row.facilitator_tenant_id) for row in rows]


async def series_by_id(session: AsyncConnection, series_id: uuid.UUID) -> SeriesRecord | None:
    row = (
        await session.execute(sa.select(*_SERIES_COLUMNS).where(meeting_series.c.id == series_id))
    ).one_or_none()
    return _series(row) if row is not None else None


async def last_of_series(session: AsyncConnection, series_id: uuid.UUID) -> MeetingRecord | None:
    row = (
        await session.execute(
            sa.select(*_MEETING_COLUMNS)
            .where(meetings.c.series_id == series_id)
            .order_by(meetings.c.series_index.desc())
            .limit(1)
        )
    ).one_or_none()
    return _meeting(row) if row is not None else None


# Events ---------------------------------------------------------------------------------------


async def publish(
    session: AsyncConnection,
    group_id: uuid.UUID,
    type: str,
    data: dict[str, Any],
    *,
    roles: Sequence[str] | None = None,
    tenant_id: uuid.UUID | None = None,
) -> None:
    """`type` into the feed of every active member tenant of the group (of `roles`, or one)."""
    await session.execute(
        sa.text(
            "SELECT publish_meeting_event(:group_id, :type, CAST(:data AS jsonb), "
            "CAST(:roles AS text[]), CAST(:tenant AS uuid))"
        ),
        {
            "group_id": group_id,
            "type": type,
            "data": msgspec.json.encode(data).decode(),
            "roles": list(roles) if roles is not None else None,
            "tenant": tenant_id,
        },
    )


# RSVPs ----------------------------------------------------------------------------------------


async def upsert_rsvp(session: AsyncConnection, values: dict[str, Any]) -> Record:
    base = insert(meeting_rsvps).values(**values)
    statement = base.on_conflict_do_update(
        index_elements=[meeting_rsvps.c.meeting_id, meeting_rsvps.c.tenant_id],
        set_={
            "response": base.excluded.response,
            "attendees": base.excluded.attendees,
            "comment": base.excluded.comment,
            "updated_at": sa.func.now(),
        },
    ).returning(*meeting_rsvps.c)
    return (await session.execute(statement)).one()


async def rsvps(session: AsyncConnection, meeting_id: uuid.UUID) -> list[Record]:
    rows = await session.execute(
        sa.select(*meeting_rsvps.c)
        .where(meeting_rsvps.c.meeting_id == meeting_id)
        .order_by(meeting_rsvps.c.updated_at, meeting_rsvps.c.tenant_id)
    )
    return list(rows.all())


# Agenda ---------------------------------------------------------------------------------------


async def insert_agenda_item(session: AsyncConnection, values: dict[str, Any]) -> Record:
    return (
        await session.execute(sa.insert(agenda_items).values(**values).returning(*agenda_items.c))
    ).one()


async def agenda(
    session: AsyncConnection, meeting_id: uuid.UUID, *, lock: bool = False
) -> list[Record]:
    statement = (
        sa.select(*agenda_items.c)
        .where(agenda_items.c.meeting_id == meeting_id)
        .order_by(agenda_items.c.created_at, agenda_items.c.id)
    )
    if lock:
        statement = statement.with_for_update()
    return list((await session.execute(statement)).all())


async def agenda_count(session: AsyncConnection, meeting_id: uuid.UUID) -> int:
    return int(
        await session.scalar(
            sa.select(sa.func.count())
            .select_from(agenda_items)
            .where(agenda_items.c.meeting_id == meeting_id)
        )
        or 0
    )


async def agenda_item(session: AsyncConnection, item_id: uuid.UUID) -> Record | None:
    return (
        await session.execute(sa.select(*agenda_items.c).where(agenda_items.c.id == item_id))
    ).one_or_none()


async def update_agenda_item(
    session: AsyncConnection, item_id: uuid.UUID, values: dict[str, Any]
) -> None:
    await session.execute(
        sa.update(agenda_items)
        .where(agenda_items.c.id == item_id)
        .values(**values, updated_at=sa.func.now())
    )


async def delete_agenda_item(session: AsyncConnection, item_id: uuid.UUID) -> None:
    await session.execute(sa.delete(agenda_items).where(agenda_items.c.id == item_id))


# Minutes and action items ---------------------------------------------------------------------


async def minutes(
    session: AsyncConnection, meeting_id: uuid.UUID, *, lock: bool = False
) -> Record | None:
    statement = sa.select(*meeting_minutes.c).where(meeting_minutes.c.meeting_id == meeting_id)
    if lock:
        statement = statement.with_for_update()
    return (await session.execute(statement)).one_or_none()


async def save_draft(
    session: AsyncConnection, meeting_id: uuid.UUID, group_id: uuid.UUID, draft: dict[str, Any]
) -> Record:
    base = insert(meeting_minutes).values(
        meeting_id=meeting_id,
        working_group_id=group_id,
        draft=draft,
        draft_updated_at=sa.func.now(),
    )
    statement = base.on_conflict_do_update(
        index_elements=[meeting_minutes.c.meeting_id],
        set_={"draft": base.excluded.draft, "draft_updated_at": sa.func.now()},
    ).returning(*meeting_minutes.c)
    return (await session.execute(statement)).one()


async def publish_minutes(session: AsyncConnection, meeting_id: uuid.UUID) -> Record:
    return (
        await session.execute(
            sa.update(meeting_minutes)
            .where(meeting_minutes.c.meeting_id == meeting_id)
            .values(
                published=meeting_minutes.c.draft,
                published_at=sa.func.now(),
                revision=meeting_minutes.c.revision + 1,
            )
            .returning(*meeting_minutes.c)
        )
    ).one()


async def meeting_action_items(session: AsyncConnection, meeting_id: uuid.UUID) -> list[Record]:
    rows = await session.execute(
        sa.select(*action_items.c)
        .where(action_items.c.meeting_id == meeting_id)
        .order_by(action_items.c.created_at, action_items.c.id)
        .with_for_update()
    )
    return list(rows.all())


async def delete_action_items(session: AsyncConnection, item_ids: Iterable[uuid.UUID]) -> None:
    ids = list(item_ids)
    if ids:
        await session.execute(sa.delete(action_items).where(action_items.c.id.in_(ids)))


async def insert_action_item(session: AsyncConnection, values: dict[str, Any]) -> None:
    # The clock, not the transaction's start: items of one publish list in the minutes' order.
    await session.execute(
        sa.insert(action_items).values(created_at=sa.func.clock_timestamp(), **values)
    )


async def update_action_item(
    session: AsyncConnection, item_id: uuid.UUID, values: dict[str, Any]
) -> None:
    await session.execute(
        sa.update(action_items)
        .where(action_items.c.id == item_id)
        .values(**values, updated_at=sa.func.now())
    )


async def action_item(session: AsyncConnection, item_id: uuid.UUID) -> Record | None:
    return (
        await session.execute(sa.select(*action_items.c).where(action_items.c.id == item_id))
    ).one_or_none()


async def group_action_items(
    session: AsyncConnection,
    group_id: uuid.UUID,
    *,
    status: str | None,
    owner: uuid.UUID | None,
    after: tuple[datetime, uuid.UUID] | None,
    limit: int,
) -> list[Record]:
    statement = (
        sa.select(*action_items.c)
        .where(action_items.c.working_group_id == group_id)
        .order_by(action_items.c.created_at, action_items.c.id)
        .limit(limit)
    )
    if status is not None:
        statement = statement.where(action_items.c.status == status)
    if owner is not None:
        statement = statement.where(action_items.c.owner_tenant_id == owner)
    if after is not None:
        statement = statement.where(sa.tuple_(action_items.c.created_at, action_items.c.id) > after)
    return list((await session.execute(statement)).all())


# Attendance -----------------------------------------------------------------------------------


async def replace_attendance(
    session: AsyncConnection, meeting_id: uuid.UUID, rows: Sequence[dict[str, Any]]
) -> None:
    await session.execute(
        sa.delete(meeting_attendance).where(meeting_attendance.c.meeting_id == meeting_id)
    )
    if rows:
        await session.execute(sa.insert(meeting_attendance), list(rows))


async def attendance(session: AsyncConnection, meeting_id: uuid.UUID) -> list[Record]:
    rows = await session.execute(
        sa.select(*meeting_attendance.c)
        .where(meeting_attendance.c.meeting_id == meeting_id)
        .order_by(meeting_attendance.c.recorded_at, meeting_attendance.c.tenant_id)
    )
    return list(rows.all())
