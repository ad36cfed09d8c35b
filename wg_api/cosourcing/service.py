"""Co-sourcing rules: zero-tolerance alerts to linked tenants, remediation rooms and joint audits
by double opt-in, planned audits.

Nobody learns who else sources from a supplier unless both choose to tell. A zero-tolerance
share opens its remediation room in the contributor's transaction (the contributor is invited
whatever happens next); the worker then alerts the group's other members linked to the supplier
for at least `WG_COSOURCING_MIN_LINK_AGE_DAYS` (tasks.py), so the contributor's request neither
waits for nor counts them. An invited tenant opts in; only `cosourcing_introduce` (the owner's
function) introduces, and only once two have opted in. Until then a room shows the caller its
own state only; an opt-out deletes the opt-in and writes no event.
"""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime, timedelta
from typing import Any

import msgspec
from sqlalchemy.ext.asyncio import AsyncConnection

from wg_api.cosourcing import repository
from wg_api.cosourcing.schemas import (
    ActionItem,
    ActionItemIn,
    ActionItemPage,
    ActionItemPatch,
    AuditOverlap,
    AuditOverlapPage,
    GroupRoom,
    GroupRoomPage,
    Message,
    MessageIn,
    MessagePage,
    PlannedAudit,
    PlannedAuditIn,
    PlannedAuditPage,
    RemediationRoom,
    RemediationRoomPage,
    RoomStatus,
    TenantRef,
    Window,
)
from wg_api.platform.errors import FieldError, Forbidden, NotFound, ProblemError, ValidationFailed
from wg_api.platform.events import record_event
from wg_api.platform.models import Record
from wg_api.platform.pagination import day, identifier, keyset, moment, paginate
from wg_api.sharing import service as sharing
from wg_api.sharing.schemas import SharedFinding
from wg_api.suppliers import service as suppliers
from wg_api.working_groups import service as groups

REMEDIATION = "remediation"
JOINT_AUDIT = "joint_audit"
ROOM_NOT_FOUND = "No such remediation room."
OVERLAP_NOT_FOUND = "No such audit overlap."
AUDIT_NOT_FOUND = "No such planned audit."
ACTION_NOT_FOUND = "No such action item."
# A plan is for the coming months; a window longer than a year is not one audit.
MAX_WINDOW_DAYS = 366
# Alerts and overlaps become readable after a random delay of at most this (and at most the
# shared-event delay): enough to blur the moment, short enough to arrive within a minute.
ALERT_DELAY_CAP_SECONDS = 30.0
BATCH = 500


class AlreadyIntroduced(ProblemError):
    status = 409
    kind = "already-introduced"
    title = "Already introduced"
    description = (
        "You have been introduced to the other participants of this room; they know your name, "
        "so opting out can no longer leave no trace."
    )


def _not_found(kind: str) -> NotFound:
    return NotFound(ROOM_NOT_FOUND if kind == REMEDIATION else OVERLAP_NOT_FOUND)


# -- alerts -------------------------------------------------------------------------------------


async def open_room_if_zero_tolerance(
    session: AsyncConnection, tenant_id: uuid.UUID, group_id: uuid.UUID, shared: SharedFinding
) -> None:
    """Sharing's hook: a zero-tolerance record gets its remediation room (once); the alert it
    carries waits in the room for the worker, as the group's other members read the record."""
    if shared.severity != "zero_tolerance":
        return
    view = msgspec.to_builtins(msgspec.structs.replace(shared, is_own=False))
    await repository.open_remediation_room(session, shared.id, view)


sharing.on_shared(open_room_if_zero_tolerance)


def _delay(shared_event_delay_seconds: float) -> float:
    return max(0.0, min(ALERT_DELAY_CAP_SECONDS, shared_event_delay_seconds))


async def send_alerts(
    session: AsyncConnection,
    *,
    min_link_age_days: int,
    shared_event_delay_seconds: float,
    room_id: uuid.UUID | None = None,
) -> dict[str, int]:
    """Worker (system role): every room whose alert waits (or only `room_id`) goes out to the
    group's other member tenants linked to the supplier for at least `min_link_age_days`."""
    rooms, alerts = await repository.send_alerts(
        session, min_link_age_days, _delay(shared_event_delay_seconds), BATCH, room_id
    )
    return {"rooms": rooms, "alerts": alerts}


async def match_planned_audits(
    session: AsyncConnection, *, min_link_age_days: int, shared_event_delay_seconds: float
) -> dict[str, int]:
    found = await repository.match_planned_audits(
        session, min_link_age_days, _delay(shared_event_delay_seconds)
    )
    return {"overlaps": found}


async def send_room_reminders(session: AsyncConnection, now: datetime) -> dict[str, int]:
    return {"reminders": await repository.send_room_reminders(session, now, BATCH)}


# -- rooms --------------------------------------------------------------------------------------


def _status(row: Record) -> RoomStatus:
    if row.introduced:
        return "introduced"
    return "opted_in" if row.opted_in else "invited"


async def _people(session: AsyncConnection, rows: list[Record]) -> dict[uuid.UUID, list[TenantRef]]:
    people: dict[uuid.UUID, list[TenantRef]] = {}
    introduced = [row.id for row in rows if row.introduced]
    for p in await repository.participants(session, introduced):
        people.setdefault(p.room_id, []).append(TenantRef(id=p.id, slug=p.slug, name=p.name))
    return people


def _room_out(row: Record, people: dict[uuid.UUID, list[TenantRef]]) -> RemediationRoom:
    return RemediationRoom(
        id=row.id,
        working_group_id=row.working_group_id,
        shared_finding_id=row.shared_finding_id,
        supplier_id=row.supplier_id,
        invited_as=row.reason,
        status=_status(row),
        deadline_at=row.deadline_at,
        participants=people.get(row.id, []),
        created_at=row.created_at,
    )


def _overlap_out(row: Record, people: dict[uuid.UUID, list[TenantRef]]) -> AuditOverlap:
    return AuditOverlap(
        id=row.id,
        supplier_id=row.supplier_id,
        planned_audit_id=row.planned_audit_id,
        window=Window(start=row.window_start, end=row.window_end),
        status=_status(row),
        participants=people.get(row.id, []),
        created_at=row.created_at,
    )


async def _my_room(
    session: AsyncConnection, tenant_id: uuid.UUID, kind: str, room_id: uuid.UUID
) -> Record:
    rows = await repository.my_rooms(session, tenant_id, kind, room_id=room_id)
    if not rows:
        raise _not_found(kind)
    return rows[0]


async def list_rooms(
    session: AsyncConnection, tenant_id: uuid.UUID, *, after: tuple[Any, ...] | None, limit: int
) -> RemediationRoomPage:
    rows = await repository.my_rooms(
        session, tenant_id, REMEDIATION, after=keyset(after, moment, identifier), limit=limit + 1
    )
    people = await _people(session, rows)
    page = paginate(rows, limit, lambda row: [row.created_at.isoformat(), str(row.id)])
    return RemediationRoomPage(
        items=[_room_out(row, people) for row in page.items], next_cursor=page.next_cursor
    )


async def get_room(
    session: AsyncConnection, tenant_id: uuid.UUID, room_id: uuid.UUID
) -> RemediationRoom:
    row = await _my_room(session, tenant_id, REMEDIATION, room_id)
    return _room_out(row, await _people(session, [row]))


async def _opt_in(
    session: AsyncConnection, tenant_id: uuid.UUID, kind: str, room_id: uuid.UUID
) -> Record:
    await _my_room(session, tenant_id, kind, room_id)
    await repository.opt_in(session, tenant_id, room_id)
    await repository.introduce(session, room_id)
    return await _my_room(session, tenant_id, kind, room_id)


async def _opt_out(
    session: AsyncConnection, tenant_id: uuid.UUID, kind: str, room_id: uuid.UUID
) -> Record:
    await _my_room(session, tenant_id, kind, room_id)
    if not await repository.withdraw_opt_in(session, room_id):
        raise AlreadyIntroduced("Participants of this room already know your name.")
    return await _my_room(session, tenant_id, kind, room_id)


async def opt_in_room(
    session: AsyncConnection, tenant_id: uuid.UUID, room_id: uuid.UUID
) -> RemediationRoom:
    row = await _opt_in(session, tenant_id, REMEDIATION, room_id)
    return _room_out(row, await _people(session, [row]))


async def opt_out_room(
    session: AsyncConnection, tenant_id: uuid.UUID, room_id: uuid.UUID
) -> RemediationRoom:
    row = await _opt_out(session, tenant_id, REMEDIATION, room_id)
    return _room_out(row, await _people(session, [row]))


async def _participant_room(
    session: AsyncConnection, tenant_id: uuid.UUID, room_id: uuid.UUID
) -> Record:
    """A remediation room the caller has been introduced into; else as for a random id."""
    row = await _my_room(session, tenant_id, REMEDIATION, room_id)
    if not row.introduced:
        raise NotFound(ROOM_NOT_FOUND)
    return row


def _message_out(row: Record) -> Message:
    return Message(
        id=row.id,
        room_id=row.room_id,
        author=TenantRef(id=row.tenant_id, slug=row.slug, name=row.name),
        body=row.body,
        created_at=row.created_at,
    )


async def post_message(
    session: AsyncConnection, tenant_id: uuid.UUID, room_id: uuid.UUID, data: MessageIn
) -> Message:
    await _participant_room(session, tenant_id, room_id)
    message = _message_out(await repository.insert_message(session, tenant_id, room_id, data.body))
    await repository.publish_room_event(
        session,
        room_id,
        "remediation_room.message_posted",
        {"remediation_room_id": str(room_id), **msgspec.to_builtins(message)},
    )
    return message


async def list_messages(
    session: AsyncConnection,
    tenant_id: uuid.UUID,
    room_id: uuid.UUID,
    *,
    after: tuple[Any, ...] | None,
    limit: int,
) -> MessagePage:
    await _participant_room(session, tenant_id, room_id)
    rows = await repository.messages(session, room_id, keyset(after, moment, identifier), limit + 1)
    page = paginate(
        [_message_out(row) for row in rows], limit, lambda m: [m.created_at.isoformat(), str(m.id)]
    )
    return MessagePage(items=page.items, next_cursor=page.next_cursor)


def _action_out(row: Record) -> ActionItem:
    return ActionItem(
        id=row.id,
        room_id=row.room_id,
        title=row.title,
        owner_tenant_id=row.owner_tenant_id,
        due_on=row.due_on,
        status=row.status,
        created_at=row.created_at,
        updated_at=row.updated_at,
    )


async def _check_owner(
    session: AsyncConnection, room_id: uuid.UUID, owner: uuid.UUID | None
) -> None:
    if owner is None:
        return
    members = {p.id for p in await repository.participants(session, [room_id])}
    if owner not in members:
        raise ValidationFailed(
            "An action item's owner is a participant of the room.",
            errors=[FieldError("owner_tenant_id", "is not a participant of this room")],
        )


async def create_action_item(
    session: AsyncConnection, tenant_id: uuid.UUID, room_id: uuid.UUID, data: ActionItemIn
) -> ActionItem:
    await _participant_room(session, tenant_id, room_id)
    await _check_owner(session, room_id, data.owner_tenant_id)
    item = _action_out(
        await repository.insert_action_item(
            session, room_id, data.title, data.owner_tenant_id, data.due_on
        )
    )
    await repository.publish_room_event(
        session,
        room_id,
        "remediation_room.action_item_created",
        {"remediation_room_id": str(room_id), **msgspec.to_builtins(item)},
    )
    return item


async def get_action_item(
    session: AsyncConnection, tenant_id: uuid.UUID, room_id: uuid.UUID, item_id: uuid.UUID
) -> ActionItem:
    await _participant_room(session, tenant_id, room_id)
    row = await repository.action_item(session, room_id, item_id)
    if row is None:
        raise NotFound(ACTION_NOT_FOUND)
    return _action_out(row)


async def update_action_item(
    session: AsyncConnection,
    tenant_id: uuid.UUID,
    room_id: uuid.UUID,
    item_id: uuid.UUID,
    data: ActionItemPatch,
) -> ActionItem:
    await _participant_room(session, tenant_id, room_id)
    if await repository.action_item(session, room_id, item_id, for_update=True) is None:
        raise NotFound(ACTION_NOT_FOUND)
    changes = {
        name: getattr(data, name)
        for name in ("status", "title", "due_on")
        if getattr(data, name) is not msgspec.UNSET
    }
    if not changes:
        row = await repository.action_item(session, room_id, item_id)
        assert row is not None
        return _action_out(row)
    item = _action_out(await repository.update_action_item(session, room_id, item_id, changes))
    await repository.publish_room_event(
        session,
        room_id,
        "remediation_room.action_item_updated",
        {"remediation_room_id": str(room_id), **msgspec.to_builtins(item)},
    )
    return item


async def list_action_items(
    session: AsyncConnection,
    tenant_id: uuid.UUID,
    room_id: uuid.UUID,
    *,
    after: tuple[Any, ...] | None,
    limit: int,
) -> ActionItemPage:
    await _participant_room(session, tenant_id, room_id)
    rows = await repository.action_items(
        session, room_id, keyset(after, moment, identifier), limit + 1
    )
    page = paginate(
        [_action_out(row) for row in rows], limit, lambda a: [a.created_at.isoformat(), str(a.id)]
    )
    return ActionItemPage(items=page.items, next_cursor=page.next_cursor)


async def group_rooms(
    session: AsyncConnection,
    tenant_id: uuid.UUID,
    group_id: uuid.UUID,
    *,
    after: tuple[Any, ...] | None,
    limit: int,
) -> GroupRoomPage:
    """Facilitators: the group's introduced rooms and how many are in each."""
    membership = await groups.require_member(session, group_id, tenant_id)
    if membership.role != groups.FACILITATOR:
        raise Forbidden("Only the group's facilitators see its remediation rooms.")
    position = keyset(after, identifier)
    rows = await repository.group_rooms(
        session, group_id, position[0] if position else None, limit + 1
    )
    items = [
        GroupRoom(
            id=row.room_id,
            shared_finding_id=row.shared_finding_id,
            participants_count=int(row.participants),
            deadline_at=row.deadline_at,
        )
        for row in rows
    ]
    page = paginate(items, limit, lambda room: [str(room.id)])
    return GroupRoomPage(items=page.items, next_cursor=page.next_cursor)


# -- planned audits and overlaps ----------------------------------------------------------------


def planned_audit_out(row: Record) -> PlannedAudit:
    return PlannedAudit(
        id=row.id,
        supplier_id=row.supplier_id,
        window_start=row.window_start,
        window_end=row.window_end,
        scheme=row.scheme,
        open_to_joint_audit=row.open_to_joint_audit,
        note=row.note,
        created_at=row.created_at,
    )


async def _require_linked(
    session: AsyncConnection, tenant_id: uuid.UUID, supplier_id: uuid.UUID
) -> None:
    """NotFound, exactly as for a supplier that does not exist, unless the caller links to it."""
    await suppliers.get_visible(session, tenant_id, supplier_id)


async def create_planned_audit(
    session: AsyncConnection,
    tenant_id: uuid.UUID,
    data: PlannedAuditIn,
    *,
    today: date | None = None,
) -> PlannedAudit:
    errors: list[FieldError] = []
    # The earliest calendar date anywhere (UTC-12) is still "today" for someone.
    earliest_today = today or (datetime.now(UTC) - timedelta(hours=12)).date()
    if data.window_end < data.window_start:
        errors.append(FieldError("window_end", "must be on or after window_start"))
    elif (data.window_end - data.window_start).days >= MAX_WINDOW_DAYS:
        errors.append(FieldError("window_end", f"at most {MAX_WINDOW_DAYS} days after the start"))
    if data.window_end < earliest_today:
        errors.append(FieldError("window_end", "must not be in the past"))
    try:
        await _require_linked(session, tenant_id, data.supplier_id)
    except NotFound:
        errors.append(FieldError("supplier_id", "is not one of your suppliers"))
    if errors:
        raise ValidationFailed("The planned audit is not valid.", errors=errors)
    row = await repository.insert_planned_audit(
        session,
        tenant_id,
        {
            "supplier_id": data.supplier_id,
            "window_start": data.window_start,
            "window_end": data.window_end,
            "scheme": data.scheme,
            "open_to_joint_audit": data.open_to_joint_audit,
            "note": data.note,
        },
    )
    audit = planned_audit_out(row)
    await record_event(session, tenant_id, "planned_audit.created", audit)
    return audit


async def get_planned_audit(
    session: AsyncConnection, tenant_id: uuid.UUID, audit_id: uuid.UUID
) -> PlannedAudit:
    row = await repository.planned_audit(session, tenant_id, audit_id)
    if row is None:
        raise NotFound(AUDIT_NOT_FOUND)
    return planned_audit_out(row)


async def list_planned_audits(
    session: AsyncConnection,
    tenant_id: uuid.UUID,
    *,
    supplier_id: uuid.UUID | None,
    after: tuple[Any, ...] | None,
    limit: int,
) -> PlannedAuditPage:
    rows = await repository.planned_audits(
        session, tenant_id, supplier_id, keyset(after, day, identifier), limit + 1
    )
    page = paginate(
        [planned_audit_out(row) for row in rows],
        limit,
        lambda a: [a.window_start.isoformat(), str(a.id)],
    )
    return PlannedAuditPage(items=page.items, next_cursor=page.next_cursor)


async def delete_planned_audit(
    session: AsyncConnection, tenant_id: uuid.UUID, audit_id: uuid.UUID
) -> None:
    """Its overlaps not yet introduced vanish with it, for both sides."""
    if not await repository.delete_planned_audit(session, tenant_id, audit_id):
        raise NotFound(AUDIT_NOT_FOUND)
    await record_event(session, tenant_id, "planned_audit.deleted", {"id": str(audit_id)})


async def list_overlaps(
    session: AsyncConnection,
    tenant_id: uuid.UUID,
    *,
    supplier_id: uuid.UUID | None,
    after: tuple[Any, ...] | None,
    limit: int,
) -> AuditOverlapPage:
    if supplier_id is not None:
        await _require_linked(session, tenant_id, supplier_id)
    rows = await repository.my_rooms(
        session,
        tenant_id,
        JOINT_AUDIT,
        supplier_id=supplier_id,
        after=keyset(after, moment, identifier),
        limit=limit + 1,
    )
    people = await _people(session, rows)
    page = paginate(rows, limit, lambda row: [row.created_at.isoformat(), str(row.id)])
    return AuditOverlapPage(
        items=[_overlap_out(row, people) for row in page.items], next_cursor=page.next_cursor
    )


async def get_overlap(
    session: AsyncConnection, tenant_id: uuid.UUID, overlap_id: uuid.UUID
) -> AuditOverlap:
    row = await _my_room(session, tenant_id, JOINT_AUDIT, overlap_id)
    return _overlap_out(row, await _people(session, [row]))


async def opt_in_overlap(
    session: AsyncConnection, tenant_id: uuid.UUID, overlap_id: uuid.UUID
) -> AuditOverlap:
    row = await _opt_in(session, tenant_id, JOINT_AUDIT, overlap_id)
    return _overlap_out(row, await _people(session, [row]))


async def opt_out_overlap(
    session: AsyncConnection, tenant_id: uuid.UUID, overlap_id: uuid.UUID
) -> AuditOverlap:
    row = await _opt_out(session, tenant_id, JOINT_AUDIT, overlap_id)
    return _overlap_out(row, await _people(session, [row]))
