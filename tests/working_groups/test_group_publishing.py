"""Only an active member speaks to a group's feeds: a former member cannot publish into it, through
the API or by calling the database's publishing function directly."""

from __future__ import annotations

import json
import uuid
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.exc import DBAPIError

from tests.working_groups.conftest import assert_problem
from wg_api.platform.database import Database

PUBLISH = "SELECT publish_group_event(:g, :type, CAST(:data AS jsonb), true)"


async def publish(database: Database, tenant_id: uuid.UUID, group_id: str, type: str) -> int:
    async with database.transaction(tenant_id) as session:
        published = await session.scalar(
            sa.text(PUBLISH), {"g": group_id, "type": type, "data": json.dumps({"forged": True})}
        )
        return int(published or 0)


async def refused(database: Database, tenant_id: uuid.UUID, group_id: str, type: str) -> str:
    with pytest.raises(DBAPIError) as error:
        await publish(database, tenant_id, group_id, type)
    return str(error.value.orig)


async def forged_events(database: Database, tenant_id: uuid.UUID) -> list[dict[str, Any]]:
    async with database.transaction(tenant_id) as session:
        rows = await session.execute(
            sa.text("SELECT type, data FROM events WHERE data ? 'forged' ORDER BY seq")
        )
        return [{"type": row.type, "data": row.data} for row in rows]


async def leave(client, room) -> None:
    response = await client.delete(
        f"{room.path}/members/{room.member.id}", headers=room.member.headers
    )
    assert response.status_code in (200, 204), response.text


async def test_a_former_member_cannot_publish_through_the_database(client, room, database):
    # While active it may (this is how membership events are written)...
    assert await publish(database, room.member.id, room.id, "working_group.note") == 3
    await leave(client, room)
    # ...once it left, nothing: not a group event, not the withdrawal it once could forge.
    for type in ("working_group.note", "shared_finding.withdrawn", "shared_finding.published"):
        message = await refused(database, room.member.id, room.id, type)
        assert "not an active member of this group" in message
    # An outsider never could.
    message = await refused(database, room.outsider.id, room.id, "working_group.note")
    assert "not an active member of this group" in message
    assert len(await forged_events(database, room.facilitator.id)) == 1


async def test_events_about_shared_findings_only_come_from_their_own_function(room, database):
    for type in ("shared_finding.published", "shared_finding.updated", "shared_finding.withdrawn"):
        message = await refused(database, room.facilitator.id, room.id, type)
        assert "publish_shared_finding_event" in message
    assert await forged_events(database, room.member.id) == []


async def test_a_former_member_publishes_nothing_through_the_api(client, room, database):
    await leave(client, room)
    before = await client.get("/v1/events", headers=room.facilitator.headers)
    assert before.status_code == 200
    cursor = before.json()["next_cursor"]
    path = room.path
    attempts = [
        client.patch(path, json={"name": "Taken over"}, headers=room.member.headers),
        client.delete(f"{path}/members/{room.member.id}", headers=room.member.headers),
        client.delete(f"{path}/members/{room.observer.id}", headers=room.member.headers),
        client.patch(
            f"{path}/members/{room.observer.id}",
            json={"role": "member"},
            headers=room.member.headers,
        ),
    ]
    for attempt in attempts:
        assert_problem(await attempt, 404)
    after = await client.get(
        "/v1/events", params={"after": cursor}, headers=room.facilitator.headers
    )
    assert after.status_code == 200
    assert after.json()["items"] == []
