"""Meeting endpoints: meetings and series of a group, one occurrence and what belongs to it (RSVPs,
agenda, minutes, attendance), agenda items and action items.

A meeting, series or item of a group the caller's tenant is not an active member of answers 404
exactly as a random id; members who are not facilitators get 403 on organiser actions.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Annotated, Any

import msgspec
from litestar import Controller, Request, Response, delete, get, patch, post, put
from litestar.params import FromPath, JSONBody, QueryParameter

from wg_api.identity.access import requires
from wg_api.identity.principal import Principal
from wg_api.meetings import service
from wg_api.meetings.schemas import (
    ActionItem,
    ActionItemPatch,
    ActionStatus,
    AgendaItem,
    AgendaItemIn,
    AgendaItemPatch,
    Attendance,
    AttendanceIn,
    CancelIn,
    Meeting,
    MeetingIn,
    MeetingPatch,
    MeetingSeries,
    MeetingStatus,
    Minutes,
    MinutesIn,
    Rsvp,
    RsvpIn,
    RsvpList,
)
from wg_api.platform.errors import FieldError, ValidationFailed
from wg_api.platform.http import Body, check_if_match, etag_of
from wg_api.platform.pagination import Page, Pagination, page_response
from wg_api.platform.transaction import DbSession
from wg_api.working_groups import service as groups

READ = "meetings:read"
WRITE = "meetings:write"
TAGS = ["Meetings"]

AnyRequest = Request[Principal, Any, Any]


def _with_etag(resource: msgspec.Struct) -> Response[Any]:
    return Response(resource, headers={"ETag": etag_of(resource)})


def _now() -> datetime:
    return datetime.now(UTC)


def _aware(value: datetime | None, name: str) -> datetime | None:
    if value is not None and value.tzinfo is None:
        raise ValidationFailed(
            "The window is not valid.",
            errors=[FieldError(name, "must be an RFC 3339 timestamp with its offset, e.g. Z")],
        )
    return value


class GroupMeetingsController(Controller):
    path = "/working-groups/{group_id:uuid}"
    tags = TAGS

    @post(
        "/meetings",
        summary="Schedule a meeting or a series",
        data_dto=Body[MeetingIn],
        **requires(WRITE),
    )
    async def create(
        self,
        request: AnyRequest,
        data: JSONBody[MeetingIn],
        db_session: DbSession,
        group_id: FromPath[uuid.UUID],
    ) -> Response[Meeting]:
        """Facilitators. `start_local` is wall time in `timezone` (default: the group's); with
        `rrule` (FREQ DAILY, WEEKLY, MONTHLY or YEARLY; COUNT, or UNTIL in UTC, or neither: kept two
        years ahead; at most 500 occurrences) it is the first occurrence. Answers the first
        occurrence; a start in the past or in a daylight-saving gap is 422."""
        member = await groups.require_member(db_session, group_id, request.user.tenant_id)
        meeting = await service.create_meeting(db_session, member, data, _now())
        return Response(
            meeting,
            status_code=201,
            headers={"ETag": etag_of(meeting), "Location": f"/v1/meetings/{meeting.id}"},
        )

    @get("/meetings", summary="The group's meetings in a window", **requires(READ))
    async def list_meetings(
        self,
        request: AnyRequest,
        db_session: DbSession,
        page: Pagination,
        group_id: FromPath[uuid.UUID],
        starts_from: Annotated[
            datetime | None,
            QueryParameter(name="from", description="Start of the window (default now)."),
        ] = None,
        starts_before: Annotated[
            datetime | None,
            QueryParameter(
                name="to", description="End of the window, excluded (default a year after `from`)."
            ),
        ] = None,
        status: Annotated[MeetingStatus | None, QueryParameter(name="status")] = None,
    ) -> Response[Page[Meeting]]:
        """Occurrences with `starts_at` in `[from, to)`, by `starts_at`; cancelled ones too unless
        `status=scheduled`."""
        member = await groups.require_member(db_session, group_id, request.user.tenant_id)
        result = await service.list_meetings(
            db_session,
            member,
            starts_from=_aware(starts_from, "from"),
            starts_before=_aware(starts_before, "to"),
            status=status,
            after=page.after,
            limit=page.limit,
            now=_now(),
        )
        return page_response(request, result)

    @get("/action-items", summary="The group's action items", **requires(READ))
    async def list_action_items(
        self,
        request: AnyRequest,
        db_session: DbSession,
        page: Pagination,
        group_id: FromPath[uuid.UUID],
        status: Annotated[ActionStatus | None, QueryParameter(name="status")] = None,
        owner: Annotated[
            str | None,
            QueryParameter(name="owner", max_length=64, description="A tenant id, or `me`."),
        ] = None,
    ) -> Response[Page[ActionItem]]:
        """Across the group's meetings, oldest first; made when minutes are published."""
        member = await groups.require_member(db_session, group_id, request.user.tenant_id)
        result = await service.list_action_items(
            db_session, member, status=status, owner=owner, after=page.after, limit=page.limit
        )
        return page_response(request, result)


class MeetingSeriesController(Controller):
    path = "/meeting-series"
    tags = TAGS

    @get("/{series_id:uuid}", summary="One meeting series", **requires(READ))
    async def get_one(
        self, request: AnyRequest, db_session: DbSession, series_id: FromPath[uuid.UUID]
    ) -> Response[MeetingSeries]:
        """The rule, its zone and local start, how many occurrences it has, `until` and
        `sequence` (raised by every series change and by a `this_and_following` cut)."""
        return _with_etag(await service.get_series(db_session, request.user.tenant_id, series_id))


class MeetingsController(Controller):
    path = "/meetings"
    tags = TAGS

    @get("/{meeting_id:uuid}", summary="One meeting", **requires(READ))
    async def get_one(
        self, request: AnyRequest, db_session: DbSession, meeting_id: FromPath[uuid.UUID]
    ) -> Response[Meeting]:
        access = await service.require_access(db_session, request.user.tenant_id, meeting_id)
        return _with_etag(await service.get_meeting(db_session, access))

    @patch(
        "/{meeting_id:uuid}",
        summary="Change a meeting",
        data_dto=Body[MeetingPatch],
        **requires(WRITE),
    )
    async def change(
        self,
        request: AnyRequest,
        data: JSONBody[MeetingPatch],
        db_session: DbSession,
        meeting_id: FromPath[uuid.UUID],
    ) -> Response[Meeting]:
        """Facilitators; honours `If-Match`. `this` (default) makes the occurrence an exception
        (409 once it has ended); `this_and_following` ends the series before it and makes a new
        series of the rest (same ids; COUNT becomes what was left, UNTIL stays); `series` changes
        every occurrence that is not an exception, past ones included. `rrule` only with
        `series` or `this_and_following`."""
        access = await service.require_access(db_session, request.user.tenant_id, meeting_id)
        groups.require_facilitator(access.member)
        check_if_match(request, etag_of(service.meeting_out(access.meeting)))
        return _with_etag(await service.change_meeting(db_session, access, data, _now()))

    @post(
        "/{meeting_id:uuid}/cancel",
        summary="Cancel a meeting",
        status_code=200,
        data_dto=Body[CancelIn],
        **requires(WRITE),
    )
    async def cancel(
        self,
        request: AnyRequest,
        data: JSONBody[CancelIn],
        db_session: DbSession,
        meeting_id: FromPath[uuid.UUID],
    ) -> Meeting:
        """Facilitators. `scope` as for changes; cancelled occurrences stay listed with
        `status: "cancelled"`. Answers the occurrence it was called on."""
        access = await service.require_access(db_session, request.user.tenant_id, meeting_id)
        return await service.cancel_meeting(db_session, access, data, _now())

    @put(
        "/{meeting_id:uuid}/rsvp",
        summary="Answer for your tenant",
        data_dto=Body[RsvpIn],
        **requires(WRITE),
    )
    async def rsvp(
        self,
        request: AnyRequest,
        data: JSONBody[RsvpIn],
        db_session: DbSession,
        meeting_id: FromPath[uuid.UUID],
    ) -> Rsvp:
        """Any member tenant, observers too: one answer per tenant, replaced by the next."""
        access = await service.require_access(db_session, request.user.tenant_id, meeting_id)
        return await service.put_rsvp(db_session, access, data)

    @get("/{meeting_id:uuid}/rsvps", summary="The answers", **requires(READ))
    async def rsvps(
        self, request: AnyRequest, db_session: DbSession, meeting_id: FromPath[uuid.UUID]
    ) -> RsvpList:
        """Not paged. Attendees' e-mails only for facilitators and the answering tenant;
        `no_response` counts member tenants of any role without an answer."""
        access = await service.require_access(db_session, request.user.tenant_id, meeting_id)
        return await service.list_rsvps(db_session, access)

    @post(
        "/{meeting_id:uuid}/agenda-items",
        summary="Propose an agenda item",
        data_dto=Body[AgendaItemIn],
        **requires(WRITE),
    )
    async def propose(
        self,
        request: AnyRequest,
        data: JSONBody[AgendaItemIn],
        db_session: DbSession,
        meeting_id: FromPath[uuid.UUID],
    ) -> Response[AgendaItem]:
        """Members and facilitators (observers: 403); the item is `proposed` and the
        facilitators learn it (`agenda_item.proposed`)."""
        access = await service.require_access(db_session, request.user.tenant_id, meeting_id)
        item = await service.propose_agenda_item(db_session, access, data)
        return Response(
            item,
            status_code=201,
            headers={"ETag": etag_of(item), "Location": f"/v1/agenda-items/{item.id}"},
        )

    @get("/{meeting_id:uuid}/agenda-items", summary="The agenda", **requires(READ))
    async def agenda(
        self,
        request: AnyRequest,
        db_session: DbSession,
        page: Pagination,
        meeting_id: FromPath[uuid.UUID],
    ) -> Response[Page[AgendaItem]]:
        """Accepted items by `position`, then proposals by time, then rejected ones. Members see
        accepted items and their own proposals; facilitators see all."""
        access = await service.require_access(db_session, request.user.tenant_id, meeting_id)
        result = await service.list_agenda(db_session, access, after=page.after, limit=page.limit)
        return page_response(request, result)

    @put(
        "/{meeting_id:uuid}/minutes",
        summary="Write the draft minutes",
        data_dto=Body[MinutesIn],
        **requires(WRITE),
    )
    async def put_minutes(
        self,
        request: AnyRequest,
        data: JSONBody[MinutesIn],
        db_session: DbSession,
        meeting_id: FromPath[uuid.UUID],
    ) -> Minutes:
        """Facilitators. A draft only facilitators see until it is published."""
        access = await service.require_access(db_session, request.user.tenant_id, meeting_id)
        return await service.put_minutes(db_session, access, data)

    @get("/{meeting_id:uuid}/minutes", summary="The minutes", **requires(READ))
    async def get_minutes(
        self,
        request: AnyRequest,
        db_session: DbSession,
        meeting_id: FromPath[uuid.UUID],
        draft: Annotated[
            bool, QueryParameter(name="draft", description="Facilitators: the draft.")
        ] = False,
    ) -> Response[Minutes]:
        """The published minutes (404 before the first publish); `?draft=true` for facilitators."""
        access = await service.require_access(db_session, request.user.tenant_id, meeting_id)
        return _with_etag(await service.get_minutes(db_session, access, draft=draft))

    @post(
        "/{meeting_id:uuid}/minutes/publish",
        summary="Publish the minutes",
        status_code=200,
        **requires(WRITE),
    )
    async def publish_minutes(
        self, request: AnyRequest, db_session: DbSession, meeting_id: FromPath[uuid.UUID]
    ) -> Minutes:
        """Facilitators. Raises `revision`; replaces the meeting's action items (keeping the
        status of those with the same title); owners learn their items (`action_item.assigned`)."""
        access = await service.require_access(db_session, request.user.tenant_id, meeting_id)
        return await service.publish_minutes(db_session, access)

    @put(
        "/{meeting_id:uuid}/attendance",
        summary="Record who came",
        data_dto=Body[AttendanceIn],
        **requires(WRITE),
    )
    async def put_attendance(
        self,
        request: AnyRequest,
        data: JSONBody[AttendanceIn],
        db_session: DbSession,
        meeting_id: FromPath[uuid.UUID],
    ) -> Attendance:
        """Facilitators; replaces what was recorded."""
        access = await service.require_access(db_session, request.user.tenant_id, meeting_id)
        return await service.put_attendance(db_session, access, data)

    @get("/{meeting_id:uuid}/attendance", summary="Who came", **requires(READ))
    async def get_attendance(
        self, request: AnyRequest, db_session: DbSession, meeting_id: FromPath[uuid.UUID]
    ) -> Response[Attendance]:
        access = await service.require_access(db_session, request.user.tenant_id, meeting_id)
        return _with_etag(await service.get_attendance(db_session, access))


class AgendaItemsController(Controller):
    path = "/agenda-items"
    tags = TAGS

    @get("/{item_id:uuid}", summary="One agenda item", **requires(READ))
    async def get_one(
        self, request: AnyRequest, db_session: DbSession, item_id: FromPath[uuid.UUID]
    ) -> Response[AgendaItem]:
        return _with_etag(
            await service.get_agenda_item(db_session, request.user.tenant_id, item_id)
        )

    @patch(
        "/{item_id:uuid}",
        summary="Change an agenda item",
        data_dto=Body[AgendaItemPatch],
        **requires(WRITE),
    )
    async def change(
        self,
        request: AnyRequest,
        data: JSONBody[AgendaItemPatch],
        db_session: DbSession,
        item_id: FromPath[uuid.UUID],
    ) -> Response[AgendaItem]:
        """Facilitators accept, reject and order (`position`, 1-based among accepted items);
        the proposer changes `title`, `description`, `duration_minutes` while it is proposed.
        Honours `If-Match`."""
        tenant_id = request.user.tenant_id
        check_if_match(
            request, etag_of(await service.get_agenda_item(db_session, tenant_id, item_id))
        )
        return _with_etag(await service.change_agenda_item(db_session, tenant_id, item_id, data))

    @delete("/{item_id:uuid}", summary="Delete an agenda item", **requires(WRITE))
    async def remove(
        self, request: AnyRequest, db_session: DbSession, item_id: FromPath[uuid.UUID]
    ) -> None:
        """Facilitators, or the proposer while it is proposed. Honours `If-Match`."""
        tenant_id = request.user.tenant_id
        check_if_match(
            request, etag_of(await service.get_agenda_item(db_session, tenant_id, item_id))
        )
        await service.delete_agenda_item(db_session, tenant_id, item_id)


class ActionItemsController(Controller):
    path = "/action-items"
    tags = TAGS

    @get("/{item_id:uuid}", summary="One action item", **requires(READ))
    async def get_one(
        self, request: AnyRequest, db_session: DbSession, item_id: FromPath[uuid.UUID]
    ) -> Response[ActionItem]:
        return _with_etag(
            await service.get_action_item(db_session, request.user.tenant_id, item_id)
        )

    @patch(
        "/{item_id:uuid}",
        summary="Mark an action item open or done",
        data_dto=Body[ActionItemPatch],
        **requires(WRITE),
    )
    async def change(
        self,
        request: AnyRequest,
        data: JSONBody[ActionItemPatch],
        db_session: DbSession,
        item_id: FromPath[uuid.UUID],
    ) -> Response[ActionItem]:
        """The owner tenant or a facilitator. Honours `If-Match`."""
        tenant_id = request.user.tenant_id
        check_if_match(
            request, etag_of(await service.get_action_item(db_session, tenant_id, item_id))
        )
        return _with_etag(await service.change_action_item(db_session, tenant_id, item_id, data))


CONTROLLERS = [
    GroupMeetingsController,
    MeetingSeriesController,
    MeetingsController,
    AgendaItemsController,
    ActionItemsController,
]
