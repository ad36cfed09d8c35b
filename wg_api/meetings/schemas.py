"""msgspec Structs in and out of the meeting endpoints."""

from __future__ import annotations

import uuid
from datetime import date, datetime
from typing import Annotated, Literal

import msgspec
from msgspec import UNSET, Meta, UnsetType

from wg_api.working_groups.schemas import TenantRef

MeetingStatus = Literal["scheduled", "cancelled"]
Scope = Literal["this", "this_and_following", "series"]
LocationMode = Literal["in_person", "online", "hybrid"]
RsvpResponse = Literal["accepted", "tentative", "declined"]
AgendaStatus = Literal["proposed", "accepted", "rejected"]
ActionStatus = Literal["open", "done"]
MinutesStatus = Literal["draft", "published"]

DEFAULT_REMINDERS = (10080, 1440)
MAX_REMINDERS = 5

Title = Annotated[str, Meta(min_length=1, max_length=200)]
Description = Annotated[str, Meta(max_length=5000)]
Timezone = Annotated[str, Meta(min_length=1, max_length=64, examples=["Asia/Hong_Kong"])]
StartLocal = Annotated[
    str,
    Meta(
        pattern=r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:00)?$",
        description="Wall time in `timezone`, to the minute.",
        examples=["2027-03-18T10:00"],
    ),
]
DurationMinutes = Annotated[int, Meta(ge=5, le=1440)]
ReminderOffset = Annotated[int, Meta(ge=5, le=43200)]
Reminders = Annotated[
    list[ReminderOffset],
    Meta(max_length=MAX_REMINDERS, description="Minutes before the start; `[]`: none."),
]
RRuleText = Annotated[
    str, Meta(min_length=1, max_length=500, examples=["FREQ=MONTHLY;INTERVAL=3;COUNT=4"])
]
Reason = Annotated[str, Meta(max_length=500)]
Comment = Annotated[str, Meta(max_length=500)]
PersonName = Annotated[str, Meta(min_length=1, max_length=200)]
Email = Annotated[str, Meta(max_length=254, pattern=r"^[^@\s]+@[^@\s]+\.[^@\s]+$")]
AgendaMinutes = Annotated[int, Meta(ge=1, le=1440)]
Position = Annotated[int, Meta(ge=1, le=1000)]
Summary = Annotated[str, Meta(max_length=50_000)]
DecisionText = Annotated[str, Meta(min_length=1, max_length=2000)]
HeadCount = Annotated[int, Meta(ge=0, le=10_000)]


class Location(msgspec.Struct, forbid_unknown_fields=True, omit_defaults=False):
    mode: LocationMode
    venue: Annotated[str, Meta(max_length=200)] | None = None
    address: Annotated[str, Meta(max_length=500)] | None = None
    online_url: Annotated[str, Meta(max_length=2000, pattern=r"^https?://\S+$")] | None = None


class MeetingIn(msgspec.Struct, forbid_unknown_fields=True):
    title: Title
    start_local: StartLocal
    duration_minutes: DurationMinutes
    location: Location
    description: Description | None = None
    timezone: Timezone | None = None
    rrule: RRuleText | None = None
    reminders_minutes_before: Reminders = msgspec.field(
        default_factory=lambda: list(DEFAULT_REMINDERS)
    )


class MeetingPatch(msgspec.Struct, forbid_unknown_fields=True):
    """Only the fields sent change. With `series`, `start_local` is the series' new first
    occurrence; with `this_and_following`, the new start of the occurrence it was called on."""

    scope: Scope = "this"
    title: Title | UnsetType = UNSET
    description: Description | UnsetType | None = UNSET
    start_local: StartLocal | UnsetType = UNSET
    timezone: Timezone | UnsetType = UNSET
    duration_minutes: DurationMinutes | UnsetType = UNSET
    location: Location | UnsetType = UNSET
    rrule: RRuleText | UnsetType = UNSET
    reminders_minutes_before: Reminders | UnsetType = UNSET


class CancelIn(msgspec.Struct, forbid_unknown_fields=True):
    scope: Scope = "this"
    reason: Reason | None = None


class Meeting(msgspec.Struct):
    id: uuid.UUID
    series_id: uuid.UUID | None
    working_group_id: uuid.UUID
    title: str
    description: str | None
    start_local: str
    timezone: str
    starts_at: datetime
    ends_at: datetime
    duration_minutes: int
    location: Location
    status: MeetingStatus
    cancel_reason: str | None
    sequence: int
    recurrence_id: datetime | None
    is_exception: bool
    reminders_minutes_before: list[int]
    my_rsvp: RsvpResponse | None
    created_at: datetime
    updated_at: datetime


class MeetingSeries(msgspec.Struct):
    id: uuid.UUID
    working_group_id: uuid.UUID
    title: str
    rrule: str
    timezone: str
    start_local: str
    duration_minutes: int
    occurrences: int
    until: datetime | None
    sequence: int
    created_at: datetime
    updated_at: datetime


class Attendee(msgspec.Struct, forbid_unknown_fields=True, omit_defaults=False):
    name: PersonName
    email: Email | None = None


class RsvpIn(msgspec.Struct, forbid_unknown_fields=True):
    response: RsvpResponse
    attendees: Annotated[list[Attendee], Meta(max_length=20)] = msgspec.field(default_factory=list)
    comment: Comment | None = None


class Rsvp(msgspec.Struct):
    tenant: TenantRef
    response: RsvpResponse
    attendees: list[Attendee]
    comment: str | None
    updated_at: datetime


class RsvpSummary(msgspec.Struct):
    accepted: int
    tentative: int
    declined: int
    no_response: int


class RsvpList(msgspec.Struct):
    items: list[Rsvp]
    summary: RsvpSummary


class AgendaItemIn(msgspec.Struct, forbid_unknown_fields=True):
    title: Title
    description: Description | None = None
    duration_minutes: AgendaMinutes | None = None


class AgendaItemPatch(msgspec.Struct, forbid_unknown_fields=True):
    """Facilitators: `status`, `position`, `duration_minutes`. The proposer, while the item is
    proposed: `title`, `description`, `duration_minutes`."""

    status: Literal["accepted", "rejected"] | UnsetType = UNSET
    position: Position | UnsetType = UNSET
    duration_minutes: AgendaMinutes | UnsetType | None = UNSET
    title: Title | UnsetType = UNSET
    description: Description | UnsetType | None = UNSET


class AgendaItem(msgspec.Struct):
    id: uuid.UUID
    meeting_id: uuid.UUID
    title: str
    description: str | None
    duration_minutes: int | None
    status: AgendaStatus
    position: int | None
    proposed_by: TenantRef
    created_at: datetime
    updated_at: datetime


class Decision(msgspec.Struct, forbid_unknown_fields=True):
    text: DecisionText


class ActionItemIn(msgspec.Struct, forbid_unknown_fields=True, omit_defaults=False):
    title: Title
    owner_tenant_id: uuid.UUID | None = None
    due_on: date | None = None


class MinutesIn(msgspec.Struct, forbid_unknown_fields=True):
    summary: Summary
    decisions: Annotated[list[Decision], Meta(max_length=200)] = msgspec.field(default_factory=list)
    action_items: Annotated[list[ActionItemIn], Meta(max_length=200)] = msgspec.field(
        default_factory=list
    )


class Minutes(msgspec.Struct):
    meeting_id: uuid.UUID
    status: MinutesStatus
    revision: int
    summary: str
    decisions: list[Decision]
    action_items: list[ActionItemIn]
    updated_at: datetime
    published_at: datetime | None


class ActionItem(msgspec.Struct):
    id: uuid.UUID
    meeting_id: uuid.UUID
    title: str
    owner_tenant_id: uuid.UUID | None
    due_on: date | None
    status: ActionStatus
    created_at: datetime
    updated_at: datetime


class ActionItemPatch(msgspec.Struct, forbid_unknown_fields=True):
    status: ActionStatus


class AttendanceEntryIn(msgspec.Struct, forbid_unknown_fields=True):
    tenant_id: uuid.UUID
    attended: bool
    attendees_count: HeadCount | None = None


class AttendanceIn(msgspec.Struct, forbid_unknown_fields=True):
    tenants: Annotated[list[AttendanceEntryIn], Meta(max_length=500)]


class AttendanceEntry(msgspec.Struct):
    tenant: TenantRef
    attended: bool
    attendees_count: int | None


class Attendance(msgspec.Struct):
    tenants: list[AttendanceEntry]


FeedName = Annotated[str, Meta(min_length=1, max_length=100, examples=["Outlook at the office"])]


class CalendarFeedIn(msgspec.Struct, forbid_unknown_fields=True):
    working_group_id: uuid.UUID | None = None
    name: FeedName | None = None


class CalendarFeed(msgspec.Struct):
    """A feed as listed: never its URL, which holds the secret."""

    id: uuid.UUID
    working_group_id: uuid.UUID | None
    name: str | None
    created_at: datetime
    revoked_at: datetime | None


class CalendarFeedWithUrl(msgspec.Struct):
    """A feed just made, with its secret URL: shown this once, stored only as a hash (`url` is
    null when an Idempotency-Key replays the answer)."""

    id: uuid.UUID
    url: str | None
    working_group_id: uuid.UUID | None
    name: str | None
    created_at: datetime
    revoked_at: datetime | None = None
