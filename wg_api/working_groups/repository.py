"""Every working-group query. They filter by membership as well; RLS (wg_group_role) is the net."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import msgspec
import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncConnection

from wg_api.platform.models import Record
from wg_api.working_groups.models import invitations, working_group_members, working_groups

ACTIVE = "active"
PENDING = "pending"

groups = working_groups.alias("g")
members = working_group_members.alias("m")


@dataclass(frozen=True)
class WorkingGroupRecord:
    id: uuid.UUID
    name: str
    description: str | None
    timezone: str
    anonymity_threshold: int
    created_at: datetime
    updated_at: datetime


@dataclass(frozen=True)
class Membership:
    """A tenant's active membership of a group, with the group itself."""

    tenant_id: uuid.UUID
    role: str
    joined_at: datetime
    group: WorkingGroupRecord

    @property
    def group_id(self) -> uuid.UUID:
        return self.group.id

    @property
    def anonymity_threshold(self) -> int:
        return self.group.anonymity_threshold

    @property
    def is_facilitator(self) -> bool:
        return self.role == "facilitator"


def _group_record(row: Record) -> WorkingGroupRecord:
    return WorkingGroupRecord(
        id=row.id,
        name=row.name,
        description=row.description,
        timezone=row.timezone,
        anonymity_threshold=row.anonymity_threshold,
        created_at=row.created_at,
        updated_at=row.updated_at,
    )


_GROUP_COLUMNS = (
    groups.c.id,
    groups.c.name,
    groups.c.description,
    groups.c.timezone,
    groups.c.anonymity_threshold,
    groups.c.created_at,
    groups.c.updated_at,
)


def _active_count(group_id: Any) -> sa.ScalarSelect[int]:
    counted = working_group_members.alias("counted")
    return (
        sa.select(sa.func.count())
        .select_from(counted)
        .where(counted.c.group_id == group_id, counted.c.status == ACTIVE)
        .scalar_subquery()
    )


async def insert_group(
    session: AsyncConnection, group_id: uuid.UUID, values: dict[str, Any]
) -> None:
    # No RETURNING: the group is invisible (RLS) until its first membership exists.
    await session.execute(sa.insert(working_groups).values(id=group_id, **values))


async def insert_membership(
    session: AsyncConnection, group_id: uuid.UUID, tenant_id: uuid.UUID, role: str
) -> None:
    await session.execute(
        sa.insert(working_group_members).values(group_id=group_id, tenant_id=tenant_id, role=role)
    )


async def membership(
    session: AsyncConnection, group_id: uuid.UUID, tenant_id: uuid.UUID
) -> Membership | None:
    row = (
        await session.execute(
            sa.select(*_GROUP_COLUMNS, members.c.role, members.c.joined_at)
            .select_from(groups.join(members, members.c.group_id == groups.c.id))
            .where(
                groups.c.id == group_id,
                members.c.tenant_id == tenant_id,
                members.c.status == ACTIVE,
            )
        )
    ).one_or_none()
    if row is None:
        return None
    return Membership(
        tenant_id=tenant_id, role=row.role, joined_at=row.joined_at, group=_group_record(row)
    )


async def lock_group(session: AsyncConnection, group_id: uuid.UUID) -> bool:
    """Serialise membership changes of one group; only a facilitator's lock succeeds (RLS)."""
    locked = await session.scalar(
        sa.select(working_groups.c.id).where(working_groups.c.id == group_id).with_for_update()
    )
    return locked is not None


async def update_group(
    session: AsyncConnection, group_id: uuid.UUID, values: dict[str, Any]
) -> None:
    await session.execute(
        sa.update(working_groups)
        .where(working_groups.c.id == group_id)
        .values(**values, updated_at=sa.func.now())
    )


async def active_member_count(
    session: AsyncConnection, group_id: uuid.UUID, roles: tuple[str, ...] | None = None
) -> int:
    statement = sa.select(sa.func.count()).where(
        working_group_members.c.group_id == group_id, working_group_members.c.status == ACTIVE
    )
    if roles is not None:
        statement = statement.where(working_group_members.c.role.in_(roles))
    return int(await session.scalar(statement) or 0)


async def groups_of(
    session: AsyncConnection,
    tenant_id: uuid.UUID,
    *,
    after: tuple[datetime, uuid.UUID] | None,
    limit: int,
) -> list[tuple[Membership, int]]:
    """The groups `tenant_id` is an active member of, oldest first, with their member counts."""
    statement = (
        sa.select(
            *_GROUP_COLUMNS,
            members.c.role,
            members.c.joined_at,
            _active_count(groups.c.id).label("member_count"),
        )
        .select_from(groups.join(members, members.c.group_id == groups.c.id))
        .where(members.c.tenant_id == tenant_id, members.c.status == ACTIVE)
        .order_by(groups.c.created_at, groups.c.id)
        .limit(limit)
    )
    if after is not None:
        statement = statement.where(sa.tuple_(groups.c.created_at, groups.c.id) > after)
    rows = (await session.execute(statement)).all()
    return [
        (
            Membership(
                tenant_id=tenant_id,
                role=row.role,
                joined_at=row.joined_at,
                group=_group_record(row),
            ),
            int(row.member_count),
        )
        for row in rows
    ]


_MEMBER_COLUMNS = (
    members.c.tenant_id,
    members.c.role,
    members.c.joined_at,
)


async def active_members(
    session: AsyncConnection,
    group_id: uuid.UUID,
    *,
    after: tuple[datetime, uuid.UUID] | None,
    limit: int,
) -> list[Record]:
    statement = (
        sa.select(*_MEMBER_COLUMNS)
        .where(members.c.group_id == group_id, members.c.status == ACTIVE)
        .order_by(members.c.joined_at, members.c.tenant_id)
        .limit(limit)
    )
    if after is not None:
        statement = statement.where(sa.tuple_(members.c.joined_at, members.c.tenant_id) > after)
    return list((await session.execute(statement)).all())


async def active_member(
    session: AsyncConnection, group_id: uuid.UUID, tenant_id: uuid.UUID
) -> Record | None:
    return (
        await session.execute(
            sa.select(*_MEMBER_COLUMNS).where(
                members.c.group_id == group_id,
                members.c.tenant_id == tenant_id,
                members.c.status == ACTIVE,
            )
        )
    ).one_or_none()


async def membership_status(
    session: AsyncConnection, group_id: uuid.UUID, tenant_id: uuid.UUID
) -> str | None:
    """The status of `tenant_id`'s membership row in the group, whatever it is, or None."""
    status: str | None = await session.scalar(
        sa.select(working_group_members.c.status).where(
            working_group_members.c.group_id == group_id,
            working_group_members.c.tenant_id == tenant_id,
        )
    )
    return status


async def facilitator_count(session: AsyncConnection, group_id: uuid.UUID) -> int:
    return int(
        await session.scalar(
            sa.select(sa.func.count()).where(
                working_group_members.c.group_id == group_id,
                working_group_members.c.status == ACTIVE,
                working_group_members.c.role == "facilitator",
            )
        )
        or 0
    )


async def update_membership(
    session: AsyncConnection, group_id: uuid.UUID, tenant_id: uuid.UUID, values: dict[str, Any]
) -> None:
    await session.execute(
        sa.update(working_group_members)
        .where(
            working_group_members.c.group_id == group_id,
            working_group_members.c.tenant_id == tenant_id,
        )
        .values(**values)
    )


async def rejoin(
    session: AsyncConnection, group_id: uuid.UUID, tenant_id: uuid.UUID, role: str
) -> None:
    await update_membership(
        session,
        group_id,
        tenant_id,
        # The membership_dates trigger sets joined_at and clears left_at (0008).
        {"status": ACTIVE, "role": role},
    )


async def insert_invitation(
    session: AsyncConnection, group_id: uuid.UUID, tenant_id: uuid.UUID, role: str
) -> Record | None:
    """The new pending invitation, or None when one is already pending for that tenant."""
    statement = (
        insert(invitations)
        .values(group_id=group_id, tenant_id=tenant_id, role=role)
        .on_conflict_do_nothing(
            index_elements=[invitations.c.group_id, invitations.c.tenant_id],
            # A literal, not a bound parameter, or PostgreSQL cannot infer the partial index.
            index_where=sa.text("status = 'pending'"),
        )
        .returning(invitations)
    )
    row: Record | None = (await session.execute(statement)).one_or_none()
    return row


_INVITATION_COLUMNS = (
    invitations.c.id,
    invitations.c.group_id,
    invitations.c.tenant_id,
    invitations.c.role,
    invitations.c.status,
    invitations.c.created_at,
    invitations.c.responded_at,
)
# Invitees are not members, so RLS hides the group row; this function answers its name only.
_INVITED_GROUP_NAME = sa.func.wg_invited_group_name(invitations.c.group_id, type_=sa.Text)


def _newest_first(
    statement: sa.Select[Any], after: tuple[datetime, uuid.UUID] | None, limit: int
) -> sa.Select[Any]:
    if after is not None:
        statement = statement.where(sa.tuple_(invitations.c.created_at, invitations.c.id) < after)
    return statement.order_by(invitations.c.created_at.desc(), invitations.c.id.desc()).limit(limit)


async def invitations_to(
    session: AsyncConnection,
    tenant_id: uuid.UUID,
    *,
    status: str | None,
    after: tuple[datetime, uuid.UUID] | None,
    limit: int,
) -> list[Record]:
    statement = sa.select(*_INVITATION_COLUMNS, _INVITED_GROUP_NAME.label("group_name")).where(
        invitations.c.tenant_id == tenant_id
    )
    if status is not None:
        statement = statement.where(invitations.c.status == status)
    return list((await session.execute(_newest_first(statement, after, limit))).all())


async def invitation_to(
    session: AsyncConnection,
    invitation_id: uuid.UUID,
    tenant_id: uuid.UUID,
    *,
    for_update: bool = False,
) -> Record | None:
    statement = sa.select(*_INVITATION_COLUMNS, _INVITED_GROUP_NAME.label("group_name")).where(
        invitations.c.id == invitation_id, invitations.c.tenant_id == tenant_id
    )
    if for_update:
        statement = statement.with_for_update(of=invitations)
    return (await session.execute(statement)).one_or_none()


async def invitations_of_group(
    session: AsyncConnection,
    group_id: uuid.UUID,
    *,
    status: str | None,
    after: tuple[datetime, uuid.UUID] | None,
    limit: int,
) -> list[Record]:
    statement = sa.select(*_INVITATION_COLUMNS).where(invitations.c.group_id == group_id)
    if status is not None:
        statement = statement.where(invitations.c.status == status)
    return list((await session.execute(_newest_first(statement, after, limit))).all())


async def invitation_of_group(
    session: AsyncConnection, group_id: uuid.UUID, invitation_id: uuid.UUID, *, for_update: bool
) -> Record | None:
    statement = sa.select(*_INVITATION_COLUMNS).where(
        invitations.c.id == invitation_id, invitations.c.group_id == group_id
    )
    if for_update:
        statement = statement.with_for_update(of=invitations)
    return (await session.execute(statement)).one_or_none()


async def answer_invitation(
    session: AsyncConnection, invitation_id: uuid.UUID, status: str
) -> datetime:
    responded_at: datetime = (
        await session.execute(
            sa.update(invitations)
            .where(invitations.c.id == invitation_id)
            .values(status=status, responded_at=sa.func.now())
            .returning(invitations.c.responded_at)
        )
    ).scalar_one()
    return responded_at


async def publish_group_event(
    session: AsyncConnection,
    group_id: uuid.UUID,
    type: str,
    data: msgspec.Struct | dict[str, Any],
    *,
    include_self: bool,
) -> None:
    """`type` into the feed of every active member (and the caller's if `include_self`)."""
    await session.execute(
        sa.text("SELECT publish_group_event(:group_id, :type, CAST(:data AS jsonb), :self)"),
        {
            "group_id": group_id,
            "type": type,
            "data": msgspec.json.encode(data).decode(),
            "self": include_self,
        },
    )


async def publish_invitation_event(
    session: AsyncConnection,
    invitation_id: uuid.UUID,
    type: str,
    data: msgspec.Struct | dict[str, Any],
) -> None:
    """`type` into the invited tenant's feed; the caller must facilitate the group."""
    await session.execute(
        sa.text("SELECT publish_invitation_event(:invitation_id, :type, CAST(:data AS jsonb))"),
        {"invitation_id": invitation_id, "type": type, "data": msgspec.json.encode(data).decode()},
    )


async def publish_invitation_answer(
    session: AsyncConnection,
    invitation_id: uuid.UUID,
    type: str,
    data: msgspec.Struct | dict[str, Any],
) -> None:
    """`type` into the feeds of the group's facilitators; the caller must have answered it."""
    await session.execute(
        sa.text("SELECT publish_invitation_answer(:invitation_id, :type, CAST(:data AS jsonb))"),
        {"invitation_id": invitation_id, "type": type, "data": msgspec.json.encode(data).decode()},
    )
