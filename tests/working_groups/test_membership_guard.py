"""The database itself refuses illegal membership writes, whatever the application code does.

Each statement runs as the app role with a tenant bound, exactly as a request's transaction does.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.exc import DBAPIError

from tests.conftest import superuser_transaction
from tests.working_groups.conftest import invite, join, member_slugs
from wg_api.platform.database import Database


async def _as(database: Database, tenant_id: uuid.UUID, sql: str, **params: Any) -> int:
    async with database.transaction(tenant_id) as session:
        result = await session.execute(sa.text(sql), params)
        return int(result.rowcount)


async def _refused(database: Database, tenant_id: uuid.UUID, sql: str, **params: Any) -> str:
    with pytest.raises(DBAPIError) as refused:
        await _as(database, tenant_id, sql, **params)
    return str(refused.value.orig)


JOIN = "INSERT INTO working_group_members (group_id, tenant_id, role) VALUES (:g, :t, :role)"
SET_ROLE = "UPDATE working_group_members SET role = :role WHERE group_id = :g AND tenant_id = :t"
SET_STATUS = (
    "UPDATE working_group_members SET status = :status WHERE group_id = :g AND tenant_id = :t"
)


async def test_a_tenant_cannot_join_without_an_invitation(client, room, database):
    outsider, group = room.outsider.id, room.id
    for role in ("member", "facilitator"):
        message = await _refused(database, outsider, JOIN, g=group, t=outsider, role=role)
        assert "joining needs an invitation" in message
    # Nor put another tenant in, nor write an invitation to itself.
    message = await _refused(database, room.member.id, JOIN, g=group, t=outsider, role="member")
    assert "row-level security" in message or "join a group itself" in message
    message = await _refused(
        database,
        outsider,
        "INSERT INTO invitations (group_id, tenant_id, role) VALUES (:g, :t, 'facilitator')",
        g=group,
        t=outsider,
    )
    assert "row-level security" in message
    assert room.outsider.slug not in await member_slugs(client, room)


async def test_an_invitation_admits_only_its_role_and_only_while_pending(
    client, room, new_actor, database
):
    brand = await new_actor()
    sent = await invite(client, room.facilitator, room.id, brand, "observer")
    message = await _refused(database, brand.id, JOIN, g=room.id, t=brand.id, role="facilitator")
    assert "joining needs an invitation" in message
    # Declined is final: the invitee cannot make it pending again and then join.
    await client.post(f"/v1/invitations/{sent['id']}/decline", headers=brand.headers)
    message = await _refused(
        database,
        brand.id,
        "UPDATE invitations SET status = 'pending' WHERE id = :i",
        i=sent["id"],
    )
    assert "an answered invitation is final" in message
    message = await _refused(database, brand.id, JOIN, g=room.id, t=brand.id, role="observer")
    assert "joining needs an invitation" in message
    assert brand.slug not in await member_slugs(client, room)


async def test_a_member_cannot_promote_itself_or_rejoin_alone(client, room, database):
    member, group = room.member.id, room.id
    message = await _refused(database, member, SET_ROLE, g=group, t=member, role="facilitator")
    assert "only facilitators change roles" in message
    # Another member's row is not even there for it to update (RLS): nothing changes.
    changed = await _as(database, member, SET_ROLE, g=group, t=room.observer.id, role="facilitator")
    assert changed == 0
    changed = await _as(database, member, SET_STATUS, g=group, t=room.observer.id, status="removed")
    assert changed == 0
    # Memberships are never deleted, only left or removed.
    message = await _refused(
        database,
        member,
        "DELETE FROM working_group_members WHERE group_id = :g AND tenant_id = :t",
        g=group,
        t=member,
    )
    assert "permission denied" in message

    # Having left, it cannot switch itself back on.
    response = await client.delete(f"{room.path}/members/{member}", headers=room.member.headers)
    assert response.status_code == 204, response.text
    message = await _refused(database, member, SET_STATUS, g=group, t=member, status="active")
    assert "rejoining needs an invitation" in message
    assert room.member.slug not in await member_slugs(client, room)
    assert await member_slugs(client, room) == {
        room.facilitator.slug: "facilitator",
        room.observer.slug: "observer",
    }


async def test_a_facilitator_cannot_pull_an_invited_tenant_in(client, room, database):
    observer = room.observer.id
    response = await client.delete(
        f"{room.path}/members/{observer}", headers=room.facilitator.headers
    )
    assert response.status_code == 204, response.text
    await invite(client, room.facilitator, room.id, room.observer, "observer")
    # The pending invitation is the observer's to take up, not the facilitator's.
    message = await _refused(
        database, room.facilitator.id, SET_STATUS, g=room.id, t=observer, status="active"
    )
    assert "rejoining needs an invitation" in message
    assert room.observer.slug not in await member_slugs(client, room)


async def test_nothing_is_visible_without_a_bound_tenant(room, database):
    async with database.transaction(None) as session:
        for table in ("working_groups", "working_group_members", "invitations"):
            count = await session.scalar(sa.text(f"SELECT count(*) FROM {table}"))  # noqa: S608
            assert count == 0, table
        role = await session.scalar(sa.select(sa.func.wg_group_role(uuid.UUID(room.id))))
        assert role is None


async def _joined_at(client: Any, room: Any, slug: str) -> datetime:
    response = await client.get(
        f"{room.path}/members", params={"limit": 200}, headers=room.facilitator.headers
    )
    assert response.status_code == 200, response.text
    [joined] = [m["joined_at"] for m in response.json()["items"] if m["tenant"]["slug"] == slug]
    return datetime.fromisoformat(joined)


async def test_nobody_writes_membership_dates_they_follow_the_status(client, room, database):
    member, group = room.member.id, room.id
    # A member cannot backdate its membership, nor invent when it left (0008).
    for column in ("joined_at", "left_at"):
        message = await _refused(
            database,
            member,
            f"UPDATE working_group_members SET {column} = now() - interval '1 year' "  # noqa: S608
            "WHERE group_id = :g AND tenant_id = :t",
            g=group,
            t=member,
        )
        assert "permission denied" in message
    outsider = room.outsider.id
    await invite(client, room.facilitator, group, room.outsider, "member")
    message = await _refused(
        database,
        outsider,
        "INSERT INTO working_group_members (group_id, tenant_id, role, joined_at) "
        "VALUES (:g, :t, 'member', now() - interval '1 year')",
        g=group,
        t=outsider,
    )
    assert "permission denied" in message

    first = await _joined_at(client, room, room.member.slug)
    left = await client.delete(f"{room.path}/members/{member}", headers=room.member.headers)
    assert left.status_code == 204, left.text
    async with superuser_transaction(database) as session:
        dates = (
            await session.execute(
                sa.text(
                    "SELECT joined_at, left_at FROM working_group_members "
                    "WHERE group_id = :g AND tenant_id = :t"
                ),
                {"g": group, "t": member},
            )
        ).one()
    assert dates.left_at is not None
    assert dates.left_at >= dates.joined_at

    await join(client, room.facilitator, group, room.member, "member")
    again = await _joined_at(client, room, room.member.slug)
    assert again > first
    async with superuser_transaction(database) as session:
        left_at = await session.scalar(
            sa.text(
                "SELECT left_at FROM working_group_members WHERE group_id = :g AND tenant_id = :t"
            ),
            {"g": group, "t": member},
        )
    assert left_at is None
