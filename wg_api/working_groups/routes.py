"""Working-group endpoints: groups, members, and invitations from both sides.

Everything under /working-groups/{id} answers 404, exactly as for a random id, to a tenant that is
not an active member; members who are not facilitators get 403 on facilitator actions.
"""

from __future__ import annotations

import uuid
from typing import Annotated, Any

import msgspec
from litestar import Controller, Request, Response, delete, get, patch, post
from litestar.params import FromPath, JSONBody, QueryParameter

from wg_api.identity.access import requires
from wg_api.identity.principal import Principal
from wg_api.platform.http import Body, check_if_match, etag_of
from wg_api.platform.pagination import Page, Pagination, page_response
from wg_api.platform.transaction import DbSession
from wg_api.working_groups import service
from wg_api.working_groups.schemas import (
    Invitation,
    InvitationIn,
    InvitationStatus,
    Member,
    MemberPatch,
    WorkingGroup,
    WorkingGroupIn,
    WorkingGroupPatch,
)

READ = "working-groups:read"
WRITE = "working-groups:write"

StatusFilter = Annotated[
    InvitationStatus | None,
    QueryParameter(name="status", description="Only invitations with this status."),
]


def _with_etag(resource: msgspec.Struct) -> Response[Any]:
    return Response(resource, headers={"ETag": etag_of(resource)})


def _created(resource: msgspec.Struct, location: str) -> Response[Any]:
    return Response(
        resource, status_code=201, headers={"ETag": etag_of(resource), "Location": location}
    )


class WorkingGroupsController(Controller):
    path = "/working-groups"
    tags = ["Working groups"]

    @post(summary="Create a working group", data_dto=Body[WorkingGroupIn], **requires(WRITE))
    async def create(
        self,
        request: Request[Principal, Any, Any],
        data: JSONBody[WorkingGroupIn],
        db_session: DbSession,
    ) -> Response[WorkingGroup]:
        """Your tenant becomes the group's first member, as its facilitator. `timezone` is an
        IANA zone (default Asia/Hong_Kong); `anonymity_threshold` is at least 3 (default 3)."""
        group = await service.create_group(db_session, request.user.tenant_id, data)
        return _created(group, f"/v1/working-groups/{group.id}")

    @get(summary="Your working groups", **requires(READ))
    async def list_groups(
        self, request: Request[Principal, Any, Any], db_session: DbSession, page: Pagination
    ) -> Response[Page[WorkingGroup]]:
        """The groups your tenant is an active member of, oldest first, with your role."""
        result = await service.list_groups(
            db_session, request.user.tenant_id, after=page.after, limit=page.limit
        )
        return page_response(request, result)

    @get("/{group_id:uuid}", summary="One working group", **requires(READ))
    async def get_one(
        self,
        request: Request[Principal, Any, Any],
        db_session: DbSession,
        group_id: FromPath[uuid.UUID],
    ) -> Response[WorkingGroup]:
        member = await service.require_member(db_session, group_id, request.user.tenant_id)
        return _with_etag(await service.get_group(db_session, member))

    @patch(
        "/{group_id:uuid}",
        summary="Change a working group",
        data_dto=Body[WorkingGroupPatch],
        **requires(WRITE),
    )
    async def change(
        self,
        request: Request[Principal, Any, Any],
        data: JSONBody[WorkingGroupPatch],
        db_session: DbSession,
        group_id: FromPath[uuid.UUID],
    ) -> Response[WorkingGroup]:
        """Facilitators only. Send only what changes; `null` clears the description. Honours
        `If-Match`."""
        member = await service.require_member(db_session, group_id, request.user.tenant_id)
        service.require_facilitator(member)
        check_if_match(request, etag_of(await service.get_group(db_session, member)))
        return _with_etag(await service.change_group(db_session, member, data))

    @get("/{group_id:uuid}/members", summary="The group's members", **requires(READ))
    async def list_members(
        self,
        request: Request[Principal, Any, Any],
        db_session: DbSession,
        page: Pagination,
        group_id: FromPath[uuid.UUID],
    ) -> Response[Page[Member]]:
        """Active member tenants, in the order they joined. Who is in the room is not secret."""
        member = await service.require_member(db_session, group_id, request.user.tenant_id)
        result = await service.list_members(db_session, member, after=page.after, limit=page.limit)
        return page_response(request, result)

    @get("/{group_id:uuid}/members/{tenant_id:uuid}", summary="One member", **requires(READ))
    async def get_member(
        self,
        request: Request[Principal, Any, Any],
        db_session: DbSession,
        group_id: FromPath[uuid.UUID],
        tenant_id: FromPath[uuid.UUID],
    ) -> Response[Member]:
        member = await service.require_member(db_session, group_id, request.user.tenant_id)
        return _with_etag(await service.get_member(db_session, member, tenant_id))

    @patch(
        "/{group_id:uuid}/members/{tenant_id:uuid}",
        summary="Change a member's role",
        data_dto=Body[MemberPatch],
        **requires(WRITE),
    )
    async def change_member(
        self,
        request: Request[Principal, Any, Any],
        data: JSONBody[MemberPatch],
        db_session: DbSession,
        group_id: FromPath[uuid.UUID],
        tenant_id: FromPath[uuid.UUID],
    ) -> Response[Member]:
        """Facilitators only. The last facilitator cannot be made anything else (409).
        Honours `If-Match`."""
        member = await service.require_member(db_session, group_id, request.user.tenant_id)
        service.require_facilitator(member)
        check_if_match(request, etag_of(await service.get_member(db_session, member, tenant_id)))
        changed = await service.change_member_role(db_session, member, tenant_id, data.role)
        return _with_etag(changed)

    @delete(
        "/{group_id:uuid}/members/{tenant_id:uuid}",
        summary="Remove a member, or leave",
        **requires(WRITE),
    )
    async def remove_member(
        self,
        request: Request[Principal, Any, Any],
        db_session: DbSession,
        group_id: FromPath[uuid.UUID],
        tenant_id: FromPath[uuid.UUID],
    ) -> None:
        """Facilitators remove members; any member removes itself (leaves) with its own tenant
        id. Access ends at once. The last facilitator cannot leave (409). Honours `If-Match`."""
        caller = request.user.tenant_id
        member = await service.require_member(db_session, group_id, caller)
        if tenant_id != caller:
            service.require_facilitator(member)
        check_if_match(request, etag_of(await service.get_member(db_session, member, tenant_id)))
        await service.remove_member(db_session, member, tenant_id)

    @post(
        "/{group_id:uuid}/invitations",
        summary="Invite a tenant",
        data_dto=Body[InvitationIn],
        **requires(WRITE),
    )
    async def invite(
        self,
        request: Request[Principal, Any, Any],
        data: JSONBody[InvitationIn],
        db_session: DbSession,
        group_id: FromPath[uuid.UUID],
    ) -> Response[Invitation]:
        """Facilitators only. Invites the tenant with this slug (see `GET /v1/tenants`) in a
        role; it joins when it accepts. 422 for an unknown slug; 409 if it is already a member
        or already has a pending invitation."""
        member = await service.require_member(db_session, group_id, request.user.tenant_id)
        invitation = await service.invite(db_session, member, data)
        return _created(invitation, f"/v1/working-groups/{group_id}/invitations/{invitation.id}")

    @get(
        "/{group_id:uuid}/invitations",
        summary="The group's invitations",
        **requires(READ),
    )
    async def list_invitations(
        self,
        request: Request[Principal, Any, Any],
        db_session: DbSession,
        page: Pagination,
        group_id: FromPath[uuid.UUID],
        status: StatusFilter = None,
    ) -> Response[Page[Invitation]]:
        """Facilitators only. Newest first."""
        member = await service.require_member(db_session, group_id, request.user.tenant_id)
        result = await service.list_group_invitations(
            db_session, member, status=status, after=page.after, limit=page.limit
        )
        return page_response(request, result)

    @get(
        "/{group_id:uuid}/invitations/{invitation_id:uuid}",
        summary="One of the group's invitations",
        **requires(READ),
    )
    async def get_invitation(
        self,
        request: Request[Principal, Any, Any],
        db_session: DbSession,
        group_id: FromPath[uuid.UUID],
        invitation_id: FromPath[uuid.UUID],
    ) -> Response[Invitation]:
        """Facilitators only."""
        member = await service.require_member(db_session, group_id, request.user.tenant_id)
        return _with_etag(await service.get_group_invitation(db_session, member, invitation_id))

    @post(
        "/{group_id:uuid}/invitations/{invitation_id:uuid}/revoke",
        summary="Revoke a pending invitation",
        status_code=200,
        **requires(WRITE),
    )
    async def revoke(
        self,
        request: Request[Principal, Any, Any],
        db_session: DbSession,
        group_id: FromPath[uuid.UUID],
        invitation_id: FromPath[uuid.UUID],
    ) -> Invitation:
        """Facilitators only; the invited tenant can no longer accept it. 409 if it was
        already answered."""
        member = await service.require_member(db_session, group_id, request.user.tenant_id)
        return await service.revoke(db_session, member, invitation_id)


class InvitationsController(Controller):
    path = "/invitations"
    tags = ["Working groups"]

    @get(summary="Invitations to your tenant", **requires(READ))
    async def list_invitations(
        self,
        request: Request[Principal, Any, Any],
        db_session: DbSession,
        page: Pagination,
        status: StatusFilter = None,
    ) -> Response[Page[Invitation]]:
        """Every invitation addressed to your tenant, newest first; `?status=pending` for the
        ones still waiting for an answer."""
        result = await service.list_my_invitations(
            db_session, request.user.tenant_id, status=status, after=page.after, limit=page.limit
        )
        return page_response(request, result)

    @get("/{invitation_id:uuid}", summary="One invitation to your tenant", **requires(READ))
    async def get_one(
        self,
        request: Request[Principal, Any, Any],
        db_session: DbSession,
        invitation_id: FromPath[uuid.UUID],
    ) -> Response[Invitation]:
        invitation = await service.get_my_invitation(
            db_session, request.user.tenant_id, invitation_id
        )
        return _with_etag(invitation)

    @post(
        "/{invitation_id:uuid}/accept",
        summary="Accept an invitation",
        status_code=200,
        **requires(WRITE),
    )
    async def accept(
        self,
        request: Request[Principal, Any, Any],
        db_session: DbSession,
        invitation_id: FromPath[uuid.UUID],
    ) -> Invitation:
        """Your tenant becomes an active member at once, in the invited role. 409 if the
        invitation was already answered or revoked."""
        return await service.accept(db_session, request.user.tenant_id, invitation_id)

    @post(
        "/{invitation_id:uuid}/decline",
        summary="Decline an invitation",
        status_code=200,
        **requires(WRITE),
    )
    async def decline(
        self,
        request: Request[Principal, Any, Any],
        db_session: DbSession,
        invitation_id: FromPath[uuid.UUID],
    ) -> Invitation:
        """The group's facilitators learn it (`invitation.declined`). 409 if already answered."""
        return await service.decline(db_session, request.user.tenant_id, invitation_id)
