"""Working-group rules: who may do what in a group, invitations, membership changes, events.

Other domains (sharing, meetings, funding) use `membership`, `require_member`,
`require_facilitator`, `member_roles`, `active_member_count` and `publish_to_group`; nothing
else is theirs to call.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Mapping
from typing import Any

import msgspec
from sqlalchemy.ext.asyncio import AsyncConnection

from wg_api.identity import service as identity
from wg_api.platform.errors import (
    Conflict,
    FieldError,
    Forbidden,
    NotFound,
    ValidationFailed,
)
from wg_api.platform.events import record_event
from wg_api.platform.models import Record
from wg_api.platform.pagination import Page, identifier, keyset, moment, paginate
from wg_api.platform.validation import is_valid_timezone
from wg_api.working_groups import repository
from wg_api.working_groups.repository import Membership, WorkingGroupRecord
from wg_api.working_groups.schemas import (
    Invitation,
    InvitationIn,
    Member,
    TenantRef,
    WorkingGroup,
    WorkingGroupIn,
    WorkingGroupPatch,
    WorkingGroupRef,
)

GROUP_NOT_FOUND = "No such working group."
MEMBER_NOT_FOUND = "No such member of this working group."
INVITATION_NOT_FOUND = "No such invitation."
FACILITATOR = "facilitator"


class LastFacilitator(Conflict):
    kind = "last-facilitator"
    title = "Last facilitator"
    description = (
        "A working group always keeps at least one facilitator: make another member a "
        "facilitator before this one leaves, is removed or changes role."
    )


__all__ = [
    "LastFacilitator",
    "Membership",
    "WorkingGroupRecord",
    "active_member_count",
    "member_roles",
    "membership",
    "publish_to_group",
    "require_member",
]


async def membership(
    session: AsyncConnection, group_id: uuid.UUID, tenant_id: uuid.UUID
) -> Membership | None:
    """`tenant_id`'s active membership of the group (its role and the group row), or None."""
    return await repository.membership(session, group_id, tenant_id)


async def require_member(
    session: AsyncConnection, group_id: uuid.UUID, tenant_id: uuid.UUID
) -> Membership:
    """The active membership, or NotFound exactly as for a group that does not exist."""
    found = await repository.membership(session, group_id, tenant_id)
    if found is None:
        raise NotFound(GROUP_NOT_FOUND)
    return found


async def active_member_count(
    session: AsyncConnection, group_id: uuid.UUID, roles: tuple[str, ...] | None = None
) -> int:
    """Active member tenants of the group, only those with one of `roles` if given."""
    return await repository.active_member_count(session, group_id, roles)


async def publish_to_group(
    session: AsyncConnection, group_id: uuid.UUID, type: str, data: dict[str, Any]
) -> None:
    """`type` into the feed of every active member of the group, the caller's included."""
    await repository.publish_group_event(session, group_id, type, data, include_self=True)


async def member_roles(session: AsyncConnection, group_id: uuid.UUID) -> dict[uuid.UUID, str]:
    """Every active member tenant of the group with its role (a group has a few dozen)."""
    roles: dict[uuid.UUID, str] = {}
    after: tuple[Any, ...] | None = None
    while True:
        rows = await repository.active_members(session, group_id, after=after, limit=500)
        roles.update((row.tenant_id, row.role) for row in rows)
        if len(rows) < 500:
            return roles
        after = (rows[-1].joined_at, rows[-1].tenant_id)


def require_facilitator(member: Membership) -> None:
    if not member.is_facilitator:
        raise Forbidden("Only the group's facilitators may do this.")


def group_out(member: Membership, member_count: int) -> WorkingGroup:
    group = member.group
    return WorkingGroup(
        id=group.id,
        name=group.name,
        description=group.description,
        timezone=group.timezone,
        anonymity_threshold=group.anonymity_threshold,
        member_count=member_count,
        my_role=member.role,  # type: ignore[arg-type]
        created_at=group.created_at,
        updated_at=group.updated_at,
    )


def _group_ref(group: WorkingGroupRecord) -> WorkingGroupRef:
    return WorkingGroupRef(id=group.id, name=group.name)


async def _tenant_refs(
    session: AsyncConnection, rows: Iterable[Record]
) -> dict[uuid.UUID, TenantRef]:
    """The tenants of these member or invitation rows, from identity's public directory."""
    found = await identity.tenants_by_id(session, (row.tenant_id for row in rows))
    return {t.id: TenantRef(id=t.id, slug=t.slug, name=t.name) for t in found.values()}


def _member_out(row: Record, tenants: Mapping[uuid.UUID, TenantRef]) -> Member:
    return Member(
        tenant=tenants[row.tenant_id],
        role=row.role,
        joined_at=row.joined_at,
    )


async def _members_out(session: AsyncConnection, rows: list[Record]) -> list[Member]:
    tenants = await _tenant_refs(session, rows)
    return [_member_out(row, tenants) for row in rows]


def _invitation_out(
    row: Record, group_name: str, tenants: Mapping[uuid.UUID, TenantRef]
) -> Invitation:
    return Invitation(
        id=row.id,
        working_group=WorkingGroupRef(id=row.group_id, name=group_name),
        tenant=tenants[row.tenant_id],
        role=row.role,
        status=row.status,
        created_at=row.created_at,
        responded_at=row.responded_at,
    )


def _group_errors(name: str | None, timezone: str | None) -> list[FieldError]:
    errors: list[FieldError] = []
    if name is not None and not name.strip():
        errors.append(FieldError("name", "must not be blank"))
    if timezone is not None and not is_valid_timezone(timezone):
        errors.append(FieldError("timezone", "must be an IANA time zone such as Asia/Hong_Kong"))
    return errors


async def create_group(
    session: AsyncConnection, tenant_id: uuid.UUID, data: WorkingGroupIn
) -> WorkingGroup:
    if errors := _group_errors(data.name, data.timezone):
        raise ValidationFailed("The working group is not valid.", errors=errors)
    group_id = uuid.uuid4()
    await repository.insert_group(
        session,
        group_id,
        {
            "name": data.name.strip(),
            "description": data.description,
            "timezone": data.timezone,
            "anonymity_threshold": data.anonymity_threshold,
        },
    )
    await repository.insert_membership(session, group_id, tenant_id, FACILITATOR)
    created = await require_member(session, group_id, tenant_id)
    group = group_out(created, 1)
    await record_event(
        session,
        tenant_id,
        "working_group.created",
        {"working_group": _group_fields(created.group)},
    )
    return group


def _group_fields(group: WorkingGroupRecord) -> dict[str, Any]:
    return {
        "id": str(group.id),
        "name": group.name,
        "description": group.description,
        "timezone": group.timezone,
        "anonymity_threshold": group.anonymity_threshold,
    }


async def list_groups(
    session: AsyncConnection, tenant_id: uuid.UUID, *, after: tuple[Any, ...] | None, limit: int
) -> Page[WorkingGroup]:
    rows = await repository.groups_of(
        session, tenant_id, after=keyset(after, moment, identifier), limit=limit + 1
    )
    items = [group_out(member, count) for member, count in rows]
    return paginate(items, limit, lambda g: [g.created_at, g.id])


async def get_group(session: AsyncConnection, member: Membership) -> WorkingGroup:
    return group_out(member, await repository.active_member_count(session, member.group_id))


async def change_group(
    session: AsyncConnection, member: Membership, patch: WorkingGroupPatch
) -> WorkingGroup:
    require_facilitator(member)
    name = None if patch.name is msgspec.UNSET else patch.name
    timezone = None if patch.timezone is msgspec.UNSET else patch.timezone
    if errors := _group_errors(name, timezone):
        raise ValidationFailed("The working group is not valid.", errors=errors)
    group = member.group
    wanted: dict[str, Any] = {}
    if name is not None and name.strip() != group.name:
        wanted["name"] = name.strip()
    if patch.description is not msgspec.UNSET and patch.description != group.description:
        wanted["description"] = patch.description
    if timezone is not None and timezone != group.timezone:
        wanted["timezone"] = timezone
    if (
        patch.anonymity_threshold is not msgspec.UNSET
        and patch.anonymity_threshold != group.anonymity_threshold
    ):
        wanted["anonymity_threshold"] = patch.anonymity_threshold
    if not wanted:
        return await get_group(session, member)
    await repository.update_group(session, group.id, wanted)
    changed = await require_member(session, group.id, member.tenant_id)
    await repository.publish_group_event(
        session,
        group.id,
        "working_group.updated",
        {"working_group": _group_fields(changed.group), "changed": sorted(wanted)},
        include_self=True,
    )
    return await get_group(session, changed)


async def list_members(
    session: AsyncConnection, member: Membership, *, after: tuple[Any, ...] | None, limit: int
) -> Page[Member]:
    rows = await repository.active_members(
        session, member.group_id, after=keyset(after, moment, identifier), limit=limit + 1
    )
    return paginate(await _members_out(session, rows), limit, lambda m: [m.joined_at, m.tenant.id])


async def get_member(session: AsyncConnection, member: Membership, tenant_id: uuid.UUID) -> Member:
    row = await repository.active_member(session, member.group_id, tenant_id)
    if row is None:
        raise NotFound(MEMBER_NOT_FOUND)
    return (await _members_out(session, [row]))[0]


async def _lock_as_facilitator(session: AsyncConnection, member: Membership) -> Membership:
    """Lock the group against concurrent membership changes; the caller must still facilitate.

    After the lock every read sees the committed state, so "the last facilitator" cannot be
    demoted or removed by two facilitators at once.
    """
    require_facilitator(member)
    await repository.lock_group(session, member.group_id)
    fresh = await require_member(session, member.group_id, member.tenant_id)
    require_facilitator(fresh)
    return fresh


async def _keep_a_facilitator(session: AsyncConnection, group_id: uuid.UUID, detail: str) -> None:
    if await repository.facilitator_count(session, group_id) <= 1:
        raise LastFacilitator(detail)


def _member_event(group: WorkingGroupRecord, member: Member, **extra: Any) -> dict[str, Any]:
    return {
        "working_group": {"id": str(group.id), "name": group.name},
        "tenant": msgspec.to_builtins(member.tenant),
        **extra,
    }


async def change_member_role(
    session: AsyncConnection, caller: Membership, tenant_id: uuid.UUID, role: str
) -> Member:
    caller = await _lock_as_facilitator(session, caller)
    target = await get_member(session, caller, tenant_id)
    if target.role == role:
        return target
    if target.role == FACILITATOR:
        await _keep_a_facilitator(
            session,
            caller.group_id,
            "This is the group's only facilitator; make another member a facilitator first.",
        )
    await repository.update_membership(session, caller.group_id, tenant_id, {"role": role})
    changed = await get_member(session, caller, tenant_id)
    await repository.publish_group_event(
        session,
        caller.group_id,
        "working_group.member_role_changed",
        _member_event(caller.group, changed, role=role, previous_role=target.role),
        include_self=True,
    )
    return changed


async def remove_member(session: AsyncConnection, caller: Membership, tenant_id: uuid.UUID) -> None:
    """A facilitator removes a member; a member removing itself leaves."""
    if tenant_id == caller.tenant_id:
        await leave(session, caller)
        return
    caller = await _lock_as_facilitator(session, caller)
    target = await get_member(session, caller, tenant_id)
    # Published while the member is still active, so it learns it was removed.
    await repository.publish_group_event(
        session,
        caller.group_id,
        "working_group.member_removed",
        _member_event(caller.group, target, role=target.role),
        include_self=True,
    )
    await repository.update_membership(session, caller.group_id, tenant_id, {"status": "removed"})


async def leave(session: AsyncConnection, caller: Membership) -> None:
    if caller.is_facilitator:
        caller = await _lock_as_facilitator(session, caller)
        await _keep_a_facilitator(
            session,
            caller.group_id,
            "You are the group's only facilitator; make another member a facilitator first.",
        )
    me = await get_member(session, caller, caller.tenant_id)
    await repository.publish_group_event(
        session,
        caller.group_id,
        "working_group.member_left",
        _member_event(caller.group, me, role=me.role),
        include_self=True,
    )
    await repository.update_membership(
        session, caller.group_id, caller.tenant_id, {"status": "left"}
    )


async def invite(session: AsyncConnection, caller: Membership, data: InvitationIn) -> Invitation:
    require_facilitator(caller)
    tenant = await identity.tenant_by_slug(session, data.tenant_slug)
    if tenant is None:
        raise ValidationFailed(
            "The invitation is not valid.",
            errors=[FieldError("tenant_slug", "no tenant has this slug")],
        )
    if await repository.membership_status(session, caller.group_id, tenant.id) == "active":
        raise Conflict("That tenant is already a member of this working group.")
    row = await repository.insert_invitation(session, caller.group_id, tenant.id, data.role)
    if row is None:
        raise Conflict("That tenant already has a pending invitation to this working group.")
    invitation = Invitation(
        id=row.id,
        working_group=_group_ref(caller.group),
        tenant=TenantRef(id=tenant.id, slug=tenant.slug, name=tenant.name),
        role=row.role,
        status=row.status,
        created_at=row.created_at,
        responded_at=row.responded_at,
    )
    await repository.publish_invitation_event(
        session, invitation.id, "invitation.received", {"invitation": invitation}
    )
    return invitation


async def list_group_invitations(
    session: AsyncConnection,
    caller: Membership,
    *,
    status: str | None,
    after: tuple[Any, ...] | None,
    limit: int,
) -> Page[Invitation]:
    require_facilitator(caller)
    rows = await repository.invitations_of_group(
        session,
        caller.group_id,
        status=status,
        after=keyset(after, moment, identifier),
        limit=limit + 1,
    )
    tenants = await _tenant_refs(session, rows)
    items = [_invitation_out(r, caller.group.name, tenants) for r in rows]
    return paginate(items, limit, lambda i: [i.created_at, i.id])


async def get_group_invitation(
    session: AsyncConnection, caller: Membership, invitation_id: uuid.UUID
) -> Invitation:
    require_facilitator(caller)
    row = await repository.invitation_of_group(
        session, caller.group_id, invitation_id, for_update=False
    )
    if row is None:
        raise NotFound(INVITATION_NOT_FOUND)
    return _invitation_out(row, caller.group.name, await _tenant_refs(session, [row]))


async def revoke(
    session: AsyncConnection, caller: Membership, invitation_id: uuid.UUID
) -> Invitation:
    require_facilitator(caller)
    row = await repository.invitation_of_group(
        session, caller.group_id, invitation_id, for_update=True
    )
    if row is None:
        raise NotFound(INVITATION_NOT_FOUND)
    if row.status != "pending":
        raise Conflict(f"This invitation is already {row.status}; only a pending one is revoked.")
    responded_at = await repository.answer_invitation(session, invitation_id, "revoked")
    revoked = msgspec.structs.replace(
        _invitation_out(row, caller.group.name, await _tenant_refs(session, [row])),
        status="revoked",
        responded_at=responded_at,
    )
    await repository.publish_invitation_event(
        session, invitation_id, "invitation.revoked", {"invitation": revoked}
    )
    return revoked


async def list_my_invitations(
    session: AsyncConnection,
    tenant_id: uuid.UUID,
    *,
    status: str | None,
    after: tuple[Any, ...] | None,
    limit: int,
) -> Page[Invitation]:
    rows = await repository.invitations_to(
        session, tenant_id, status=status, after=keyset(after, moment, identifier), limit=limit + 1
    )
    tenants = await _tenant_refs(session, rows)
    items = [_invitation_out(r, r.group_name, tenants) for r in rows]
    return paginate(items, limit, lambda i: [i.created_at, i.id])


async def get_my_invitation(
    session: AsyncConnection, tenant_id: uuid.UUID, invitation_id: uuid.UUID
) -> Invitation:
    row = await repository.invitation_to(session, invitation_id, tenant_id)
    if row is None:
        raise NotFound(INVITATION_NOT_FOUND)
    return _invitation_out(row, row.group_name, await _tenant_refs(session, [row]))


async def _pending_invitation_to(
    session: AsyncConnection, tenant_id: uuid.UUID, invitation_id: uuid.UUID
) -> Record:
    row = await repository.invitation_to(session, invitation_id, tenant_id, for_update=True)
    if row is None:
        raise NotFound(INVITATION_NOT_FOUND)
    if row.status != "pending":
        raise Conflict(f"This invitation is already {row.status}; it cannot be answered again.")
    return row


async def accept(
    session: AsyncConnection, tenant_id: uuid.UUID, invitation_id: uuid.UUID
) -> Invitation:
    row = await _pending_invitation_to(session, tenant_id, invitation_id)
    status = await repository.membership_status(session, row.group_id, tenant_id)
    if status == "active":
        raise Conflict("You are already a member of this working group.")
    # The membership guard admits the tenant only while the invitation is still pending.
    if status is None:
        await repository.insert_membership(session, row.group_id, tenant_id, row.role)
    else:
        await repository.rejoin(session, row.group_id, tenant_id, row.role)
    responded_at = await repository.answer_invitation(session, invitation_id, "accepted")
    joined = await require_member(session, row.group_id, tenant_id)
    me = await get_member(session, joined, tenant_id)
    await repository.publish_group_event(
        session,
        joined.group_id,
        "working_group.member_joined",
        _member_event(joined.group, me, role=me.role),
        include_self=True,
    )
    return msgspec.structs.replace(
        _invitation_out(row, joined.group.name, await _tenant_refs(session, [row])),
        status="accepted",
        responded_at=responded_at,
    )


async def decline(
    session: AsyncConnection, tenant_id: uuid.UUID, invitation_id: uuid.UUID
) -> Invitation:
    row = await _pending_invitation_to(session, tenant_id, invitation_id)
    responded_at = await repository.answer_invitation(session, invitation_id, "declined")
    declined = msgspec.structs.replace(
        _invitation_out(row, row.group_name, await _tenant_refs(session, [row])),
        status="declined",
        responded_at=responded_at,
    )
    await repository.publish_invitation_answer(
        session, invitation_id, "invitation.declined", {"invitation": declined}
    )
    return declined
