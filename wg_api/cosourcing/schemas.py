"""msgspec Structs in and out of co-sourcing: rooms, planned audits, overlaps."""

from __future__ import annotations

import uuid
from datetime import date, datetime
from typing import Annotated, Literal

import msgspec
from msgspec import Meta

from wg_api.findings.schemas import Scheme
from wg_api.platform.pagination import Page

# The caller's own place in a room: invited (may opt in), opted in (waiting for a second), or
# introduced (a participant, who sees the others).
RoomStatus = Literal["invited", "opted_in", "introduced"]
InvitedAs = Literal["contributor", "alerted", "overlap"]
ActionStatus = Literal["open", "done"]
MessageBody = Annotated[str, Meta(min_length=1, max_length=4000)]
Title = Annotated[str, Meta(min_length=1, max_length=200)]
Note = Annotated[str, Meta(max_length=2000)]


class TenantRef(msgspec.Struct):
    id: uuid.UUID
    slug: str
    name: str


class RemediationRoom(msgspec.Struct):
    """A room to act together on one zero-tolerance shared finding, as the caller sees it:
    `participants` is empty until the caller is introduced."""

    id: uuid.UUID
    working_group_id: uuid.UUID
    shared_finding_id: uuid.UUID
    supplier_id: uuid.UUID
    invited_as: InvitedAs
    status: RoomStatus
    deadline_at: datetime
    participants: list[TenantRef]
    created_at: datetime


class RemediationRoomPage(Page[RemediationRoom]):
    items: list[RemediationRoom]
    next_cursor: str | None


class GroupRoom(msgspec.Struct):
    """What a group's facilitators see of an introduced room: that it exists and how many are in
    it, never who."""

    id: uuid.UUID
    shared_finding_id: uuid.UUID
    participants_count: int
    deadline_at: datetime


class GroupRoomPage(Page[GroupRoom]):
    items: list[GroupRoom]
    next_cursor: str | None


class MessageIn(msgspec.Struct, forbid_unknown_fields=True):
    body: MessageBody


class Message(msgspec.Struct):
    id: uuid.UUID
    room_id: uuid.UUID
    author: TenantRef
    body: str
    created_at: datetime


class MessagePage(Page[Message]):
    items: list[Message]
    next_cursor: str | None


class ActionItemIn(msgspec.Struct, forbid_unknown_fields=True):
    title: Title
    owner_tenant_id: uuid.UUID | None = None
    due_on: date | None = None


class ActionItemPatch(msgspec.Struct, forbid_unknown_fields=True):
    status: ActionStatus | msgspec.UnsetType = msgspec.UNSET
    title: Title | msgspec.UnsetType = msgspec.UNSET
    due_on: date | msgspec.UnsetType | None = msgspec.UNSET


class ActionItem(msgspec.Struct):
    id: uuid.UUID
    room_id: uuid.UUID
    title: str
    owner_tenant_id: uuid.UUID | None
    due_on: date | None
    status: ActionStatus
    created_at: datetime
    updated_at: datetime


class ActionItemPage(Page[ActionItem]):
    items: list[ActionItem]
    next_cursor: str | None


class PlannedAuditIn(msgspec.Struct, forbid_unknown_fields=True):
    supplier_id: uuid.UUID
    window_start: date
    window_end: date
    scheme: Scheme
    open_to_joint_audit: bool = True
    note: Note | None = None


class PlannedAudit(msgspec.Struct):
    """Private to its tenant: nobody else ever reads it."""

    id: uuid.UUID
    supplier_id: uuid.UUID
    window_start: date
    window_end: date
    scheme: Scheme
    open_to_joint_audit: bool
    note: str | None
    created_at: datetime


class PlannedAuditPage(Page[PlannedAudit]):
    items: list[PlannedAudit]
    next_cursor: str | None


class Window(msgspec.Struct):
    """Both days included."""

    start: date
    end: date


class AuditOverlap(msgspec.Struct):
    """Another tenant plans an audit of the supplier in `window` too; who, only once both opted
    in (`participants`)."""

    id: uuid.UUID
    supplier_id: uuid.UUID
    planned_audit_id: uuid.UUID
    window: Window
    status: RoomStatus
    participants: list[TenantRef]
    created_at: datetime


class AuditOverlapPage(Page[AuditOverlap]):
    items: list[AuditOverlap]
    next_cursor: str | None
