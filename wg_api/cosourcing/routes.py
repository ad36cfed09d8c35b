"""Co-sourcing endpoints: remediation rooms (opt in, opt out, messages, action items), what a
group's facilitators see of them, planned audits and audit overlaps."""

from __future__ import annotations

import uuid
from typing import Annotated, Any

from litestar import Controller, Request, Response, delete, get, patch, post
from litestar.params import FromPath, JSONBody, QueryParameter

from wg_api.cosourcing import service
from wg_api.cosourcing.schemas import (
    ActionItem,
    ActionItemIn,
    ActionItemPage,
    ActionItemPatch,
    AuditOverlap,
    AuditOverlapPage,
    GroupRoomPage,
    Message,
    MessageIn,
    MessagePage,
    PlannedAudit,
    PlannedAuditIn,
    PlannedAuditPage,
    RemediationRoom,
    RemediationRoomPage,
)
from wg_api.identity.access import requires
from wg_api.identity.principal import Principal
from wg_api.platform.http import Body, check_if_match, etag_of
from wg_api.platform.pagination import Pagination, page_response
from wg_api.platform.transaction import DbSession

TAGS = ["Co-sourcing"]
SupplierQuery = Annotated[uuid.UUID | None, QueryParameter(name="supplier_id")]


class RemediationRoomsController(Controller):
    path = "/remediation-rooms"
    tags = TAGS

    @get(summary="Your remediation rooms", **requires("findings:read"))
    async def list_rooms(
        self, request: Request[Principal, Any, Any], db_session: DbSession, page: Pagination
    ) -> Response[RemediationRoomPage]:
        """The rooms you were invited to: as the contributor of a zero-tolerance shared finding,
        or alerted about one (`supplier.zero_tolerance_alert`). Newest first. `status` is your
        own (`invited`, `opted_in`, `introduced`); `participants` stays empty until you are
        introduced, which happens once at least two tenants have opted in."""
        result = await service.list_rooms(
            db_session, request.user.tenant_id, after=page.after, limit=page.limit
        )
        return page_response(request, result)

    @get("/{room_id:uuid}", summary="One remediation room", **requires("findings:read"))
    async def get_room(
        self,
        request: Request[Principal, Any, Any],
        db_session: DbSession,
        room_id: FromPath[uuid.UUID],
    ) -> Response[RemediationRoom]:
        """404, like a random id, for a room you were not invited to."""
        room = await service.get_room(db_session, request.user.tenant_id, room_id)
        return Response(room, headers={"ETag": etag_of(room)})

    @post(
        "/{room_id:uuid}/opt-in",
        summary="Opt in to act together",
        status_code=200,
        **requires("sharing:write"),
    )
    async def opt_in(
        self,
        request: Request[Principal, Any, Any],
        db_session: DbSession,
        room_id: FromPath[uuid.UUID],
    ) -> RemediationRoom:
        """Once at least two invited tenants have opted in, each is introduced to the others
        (`remediation_room.introduced`, with their names); a later opt-in joins at once.
        Opting in again changes nothing."""
        return await service.opt_in_room(db_session, request.user.tenant_id, room_id)

    @post(
        "/{room_id:uuid}/opt-out",
        summary="Withdraw your opt-in before the introduction",
        status_code=200,
        **requires("sharing:write"),
    )
    async def opt_out(
        self,
        request: Request[Principal, Any, Any],
        db_session: DbSession,
        room_id: FromPath[uuid.UUID],
    ) -> RemediationRoom:
        """Before the introduction the opt-in is deleted and no event is written: nobody can
        tell it was ever there. After it, 409 `/problems/already-introduced`."""
        return await service.opt_out_room(db_session, request.user.tenant_id, room_id)

    @get("/{room_id:uuid}/messages", summary="The room's thread", **requires("findings:read"))
    async def list_messages(
        self,
        request: Request[Principal, Any, Any],
        db_session: DbSession,
        page: Pagination,
        room_id: FromPath[uuid.UUID],
    ) -> Response[MessagePage]:
        """Participants only (404 otherwise, as for a random id); oldest first."""
        result = await service.list_messages(
            db_session, request.user.tenant_id, room_id, after=page.after, limit=page.limit
        )
        return page_response(request, result)

    @post(
        "/{room_id:uuid}/messages",
        summary="Post to the room's thread",
        data_dto=Body[MessageIn],
        **requires("sharing:write"),
    )
    async def post_message(
        self,
        request: Request[Principal, Any, Any],
        data: JSONBody[MessageIn],
        db_session: DbSession,
        room_id: FromPath[uuid.UUID],
    ) -> Message:
        """The other participants get `remediation_room.message_posted`."""
        return await service.post_message(db_session, request.user.tenant_id, room_id, data)

    @get(
        "/{room_id:uuid}/action-items",
        summary="The room's action items",
        **requires("findings:read"),
    )
    async def list_action_items(
        self,
        request: Request[Principal, Any, Any],
        db_session: DbSession,
        page: Pagination,
        room_id: FromPath[uuid.UUID],
    ) -> Response[ActionItemPage]:
        """Participants only; oldest first."""
        result = await service.list_action_items(
            db_session, request.user.tenant_id, room_id, after=page.after, limit=page.limit
        )
        return page_response(request, result)

    @post(
        "/{room_id:uuid}/action-items",
        summary="Add an action item",
        data_dto=Body[ActionItemIn],
        **requires("sharing:write"),
    )
    async def create_action_item(
        self,
        request: Request[Principal, Any, Any],
        data: JSONBody[ActionItemIn],
        db_session: DbSession,
        room_id: FromPath[uuid.UUID],
    ) -> ActionItem:
        """`owner_tenant_id`, if given, is a participant (422 otherwise)."""
        return await service.create_action_item(db_session, request.user.tenant_id, room_id, data)

    @patch(
        "/{room_id:uuid}/action-items/{item_id:uuid}",
        summary="Change an action item",
        data_dto=Body[ActionItemPatch],
        **requires("sharing:write"),
    )
    async def update_action_item(
        self,
        request: Request[Principal, Any, Any],
        data: JSONBody[ActionItemPatch],
        db_session: DbSession,
        room_id: FromPath[uuid.UUID],
        item_id: FromPath[uuid.UUID],
    ) -> ActionItem:
        """Any participant: `status`, `title`, `due_on`. Honours `If-Match`."""
        current = await service.get_action_item(
            db_session, request.user.tenant_id, room_id, item_id
        )
        check_if_match(request, etag_of(current))
        return await service.update_action_item(
            db_session, request.user.tenant_id, room_id, item_id, data
        )


class GroupRemediationRoomsController(Controller):
    path = "/working-groups/{group_id:uuid}/remediation-rooms"
    tags = TAGS

    @get(summary="A group's remediation rooms (facilitators)", **requires("findings:read"))
    async def list_group_rooms(
        self,
        request: Request[Principal, Any, Any],
        db_session: DbSession,
        page: Pagination,
        group_id: FromPath[uuid.UUID],
    ) -> Response[GroupRoomPage]:
        """Facilitators see that a room exists and how many are in it, never who; only rooms
        whose participants have been introduced (so never fewer than two). Other members: 403;
        tenants outside the group: 404."""
        result = await service.group_rooms(
            db_session, request.user.tenant_id, group_id, after=page.after, limit=page.limit
        )
        return page_response(request, result)


class PlannedAuditsController(Controller):
    path = "/planned-audits"
    tags = TAGS

    @post(
        summary="Register a planned audit",
        data_dto=Body[PlannedAuditIn],
        **requires("sharing:write"),
    )
    async def create(
        self,
        request: Request[Principal, Any, Any],
        data: JSONBody[PlannedAuditIn],
        db_session: DbSession,
    ) -> PlannedAudit:
        """Private: nobody else ever reads it. With `open_to_joint_audit` (default true), the
        worker matches it with other tenants' plans for the same supplier whose windows overlap
        (both days included), and both sides get `audit.overlap_found`. `supplier_id` must be
        one of your suppliers (422 otherwise, whether or not it exists)."""
        return await service.create_planned_audit(db_session, request.user.tenant_id, data)

    @get(summary="Your planned audits", **requires("findings:read"))
    async def list_audits(
        self,
        request: Request[Principal, Any, Any],
        db_session: DbSession,
        page: Pagination,
        supplier_id: SupplierQuery = None,
    ) -> Response[PlannedAuditPage]:
        """Ordered by the window's first day."""
        result = await service.list_planned_audits(
            db_session,
            request.user.tenant_id,
            supplier_id=supplier_id,
            after=page.after,
            limit=page.limit,
        )
        return page_response(request, result)

    @get("/{audit_id:uuid}", summary="One planned audit", **requires("findings:read"))
    async def get_audit(
        self,
        request: Request[Principal, Any, Any],
        db_session: DbSession,
        audit_id: FromPath[uuid.UUID],
    ) -> Response[PlannedAudit]:
        audit = await service.get_planned_audit(db_session, request.user.tenant_id, audit_id)
        return Response(audit, headers={"ETag": etag_of(audit)})

    @delete("/{audit_id:uuid}", summary="Delete a planned audit", **requires("sharing:write"))
    async def delete_audit(
        self,
        request: Request[Principal, Any, Any],
        db_session: DbSession,
        audit_id: FromPath[uuid.UUID],
    ) -> None:
        """Its overlaps that have not led to an introduction disappear for both sides. Honours
        `If-Match`."""
        current = await service.get_planned_audit(db_session, request.user.tenant_id, audit_id)
        check_if_match(request, etag_of(current))
        await service.delete_planned_audit(db_session, request.user.tenant_id, audit_id)


class AuditOverlapsController(Controller):
    path = "/audit-overlaps"
    tags = TAGS

    @get(summary="Overlaps of your planned audits", **requires("findings:read"))
    async def list_overlaps(
        self,
        request: Request[Principal, Any, Any],
        db_session: DbSession,
        page: Pagination,
        supplier_id: SupplierQuery = None,
    ) -> Response[AuditOverlapPage]:
        """Each overlap names the supplier and the common window only, until both sides opt in.
        A `supplier_id` you do not link to answers 404 exactly like one that does not exist."""
        result = await service.list_overlaps(
            db_session,
            request.user.tenant_id,
            supplier_id=supplier_id,
            after=page.after,
            limit=page.limit,
        )
        return page_response(request, result)

    @get("/{overlap_id:uuid}", summary="One audit overlap", **requires("findings:read"))
    async def get_overlap(
        self,
        request: Request[Principal, Any, Any],
        db_session: DbSession,
        overlap_id: FromPath[uuid.UUID],
    ) -> Response[AuditOverlap]:
        overlap = await service.get_overlap(db_session, request.user.tenant_id, overlap_id)
        return Response(overlap, headers={"ETag": etag_of(overlap)})

    @post(
        "/{overlap_id:uuid}/opt-in",
        summary="Opt in to a joint audit",
        status_code=200,
        **requires("sharing:write"),
    )
    async def opt_in(
        self,
        request: Request[Principal, Any, Any],
        db_session: DbSession,
        overlap_id: FromPath[uuid.UUID],
    ) -> AuditOverlap:
        """When both sides have opted in they are introduced (`audit_overlap.introduced`)."""
        return await service.opt_in_overlap(db_session, request.user.tenant_id, overlap_id)

    @post(
        "/{overlap_id:uuid}/opt-out",
        summary="Withdraw your opt-in before the introduction",
        status_code=200,
        **requires("sharing:write"),
    )
    async def opt_out(
        self,
        request: Request[Principal, Any, Any],
        db_session: DbSession,
        overlap_id: FromPath[uuid.UUID],
    ) -> AuditOverlap:
        """Leaves no trace before the introduction; 409 after it."""
        return await service.opt_out_overlap(db_session, request.user.tenant_id, overlap_id)


CONTROLLERS = [
    RemediationRoomsController,
    GroupRemediationRoomsController,
    PlannedAuditsController,
    AuditOverlapsController,
]
