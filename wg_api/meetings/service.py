"""Meeting rules: series and occurrences, changes by scope, RSVPs, agenda, minutes, action items,
attendance, reminders and events.

Organisers are the group's facilitators; every member tenant reads and RSVPs, members and
facilitators propose agenda items. A meeting of a group the caller is not in is a 404 exactly like
a random id. Times: a series is a local wall time plus an IANA zone (design decision 8), expanded by
`recurrence`; every occurrence is a row with its own id, so RSVPs, agenda, minutes and attendance
belong to one occurrence.

For other domains (calendars, meeting slots): `list_occurrences` and `series_records` read
occurrences and series as typed records, `require_access` checks that a tenant may read a meeting.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import Any

import msgspec
from sqlalchemy.ext.asyncio import AsyncConnection

from wg_api.identity import service as identity
from wg_api.meetings import repository
from wg_api.meetings.recurrence import (
    Occurrence,
    RecurrenceError,
    Rule,
    expand,
    parse_rule,
    require_existing,
    to_local,
    to_utc,
)
from wg_api.meetings.repository import MeetingRecord, SeriesRecord
from wg_api.meetings.schemas import (
    ActionItem,
    ActionItemIn,
    ActionItemPatch,
    AgendaItem,
    AgendaItemIn,
    AgendaItemPatch,
    Attendance,
    AttendanceEntry,
    AttendanceIn,
    Attendee,
    CancelIn,
    Decision,
    Location,
    Meeting,
    MeetingIn,
    MeetingPatch,
    MeetingSeries,
    Minutes,
    MinutesIn,
    Rsvp,
    RsvpIn,
    RsvpList,
    RsvpSummary,
)
from wg_api.platform.database import Database
from wg_api.platform.errors import Conflict, FieldError, Forbidden, NotFound, ValidationFailed
from wg_api.platform.pagination import Page, identifier, keyset, moment, paginate, whole_number
from wg_api.platform.validation import is_valid_timezone
from wg_api.working_groups import service as groups
from wg_api.working_groups.schemas import TenantRef
from wg_api.working_groups.service import Membership

MEETING_NOT_FOUND = "No such meeting."
SERIES_NOT_FOUND = "No such meeting series."
AGENDA_ITEM_NOT_FOUND = "No such agenda item."
ACTION_ITEM_NOT_FOUND = "No such action item."
DEFAULT_WINDOW = timedelta(days=365)
MAX_AGENDA_ITEMS = 200
REMINDER_BATCH = 1000
FACILITATORS = ("facilitator",)


class MeetingInThePast(Conflict):
    kind = "meeting-in-the-past"
    title = "Meeting in the past"
    description = (
        "The occurrence has ended: it cannot be changed or cancelled on its own. RSVPs, minutes "
        "and attendance may still be written."
    )


@dataclass(frozen=True)
class MeetingAccess:
    """A meeting the caller may read, and the caller's membership of its group."""

    member: Membership
    meeting: MeetingRecord

    @property
    def tenant_id(self) -> uuid.UUID:
        return self.member.tenant_id


@dataclass(frozen=True)
class Template:
    """What every (non-exception) occurrence of a series, or a single meeting, is made from."""

    title: str
    description: str | None
    location: dict[str, Any]
    duration_minutes: int
    reminders: tuple[int, ...]
    timezone: str
    start_local: datetime


# Reading -----------------------------------------------------------------------------------------


def start_text(local: datetime) -> str:
    return local.strftime("%Y-%m-%dT%H:%M")


def meeting_out(record: MeetingRecord) -> Meeting:
    return Meeting(
        id=record.id,
        series_id=record.series_id,
        working_group_id=record.working_group_id,
        title=record.title,
        description=record.description,
        start_local=start_text(record.start_local),
        timezone=record.timezone,
        starts_at=record.starts_at,
        ends_at=record.ends_at,
        duration_minutes=record.duration_minutes,
        location=msgspec.convert(record.location, Location),
        status=record.status,  # type: ignore[arg-type]
        cancel_reason=record.cancel_reason,
        sequence=record.sequence,
        recurrence_id=record.recurrence_id,
        is_exception=record.is_exception,
        reminders_minutes_before=list(record.reminders_minutes_before),
        my_rsvp=record.my_rsvp,  # type: ignore[arg-type]
        created_at=record.created_at,
        updated_at=record.updated_at,
    )


def _utc_text(instant: datetime) -> str:
    return instant.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _event(record: MeetingRecord, **extra: Any) -> dict[str, Any]:
    return {
        "meeting_id": str(record.id),
        "series_id": str(record.series_id) if record.series_id else None,
        "working_group_id": str(record.working_group_id),
        "title": record.title,
        "starts_at": _utc_text(record.starts_at),
        **extra,
    }


async def require_access(
    session: AsyncConnection, tenant_id: uuid.UUID, meeting_id: uuid.UUID
) -> MeetingAccess:
    """The meeting and the caller's membership, or 404 exactly as for a random id."""
    record = await repository.meeting(session, meeting_id, tenant_id=tenant_id)
    member = (
        await groups.membership(session, record.working_group_id, tenant_id) if record else None
    )
    if record is None or member is None:
        raise NotFound(MEETING_NOT_FOUND)
    return MeetingAccess(member, record)


async def _organise(session: AsyncConnection, access: MeetingAccess) -> MeetingAccess:
    """A facilitator's hold on the meeting: its series (first, so changes of one series queue
    up rather than deadlock) and the occurrence, locked and read again."""
    groups.require_facilitator(access.member)
    if access.meeting.series_id is not None:
        await repository.series(session, access.meeting.series_id, lock=True)
    record = await repository.meeting(
        session, access.meeting.id, tenant_id=access.tenant_id, lock=True
    )
    if record is None:
        raise NotFound(MEETING_NOT_FOUND)
    return MeetingAccess(access.member, record)


async def get_meeting(session: AsyncConnection, access: MeetingAccess) -> Meeting:
    return meeting_out(access.meeting)


async def list_occurrences(
    session: AsyncConnection,
    group_ids: Sequence[uuid.UUID],
    starts_from: datetime,
    starts_before: datetime,
    *,
    status: str | None = None,
) -> list[MeetingRecord]:
    """Occurrences of these groups with `starts_at` in [from, to), by start: for calendars and
    slots. RLS shows only groups the session's tenant is an active member of."""
    return await repository.occurrences(
        session, group_ids, starts_from=starts_from, starts_before=starts_before, status=status
    )


async def member_busy_times(
    session: AsyncConnection, group_id: uuid.UUID, starts_from: datetime, starts_before: datetime
) -> list[tuple[uuid.UUID, datetime, datetime]]:
    """For meeting slots: `(tenant_id, starts_at, ends_at)` of the scheduled meetings of the
    group's member tenants (members and facilitators) in their other groups, overlapping
    [from, to); nothing unless the session's tenant is an active member of the group."""
    return await repository.busy_times(session, group_id, starts_from, starts_before)


async def series_records(
    session: AsyncConnection, series_ids: Iterable[uuid.UUID]
) -> dict[uuid.UUID, SeriesRecord]:
    return {record.id: record for record in await repository.series_many(session, series_ids)}


async def list_meetings(
    session: AsyncConnection,
    member: Membership,
    *,
    starts_from: datetime | None,
    starts_before: datetime | None,
    status: str | None,
    after: tuple[Any, ...] | None,
    limit: int,
    now: datetime,
) -> Page[Meeting]:
    begin = starts_from or now
    end = starts_before or begin + DEFAULT_WINDOW
    if end <= begin:
        raise ValidationFailed(
            "The window is empty.", errors=[FieldError("to", "must be after `from`")]
        )
    rows = await repository.occurrences(
        session,
        [member.group_id],
        starts_from=begin,
        starts_before=end,
        status=status,
        tenant_id=member.tenant_id,
        after=keyset(after, moment, identifier),
        limit=limit + 1,
    )
    return paginate([meeting_out(r) for r in rows], limit, lambda m: [m.starts_at, m.id])


def _series_out(record: SeriesRecord, occurrences: int) -> MeetingSeries:
    rule = parse_rule(record.rrule)
    return MeetingSeries(
        id=record.id,
        working_group_id=record.working_group_id,
        title=record.title,
        rrule=record.rrule,
        timezone=record.timezone,
        start_local=start_text(record.start_local),
        duration_minutes=record.duration_minutes,
        occurrences=occurrences,
        until=rule.until,
        sequence=record.sequence,
        created_at=record.created_at,
        updated_at=record.updated_at,
    )


async def get_series(
    session: AsyncConnection, tenant_id: uuid.UUID, series_id: uuid.UUID
) -> MeetingSeries:
    record = await repository.series(session, series_id)
    if (
        record is None
        or await groups.membership(session, record.working_group_id, tenant_id) is None
    ):
        raise NotFound(SERIES_NOT_FOUND)
    return _series_out(record, await repository.series_counts(session, series_id))


# Validation --------------------------------------------------------------------------------------


def _parse_start(text: str, errors: list[FieldError]) -> datetime | None:
    try:
        return datetime.fromisoformat(text)
    except ValueError:
        errors.append(FieldError("start_local", "is not a valid date and time"))
        return None


def _location_errors(location: Location) -> list[FieldError]:
    errors = []
    if location.mode in ("online", "hybrid") and not location.online_url:
        errors.append(
            FieldError("location.online_url", f"is required for a {location.mode} meeting")
        )
    if location.mode in ("in_person", "hybrid") and not (location.venue or location.address):
        errors.append(
            FieldError("location.venue", f"a venue or address is required for {location.mode}")
        )
    return errors


def _reminder_errors(reminders: Sequence[int]) -> list[FieldError]:
    if len(set(reminders)) != len(reminders):
        return [FieldError("reminders_minutes_before", "must not repeat an offset")]
    return []


def _invalid(errors: list[FieldError]) -> ValidationFailed:
    return ValidationFailed("The meeting is not valid.", errors=errors)


def _recurrence_failed(error: RecurrenceError) -> ValidationFailed:
    return _invalid([FieldError(error.field, error.message)])


def _expand(rule: Rule | None, template: Template, now: datetime) -> list[Occurrence]:
    try:
        if rule is None:
            require_existing(template.start_local, template.timezone)
            instant = to_utc(template.start_local, template.timezone)
            return [Occurrence(0, template.start_local, instant)]
        return expand(rule, template.start_local, template.timezone, now=now)
    except RecurrenceError as error:
        raise _recurrence_failed(error) from error


def _parse_rule(text: str) -> Rule:
    try:
        return parse_rule(text)
    except RecurrenceError as error:
        raise _recurrence_failed(error) from error


def _apply(template: Template, patch: MeetingPatch) -> Template:
    """The template with the patch's fields; 422 for values that cannot be."""
    errors: list[FieldError] = []
    changes: dict[str, Any] = {}
    if patch.title is not msgspec.UNSET:
        if not patch.title.strip():
            errors.append(FieldError("title", "must not be blank"))
        changes["title"] = patch.title.strip()
    if patch.description is not msgspec.UNSET:
        changes["description"] = patch.description
    if patch.location is not msgspec.UNSET:
        errors.extend(_location_errors(patch.location))
        changes["location"] = msgspec.to_builtins(patch.location)
    if patch.duration_minutes is not msgspec.UNSET:
        changes["duration_minutes"] = patch.duration_minutes
    if patch.reminders_minutes_before is not msgspec.UNSET:
        errors.extend(_reminder_errors(patch.reminders_minutes_before))
        changes["reminders"] = tuple(patch.reminders_minutes_before)
    if patch.timezone is not msgspec.UNSET:
        if not is_valid_timezone(patch.timezone):
            errors.append(
                FieldError("timezone", "must be an IANA time zone such as Asia/Hong_Kong")
            )
        changes["timezone"] = patch.timezone
    if patch.start_local is not msgspec.UNSET:
        start = _parse_start(patch.start_local, errors)
        if start is not None:
            changes["start_local"] = start
    if errors:
        raise _invalid(errors)
    return replace(template, **changes)


def _record_template(record: MeetingRecord) -> Template:
    return Template(
        title=record.title,
        description=record.description,
        location=record.location,
        duration_minutes=record.duration_minutes,
        reminders=tuple(record.reminders_minutes_before),
        timezone=record.timezone,
        start_local=record.start_local,
    )


def _series_template(record: SeriesRecord) -> Template:
    return Template(
        title=record.title,
        description=record.description,
        location=record.location,
        duration_minutes=record.duration_minutes,
        reminders=tuple(record.reminders_minutes_before),
        timezone=record.timezone,
        start_local=record.start_local,
    )


def _template_columns(template: Template) -> dict[str, Any]:
    return {
        "title": template.title,
        "description": template.description,
        "location": template.location,
        "duration_minutes": template.duration_minutes,
        "reminders_minutes_before": list(template.reminders),
        "timezone": template.timezone,
    }


def _timing(template: Template, occurrence: Occurrence) -> dict[str, Any]:
    return {
        "start_local": occurrence.start_local,
        "starts_at": occurrence.starts_at,
        "ends_at": occurrence.starts_at + timedelta(minutes=template.duration_minutes),
    }


def _reminder_rows(records: Iterable[MeetingRecord], now: datetime) -> list[dict[str, Any]]:
    """The reminders still ahead for these occurrences; an offset already past is skipped."""
    rows = []
    for record in records:
        if record.status != "scheduled":
            continue
        for minutes in record.reminders_minutes_before:
            due = record.starts_at - timedelta(minutes=minutes)
            if due > now:
                rows.append(
                    {
                        "meeting_id": record.id,
                        "working_group_id": record.working_group_id,
                        "minutes_before": minutes,
                        "starts_at": record.starts_at,
                        "due_at": due,
                    }
                )
    return rows


async def _plan_reminders(
    session: AsyncConnection, meeting_ids: Sequence[uuid.UUID], tenant_id: uuid.UUID, now: datetime
) -> None:
    records = [
        r
        for r in [await repository.meeting(session, i, tenant_id=tenant_id) for i in meeting_ids]
        if r is not None
    ]
    await repository.replace_reminders(session, meeting_ids, _reminder_rows(records, now))


# Creating ----------------------------------------------------------------------------------------


async def create_meeting(
    session: AsyncConnection, member: Membership, data: MeetingIn, now: datetime
) -> Meeting:
    groups.require_facilitator(member)
    zone = data.timezone or member.group.timezone
    errors: list[FieldError] = []
    if not data.title.strip():
        errors.append(FieldError("title", "must not be blank"))
    if not is_valid_timezone(zone):
        errors.append(FieldError("timezone", "must be an IANA time zone such as Asia/Hong_Kong"))
    errors.extend(_location_errors(data.location))
    errors.extend(_reminder_errors(data.reminders_minutes_before))
    start = _parse_start(data.start_local, errors)
    if errors or start is None:
        raise _invalid(errors)
    rule = _parse_rule(data.rrule) if data.rrule is not None else None
    template = Template(
        title=data.title.strip(),
        description=data.description,
        location=msgspec.to_builtins(data.location),
        duration_minutes=data.duration_minutes,
        reminders=tuple(data.reminders_minutes_before),
        timezone=zone,
        start_local=start,
    )
    found = _expand(rule, template, now)
    if found[0].starts_at <= now:
        raise _invalid([FieldError("start_local", "a new meeting cannot start in the past")])
    series_id = uuid.uuid4() if rule is not None else None
    if rule is not None:
        await repository.insert_series(
            session,
            {
                "id": series_id,
                "working_group_id": member.group_id,
                "rrule": rule.text(),
                "start_local": start,
                **_template_columns(template),
            },
        )
    ids = [uuid.uuid4() for _ in found]
    await repository.insert_meetings(
        session,
        [
            {
                "id": meeting_id,
                "working_group_id": member.group_id,
                "series_id": series_id,
                "series_index": occurrence.index if series_id else None,
                "recurrence_id": occurrence.starts_at if series_id else None,
                **_template_columns(template),
                **_timing(template, occurrence),
            }
            for meeting_id, occurrence in zip(ids, found, strict=True)
        ],
    )
    await repository.replace_reminders(
        session, [], _reminder_rows(_planned(member.group_id, ids, found, template), now)
    )
    first = await repository.meeting(session, ids[0], tenant_id=member.tenant_id)
    assert first is not None
    await repository.publish(
        session, member.group_id, "meeting.scheduled", _event(first, occurrences=len(found))
    )
    return meeting_out(first)


def _planned(
    group_id: uuid.UUID, ids: Sequence[uuid.UUID], found: Sequence[Occurrence], template: Template
) -> list[MeetingRecord]:
    """Stand-in records of occurrences about to be inserted, for planning their reminders."""
    return [
        MeetingRecord(
            id=meeting_id,
            working_group_id=group_id,
            series_id=None,
            series_index=None,
            title=template.title,
            description=None,
            start_local=occurrence.start_local,
            timezone=template.timezone,
            starts_at=occurrence.starts_at,
            ends_at=occurrence.starts_at,
            duration_minutes=template.duration_minutes,
            location={},
            status="scheduled",
            cancel_reason=None,
            sequence=0,
            recurrence_id=None,
            is_exception=False,
            reminders_minutes_before=list(template.reminders),
            created_at=occurrence.starts_at,
            updated_at=occurrence.starts_at,
        )
        for meeting_id, occurrence in zip(ids, found, strict=True)
    ]


# Changing ----------------------------------------------------------------------------------------


async def change_meeting(
    session: AsyncConnection, access: MeetingAccess, patch: MeetingPatch, now: datetime
) -> Meeting:
    access = await _organise(session, access)
    record = access.meeting
    if patch.rrule is not msgspec.UNSET and (patch.scope == "this" or record.series_id is None):
        reason = (
            "only with scope `series` or `this_and_following`"
            if record.series_id is not None
            else "a single meeting cannot become a series; create a series instead"
        )
        raise _invalid([FieldError("rrule", reason)])
    if record.series_id is None or patch.scope == "this":
        changed = await _change_one(session, access, patch, now)
    elif patch.scope == "series" or record.series_index == 0:
        changed = await _change_series(session, access, patch, now)
    else:
        changed = await _change_following(session, access, patch, now)
    if changed is None:
        return meeting_out(access.meeting)
    await repository.publish(
        session, changed.working_group_id, "meeting.updated", _event(changed, scope=patch.scope)
    )
    return meeting_out(changed)


async def _change_one(
    session: AsyncConnection, access: MeetingAccess, patch: MeetingPatch, now: datetime
) -> MeetingRecord | None:
    record = access.meeting
    if record.ends_at <= now:
        raise MeetingInThePast("This occurrence has ended; it can no longer be changed.")
    if record.status == "cancelled":
        raise Conflict("This meeting is cancelled; it can no longer be changed.")
    before = _record_template(record)
    after = _apply(before, patch)
    if after == before:
        return None
    values = _template_columns(after)
    if (after.start_local, after.timezone, after.duration_minutes) != (
        before.start_local,
        before.timezone,
        before.duration_minutes,
    ):
        [occurrence] = _expand(None, after, now)
        values.update(_timing(after, occurrence))
        if occurrence.starts_at != record.starts_at and occurrence.starts_at <= now:
            raise _invalid([FieldError("start_local", "a meeting cannot be moved into the past")])
    values["sequence"] = record.sequence + 1
    values["is_exception"] = record.series_id is not None
    await repository.update_meeting(session, record.id, values)
    await _plan_reminders(session, [record.id], access.tenant_id, now)
    return await repository.meeting(session, record.id, tenant_id=access.tenant_id)


async def _change_series(
    session: AsyncConnection, access: MeetingAccess, patch: MeetingPatch, now: datetime
) -> MeetingRecord | None:
    record = access.meeting
    assert record.series_id is not None
    series = await repository.series(session, record.series_id, lock=True)
    assert series is not None
    before = _series_template(series)
    after = _apply(before, patch)
    rule = (
        _parse_rule(patch.rrule) if patch.rrule is not msgspec.UNSET else parse_rule(series.rrule)
    )
    if after == before and rule.text() == series.rrule:
        return None
    found = _expand(rule, after, now)
    existing = await repository.series_meetings(session, series.id)
    await repository.update_series(
        session,
        series.id,
        {
            "rrule": rule.text(),
            "start_local": after.start_local,
            "sequence": series.sequence + 1,
            **_template_columns(after),
        },
    )
    touched = await _realign(session, series.id, record.working_group_id, existing, found, after)
    await _plan_reminders(session, touched, access.tenant_id, now)
    return await _same_or_first(session, access, series.id)


async def _change_following(
    session: AsyncConnection, access: MeetingAccess, patch: MeetingPatch, now: datetime
) -> MeetingRecord | None:
    record = access.meeting
    assert record.series_id is not None
    assert record.series_index is not None
    assert record.recurrence_id is not None
    series = await repository.series(session, record.series_id, lock=True)
    assert series is not None
    cut = record.series_index
    old_rule = parse_rule(series.rrule)
    base = replace(
        _series_template(series), start_local=to_local(record.recurrence_id, series.timezone)
    )
    after = _apply(base, patch)
    if patch.rrule is not msgspec.UNSET:
        new_rule = _parse_rule(patch.rrule)
    elif old_rule.count is not None:
        new_rule = old_rule.with_count(max(old_rule.count - cut, 1))
    else:
        new_rule = old_rule
    found = _expand(new_rule, after, now)
    existing = await repository.series_meetings(session, series.id)
    earlier, following = existing[:cut], existing[cut:]
    ended_rule = (
        old_rule.with_count(cut)
        if old_rule.count is not None
        else old_rule.with_until(record.recurrence_id - timedelta(seconds=1))
    )
    await repository.update_series(
        session, series.id, {"rrule": ended_rule.text(), "sequence": series.sequence + 1}
    )
    await repository.raise_sequences(session, [m.id for m in earlier])
    new_id = uuid.uuid4()
    await repository.insert_series(
        session,
        {
            "id": new_id,
            "working_group_id": series.working_group_id,
            "rrule": new_rule.text(),
            "start_local": after.start_local,
            "sequence": series.sequence + 1,
            **_template_columns(after),
        },
    )
    touched = await _realign(session, new_id, series.working_group_id, following, found, after)
    await _plan_reminders(session, touched, access.tenant_id, now)
    return await _same_or_first(session, access, new_id)


async def _realign(
    session: AsyncConnection,
    series_id: uuid.UUID,
    group_id: uuid.UUID,
    existing: Sequence[MeetingRecord],
    found: Sequence[Occurrence],
    template: Template,
) -> list[uuid.UUID]:
    """Make `existing` (in series order) the occurrences `found` of `series_id`, position by
    position: ids, RSVPs and agenda stay; exceptions keep their own fields but follow the rule's
    new RECURRENCE-ID; every occurrence's sequence goes up by one; extra ones go, missing ones
    are added. Answers the ids of the occurrences the series now has."""
    ids = []
    for old, occurrence in zip(existing, found, strict=False):
        values: dict[str, Any] = {
            "series_id": series_id,
            "series_index": occurrence.index,
            "recurrence_id": occurrence.starts_at,
            "sequence": old.sequence + 1,
        }
        if not old.is_exception:
            values.update(_template_columns(template))
            values.update(_timing(template, occurrence))
        await repository.update_meeting(session, old.id, values)
        ids.append(old.id)
    await repository.delete_meetings(session, [m.id for m in existing[len(found) :]])
    missing = found[len(existing) :]
    new_ids = [uuid.uuid4() for _ in missing]
    await repository.insert_meetings(
        session,
        [
            {
                "id": meeting_id,
                "working_group_id": group_id,
                "series_id": series_id,
                "series_index": occurrence.index,
                "recurrence_id": occurrence.starts_at,
                **_template_columns(template),
                **_timing(template, occurrence),
            }
            for meeting_id, occurrence in zip(new_ids, missing, strict=True)
        ],
    )
    return ids + new_ids


async def _same_or_first(
    session: AsyncConnection, access: MeetingAccess, series_id: uuid.UUID
) -> MeetingRecord:
    """The occurrence the change was called on, or the series' first if the new rule dropped it."""
    same = await repository.meeting(session, access.meeting.id, tenant_id=access.tenant_id)
    if same is not None:
        return same
    first = (await repository.series_meetings(session, series_id))[0]
    found = await repository.meeting(session, first.id, tenant_id=access.tenant_id)
    assert found is not None
    return found


async def cancel_meeting(
    session: AsyncConnection, access: MeetingAccess, data: CancelIn, now: datetime
) -> Meeting:
    access = await _organise(session, access)
    record = access.meeting
    scope = data.scope if record.series_id is not None else "this"
    cancelled = {"status": "cancelled", "cancel_reason": data.reason, "is_exception": True}
    if scope == "this":
        if record.ends_at <= now:
            raise MeetingInThePast("This occurrence has ended; it can no longer be cancelled.")
        if record.status == "cancelled":
            return meeting_out(record)
        cancelled["is_exception"] = record.series_id is not None
        await repository.update_meeting(
            session, record.id, {**cancelled, "sequence": record.sequence + 1}
        )
        targets = [record.id]
    else:
        assert record.series_id is not None
        assert record.series_index is not None
        series = await repository.series(session, record.series_id, lock=True)
        assert series is not None
        existing = await repository.series_meetings(session, series.id)
        start = 0 if scope == "series" else record.series_index
        targets = [m.id for m in existing[start:] if m.status == "scheduled" and m.ends_at > now]
        if not targets:
            return meeting_out(record)
        for meeting_id in targets:
            await repository.update_meeting(session, meeting_id, cancelled)
        await repository.raise_sequences(session, [m.id for m in existing])
        await repository.update_series(session, series.id, {"sequence": series.sequence + 1})
    await repository.replace_reminders(session, targets, [])
    changed = await repository.meeting(session, record.id, tenant_id=access.tenant_id)
    assert changed is not None
    await repository.publish(
        session,
        changed.working_group_id,
        "meeting.cancelled",
        _event(changed, scope=scope, reason=data.reason, occurrences_cancelled=len(targets)),
    )
    return meeting_out(changed)


# RSVPs -------------------------------------------------------------------------------------------


async def _tenant_refs(
    session: AsyncConnection, ids: Iterable[uuid.UUID]
) -> dict[uuid.UUID, TenantRef]:
    found = await identity.tenants_by_id(session, ids)
    return {t.id: TenantRef(id=t.id, slug=t.slug, name=t.name) for t in found.values()}


def _rsvp_out(row: Any, tenants: dict[uuid.UUID, TenantRef], *, show_emails: bool) -> Rsvp:
    attendees = [
        Attendee(name=a["name"], email=a.get("email") if show_emails else None)
        for a in row.attendees
    ]
    return Rsvp(
        tenant=tenants[row.tenant_id],
        response=row.response,
        attendees=attendees,
        comment=row.comment,
        updated_at=row.updated_at,
    )


async def put_rsvp(session: AsyncConnection, access: MeetingAccess, data: RsvpIn) -> Rsvp:
    if access.meeting.status == "cancelled":
        raise Conflict("This meeting is cancelled; it takes no RSVPs.")
    blank = [
        FieldError(f"attendees[{i}].name", "must not be blank")
        for i, a in enumerate(data.attendees)
        if not a.name.strip()
    ]
    if blank:
        raise ValidationFailed("The RSVP is not valid.", errors=blank)
    row = await repository.upsert_rsvp(
        session,
        {
            "meeting_id": access.meeting.id,
            "working_group_id": access.meeting.working_group_id,
            "tenant_id": access.tenant_id,
            "response": data.response,
            "attendees": [msgspec.to_builtins(a) for a in data.attendees],
            "comment": data.comment,
        },
    )
    return _rsvp_out(row, await _tenant_refs(session, [access.tenant_id]), show_emails=True)


async def list_rsvps(session: AsyncConnection, access: MeetingAccess) -> RsvpList:
    roles = await groups.member_roles(session, access.meeting.working_group_id)
    rows = [r for r in await repository.rsvps(session, access.meeting.id) if r.tenant_id in roles]
    tenants = await _tenant_refs(session, (r.tenant_id for r in rows))
    facilitator = access.member.is_facilitator
    items = [
        _rsvp_out(r, tenants, show_emails=facilitator or r.tenant_id == access.tenant_id)
        for r in rows
    ]
    counts = {
        answer: sum(r.response == answer for r in rows)
        for answer in ("accepted", "tentative", "declined")
    }
    return RsvpList(
        items=items,
        summary=RsvpSummary(**counts, no_response=len(roles) - len(rows)),
    )


# Agenda ------------------------------------------------------------------------------------------

_AGENDA_RANK = {"accepted": 0, "proposed": 1, "rejected": 2}
_LAST = 1_000_000


def _agenda_key(row: Any) -> tuple[int, int, datetime, uuid.UUID]:
    position = row.position if row.status == "accepted" and row.position else _LAST
    return (_AGENDA_RANK[row.status], position, row.created_at, row.id)


def _agenda_out(row: Any, tenants: dict[uuid.UUID, TenantRef]) -> AgendaItem:
    return AgendaItem(
        id=row.id,
        meeting_id=row.meeting_id,
        title=row.title,
        description=row.description,
        duration_minutes=row.duration_minutes,
        status=row.status,
        position=row.position,
        proposed_by=tenants[row.tenant_id],
        created_at=row.created_at,
        updated_at=row.updated_at,
    )


def _sees(member: Membership, row: Any) -> bool:
    return member.is_facilitator or row.status == "accepted" or row.tenant_id == member.tenant_id


async def propose_agenda_item(
    session: AsyncConnection, access: MeetingAccess, data: AgendaItemIn
) -> AgendaItem:
    if access.member.role == "observer":
        raise Forbidden("Observers read and RSVP; members and facilitators propose agenda items.")
    if access.meeting.status == "cancelled":
        raise Conflict("This meeting is cancelled; it takes no agenda items.")
    if not data.title.strip():
        raise ValidationFailed(
            "The agenda item is not valid.", errors=[FieldError("title", "must not be blank")]
        )
    if await repository.agenda_count(session, access.meeting.id) >= MAX_AGENDA_ITEMS:
        raise Conflict(f"A meeting takes at most {MAX_AGENDA_ITEMS} agenda items.")
    row = await repository.insert_agenda_item(
        session,
        {
            "id": uuid.uuid4(),
            "meeting_id": access.meeting.id,
            "working_group_id": access.meeting.working_group_id,
            "tenant_id": access.tenant_id,
            "title": data.title.strip(),
            "description": data.description,
            "duration_minutes": data.duration_minutes,
        },
    )
    await repository.publish(
        session,
        access.meeting.working_group_id,
        "agenda_item.proposed",
        _event(access.meeting, agenda_item_id=str(row.id), item_title=row.title),
        roles=FACILITATORS,
    )
    return _agenda_out(row, await _tenant_refs(session, [row.tenant_id]))


async def list_agenda(
    session: AsyncConnection, access: MeetingAccess, *, after: tuple[Any, ...] | None, limit: int
) -> Page[AgendaItem]:
    rows = sorted(
        (r for r in await repository.agenda(session, access.meeting.id) if _sees(access.member, r)),
        key=_agenda_key,
    )
    start = keyset(after, whole_number, whole_number, moment, identifier)
    if start is not None:
        rows = [r for r in rows if _agenda_key(r) > start]
    tenants = await _tenant_refs(session, (r.tenant_id for r in rows[: limit + 1]))
    keys = {r.id: _agenda_key(r) for r in rows}
    return paginate(
        [_agenda_out(r, tenants) for r in rows[: limit + 1]],
        limit,
        lambda item: list(keys[item.id]),
    )


async def agenda_item_access(
    session: AsyncConnection, tenant_id: uuid.UUID, item_id: uuid.UUID
) -> tuple[MeetingAccess, Any]:
    row = await repository.agenda_item(session, item_id)
    if row is None:
        raise NotFound(AGENDA_ITEM_NOT_FOUND)
    try:
        access = await require_access(session, tenant_id, row.meeting_id)
    except NotFound as exc:
        raise NotFound(AGENDA_ITEM_NOT_FOUND) from exc
    if not _sees(access.member, row):
        raise NotFound(AGENDA_ITEM_NOT_FOUND)
    return access, row


async def get_agenda_item(
    session: AsyncConnection, tenant_id: uuid.UUID, item_id: uuid.UUID
) -> AgendaItem:
    _, row = await agenda_item_access(session, tenant_id, item_id)
    return _agenda_out(row, await _tenant_refs(session, [row.tenant_id]))


def _proposer_may_edit(access: MeetingAccess, row: Any) -> None:
    if row.tenant_id != access.tenant_id:
        raise Forbidden("Only the group's facilitators or the item's proposer may change it.")
    if row.status != "proposed":
        raise Conflict(
            f"This item is {row.status}; its proposer can change it only while proposed."
        )


async def change_agenda_item(
    session: AsyncConnection, tenant_id: uuid.UUID, item_id: uuid.UUID, patch: AgendaItemPatch
) -> AgendaItem:
    access, row = await agenda_item_access(session, tenant_id, item_id)
    facilitator = access.member.is_facilitator
    organising = patch.status is not msgspec.UNSET or patch.position is not msgspec.UNSET
    editing = patch.title is not msgspec.UNSET or patch.description is not msgspec.UNSET
    if organising and not facilitator:
        raise Forbidden("Only the group's facilitators accept, reject or order agenda items.")
    if editing or not facilitator:
        _proposer_may_edit(access, row)
    values: dict[str, Any] = {}
    if patch.title is not msgspec.UNSET:
        if not patch.title.strip():
            raise ValidationFailed(
                "The agenda item is not valid.", errors=[FieldError("title", "must not be blank")]
            )
        values["title"] = patch.title.strip()
    if patch.description is not msgspec.UNSET:
        values["description"] = patch.description
    if patch.duration_minutes is not msgspec.UNSET:
        values["duration_minutes"] = patch.duration_minutes
    status = row.status if patch.status is msgspec.UNSET else patch.status
    if patch.position is not msgspec.UNSET and status != "accepted":
        raise ValidationFailed(
            "The agenda item is not valid.",
            errors=[FieldError("position", "only accepted items have a position")],
        )
    if organising:
        values["status"] = status
        place: int | None = None
        if status == "accepted":
            kept = row.position if row.status == "accepted" and row.position else _LAST
            place = patch.position if patch.position is not msgspec.UNSET else kept
        await _order_agenda(session, access.meeting.id, row.id, place)
    if values:
        await repository.update_agenda_item(session, row.id, values)
    return await get_agenda_item(session, tenant_id, item_id)


async def _order_agenda(
    session: AsyncConnection, meeting_id: uuid.UUID, item_id: uuid.UUID, position: int | None
) -> None:
    """Place the item at `position` among the accepted items (None: not accepted; a position past
    the end, or an item newly accepted without one, goes last) and number them 1..n again."""
    rows = await repository.agenda(session, meeting_id, lock=True)
    accepted = sorted(
        (r for r in rows if r.status == "accepted" and r.id != item_id), key=_agenda_key
    )
    order = [r.id for r in accepted]
    if position is not None:
        order.insert(min(position, len(order) + 1) - 1, item_id)
    current = {r.id: r.position for r in rows}
    for number, accepted_id in enumerate(order, start=1):
        if current.get(accepted_id) != number:
            await repository.update_agenda_item(session, accepted_id, {"position": number})
    if position is None and current.get(item_id) is not None:
        await repository.update_agenda_item(session, item_id, {"position": None})


async def delete_agenda_item(
    session: AsyncConnection, tenant_id: uuid.UUID, item_id: uuid.UUID
) -> None:
    access, row = await agenda_item_access(session, tenant_id, item_id)
    if not access.member.is_facilitator:
        _proposer_may_edit(access, row)
    await repository.delete_agenda_item(session, row.id)
    if row.status == "accepted":
        await _order_agenda(session, access.meeting.id, row.id, None)


# Minutes and action items ------------------------------------------------------------------------


def _minutes_out(meeting_id: uuid.UUID, row: Any, *, draft: bool) -> Minutes:
    content = msgspec.convert(row.draft if draft else row.published, MinutesIn)
    return Minutes(
        meeting_id=meeting_id,
        status="draft" if draft else "published",
        revision=row.revision,
        summary=content.summary,
        decisions=content.decisions,
        action_items=content.action_items,
        updated_at=row.draft_updated_at if draft else row.published_at,
        published_at=row.published_at,
    )


async def put_minutes(session: AsyncConnection, access: MeetingAccess, data: MinutesIn) -> Minutes:
    groups.require_facilitator(access.member)
    roles = await groups.member_roles(session, access.meeting.working_group_id)
    errors: list[FieldError] = []
    titles: set[str] = set()
    for i, item in enumerate(data.action_items):
        title = item.title.strip()
        if not title:
            errors.append(FieldError(f"action_items[{i}].title", "must not be blank"))
        elif title in titles:
            errors.append(FieldError(f"action_items[{i}].title", "repeats another action item"))
        titles.add(title)
        if item.owner_tenant_id is not None and item.owner_tenant_id not in roles:
            errors.append(
                FieldError(f"action_items[{i}].owner_tenant_id", "is not a member of this group")
            )
    if errors:
        raise ValidationFailed("The minutes are not valid.", errors=errors)
    cleaned = msgspec.structs.replace(
        data,
        action_items=[
            msgspec.structs.replace(item, title=item.title.strip()) for item in data.action_items
        ],
    )
    row = await repository.save_draft(
        session,
        access.meeting.id,
        access.meeting.working_group_id,
        msgspec.to_builtins(cleaned),
    )
    return _minutes_out(access.meeting.id, row, draft=True)


async def publish_minutes(session: AsyncConnection, access: MeetingAccess) -> Minutes:
    groups.require_facilitator(access.member)
    current = await repository.minutes(session, access.meeting.id, lock=True)
    if current is None or current.draft is None:
        raise Conflict("There is no draft to publish; PUT the minutes first.")
    row = await repository.publish_minutes(session, access.meeting.id)
    published = _minutes_out(access.meeting.id, row, draft=False)
    existing = {
        r.title: r for r in await repository.meeting_action_items(session, access.meeting.id)
    }
    wanted: list[ActionItemIn] = published.action_items
    await repository.delete_action_items(
        session, [r.id for title, r in existing.items() if title not in {a.title for a in wanted}]
    )
    assigned: list[tuple[uuid.UUID, ActionItemIn]] = []
    for item in wanted:
        kept = existing.get(item.title)
        if kept is None:
            item_id = uuid.uuid4()
            await repository.insert_action_item(
                session,
                {
                    "id": item_id,
                    "meeting_id": access.meeting.id,
                    "working_group_id": access.meeting.working_group_id,
                    "title": item.title,
                    "owner_tenant_id": item.owner_tenant_id,
                    "due_on": item.due_on,
                },
            )
        else:
            item_id = kept.id
            if (kept.owner_tenant_id, kept.due_on) != (item.owner_tenant_id, item.due_on):
                await repository.update_action_item(
                    session,
                    item_id,
                    {"owner_tenant_id": item.owner_tenant_id, "due_on": item.due_on},
                )
        if item.owner_tenant_id is not None and (
            kept is None or kept.owner_tenant_id != item.owner_tenant_id
        ):
            assigned.append((item_id, item))
    group_id = access.meeting.working_group_id
    await repository.publish(
        session,
        group_id,
        "meeting.minutes_published",
        _event(access.meeting, revision=row.revision),
    )
    for item_id, item in assigned:
        await repository.publish(
            session,
            group_id,
            "action_item.assigned",
            _event(access.meeting, action_item_id=str(item_id), item_title=item.title),
            tenant_id=item.owner_tenant_id,
        )
    return published


async def get_minutes(session: AsyncConnection, access: MeetingAccess, *, draft: bool) -> Minutes:
    if draft:
        groups.require_facilitator(access.member)
    row = await repository.minutes(session, access.meeting.id)
    if row is None or (row.draft if draft else row.published) is None:
        raise NotFound(
            "This meeting has no " + ("draft minutes." if draft else "published minutes.")
        )
    return _minutes_out(access.meeting.id, row, draft=draft)


def _action_out(row: Any) -> ActionItem:
    return ActionItem(
        id=row.id,
        meeting_id=row.meeting_id,
        title=row.title,
        owner_tenant_id=row.owner_tenant_id,
        due_on=row.due_on,
        status=row.status,
        created_at=row.created_at,
        updated_at=row.updated_at,
    )


def parse_owner(owner: str | None, member: Membership) -> uuid.UUID | None:
    if owner is None:
        return None
    if owner == "me":
        return member.tenant_id
    try:
        return uuid.UUID(owner)
    except ValueError as exc:
        raise ValidationFailed(
            "The filter is not valid.", errors=[FieldError("owner", "must be a tenant id or `me`")]
        ) from exc


async def list_action_items(
    session: AsyncConnection,
    member: Membership,
    *,
    status: str | None,
    owner: str | None,
    after: tuple[Any, ...] | None,
    limit: int,
) -> Page[ActionItem]:
    rows = await repository.group_action_items(
        session,
        member.group_id,
        status=status,
        owner=parse_owner(owner, member),
        after=keyset(after, moment, identifier),
        limit=limit + 1,
    )
    return paginate([_action_out(r) for r in rows], limit, lambda a: [a.created_at, a.id])


async def _action_item_access(
    session: AsyncConnection, tenant_id: uuid.UUID, item_id: uuid.UUID
) -> tuple[Membership, Any]:
    row = await repository.action_item(session, item_id)
    member = await groups.membership(session, row.working_group_id, tenant_id) if row else None
    if row is None or member is None:
        raise NotFound(ACTION_ITEM_NOT_FOUND)
    return member, row


async def get_action_item(
    session: AsyncConnection, tenant_id: uuid.UUID, item_id: uuid.UUID
) -> ActionItem:
    _, row = await _action_item_access(session, tenant_id, item_id)
    return _action_out(row)


async def change_action_item(
    session: AsyncConnection, tenant_id: uuid.UUID, item_id: uuid.UUID, patch: ActionItemPatch
) -> ActionItem:
    member, row = await _action_item_access(session, tenant_id, item_id)
    if not member.is_facilitator and row.owner_tenant_id != tenant_id:
        raise Forbidden("Only the item's owner tenant or the group's facilitators may change it.")
    if patch.status != row.status:
        await repository.update_action_item(session, row.id, {"status": patch.status})
    return await get_action_item(session, tenant_id, item_id)


# Attendance --------------------------------------------------------------------------------------


async def put_attendance(
    session: AsyncConnection, access: MeetingAccess, data: AttendanceIn
) -> Attendance:
    groups.require_facilitator(access.member)
    roles = await groups.member_roles(session, access.meeting.working_group_id)
    errors: list[FieldError] = []
    seen: set[uuid.UUID] = set()
    for i, entry in enumerate(data.tenants):
        if entry.tenant_id not in roles:
            errors.append(FieldError(f"tenants[{i}].tenant_id", "is not a member of this group"))
        elif entry.tenant_id in seen:
            errors.append(FieldError(f"tenants[{i}].tenant_id", "is listed twice"))
        seen.add(entry.tenant_id)
    if errors:
        raise ValidationFailed("The attendance is not valid.", errors=errors)
    await repository.replace_attendance(
        session,
        access.meeting.id,
        [
            {
                "meeting_id": access.meeting.id,
                "working_group_id": access.meeting.working_group_id,
                "tenant_id": e.tenant_id,
                "attended": e.attended,
                "attendees_count": e.attendees_count,
            }
            for e in data.tenants
        ],
    )
    return await get_attendance(session, access)


async def get_attendance(session: AsyncConnection, access: MeetingAccess) -> Attendance:
    rows = await repository.attendance(session, access.meeting.id)
    tenants = await _tenant_refs(session, (r.tenant_id for r in rows))
    return Attendance(
        tenants=[
            AttendanceEntry(
                tenant=tenants[r.tenant_id], attended=r.attended, attendees_count=r.attendees_count
            )
            for r in rows
        ]
    )


# The worker's side (system role) -----------------------------------------------------------------


async def send_due_reminders(session: AsyncConnection, now: datetime) -> dict[str, int]:
    """Every reminder due at `now` goes out once: marked sent with its events in one commit."""
    reminders = events = 0
    while True:
        marked, written = await repository.send_due_reminders(session, now, REMINDER_BATCH)
        reminders, events = reminders + marked, events + written
        if marked < REMINDER_BATCH:
            return {"reminders": reminders, "events": events}


async def extend_open_ended_series(
    database: Database, session: AsyncConnection, now: datetime
) -> dict[str, int]:
    """Keep every rule with neither COUNT nor UNTIL two years ahead of `now`. The job's session
    (system role) only names the series; each is extended for a facilitator of its group, in a
    transaction of that tenant (extending is idempotent: it adds what is missing after the last)."""
    added = 0
    for series_id, facilitator in await repository.open_ended_series_owners(session):
        async with database.transaction(facilitator) as tenant_session:
            series = await repository.series_by_id(tenant_session, series_id)
            if series is not None:
                added += await _extend_series(tenant_session, series, now)
    return {"occurrences_added": added}


async def _extend_series(session: AsyncConnection, series: SeriesRecord, now: datetime) -> int:
    template = _series_template(series)
    found = expand(
        parse_rule(series.rrule), series.start_local, series.timezone, now=now, limit=None
    )
    last = await repository.last_of_series(session, series.id)
    missing = found[(last.series_index or 0) + 1 if last else 0 :]
    if not missing:
        return 0
    ids = [uuid.uuid4() for _ in missing]
    await repository.insert_meetings(
        session,
        [
            {
                "id": meeting_id,
                "working_group_id": series.working_group_id,
                "series_id": series.id,
                "series_index": occurrence.index,
                "recurrence_id": occurrence.starts_at,
                "sequence": series.sequence,
                **_template_columns(template),
                **_timing(template, occurrence),
            }
            for meeting_id, occurrence in zip(ids, missing, strict=True)
        ],
    )
    await repository.replace_reminders(
        session,
        [],
        _reminder_rows(_planned(series.working_group_id, ids, missing, template), now),
    )
    return len(missing)


__all__ = [
    "Decision",
    "MeetingAccess",
    "MeetingInThePast",
    "MeetingRecord",
    "SeriesRecord",
    "list_occurrences",
    "require_access",
    "series_records",
]
