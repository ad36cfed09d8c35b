"""Helpers of the working-group tests: tenants with cached tokens, a populated group, problems."""

from __future__ import annotations

import dataclasses
import uuid
from typing import Any

import httpx
import pytest
import sqlalchemy as sa

from tests.conftest import TenantHandle
from wg_api.platform.database import Database


@dataclasses.dataclass
class Actor:
    """A tenant with a ready admin token (all scopes)."""

    handle: TenantHandle
    headers: dict[str, str]

    @property
    def id(self) -> uuid.UUID:
        return self.handle.id

    @property
    def slug(self) -> str:
        return self.handle.slug

    @property
    def name(self) -> str:
        return self.handle.name

    def ref(self) -> dict[str, str]:
        return {"id": str(self.id), "slug": self.slug, "name": self.name}


@dataclasses.dataclass
class Room:
    """A group with a facilitator, a member and an observer, and a tenant outside it."""

    group: dict[str, Any]
    facilitator: Actor
    member: Actor
    observer: Actor
    outsider: Actor

    @property
    def id(self) -> str:
        return str(self.group["id"])

    @property
    def path(self) -> str:
        return f"/v1/working-groups/{self.id}"


@pytest.fixture
def new_actor(make_tenant: Any) -> Any:
    async def make(**kwargs: Any) -> Actor:
        handle = await make_tenant(**kwargs)
        return Actor(handle, await handle.headers())

    return make


async def create_group(client: httpx.AsyncClient, actor: Actor, **body: Any) -> dict[str, Any]:
    response = await client.post(
        "/v1/working-groups", json={"name": "Guangdong apparel", **body}, headers=actor.headers
    )
    assert response.status_code == 201, response.text
    group: dict[str, Any] = response.json()
    return group


async def invite(
    client: httpx.AsyncClient, facilitator: Actor, group_id: str, invitee: Actor, role: str
) -> dict[str, Any]:
    response = await client.post(
        f"/v1/working-groups/{group_id}/invitations",
        json={"tenant_slug": invitee.slug, "role": role},
        headers=facilitator.headers,
    )
    assert response.status_code == 201, response.text
    invitation: dict[str, Any] = response.json()
    return invitation


async def join(
    client: httpx.AsyncClient, facilitator: Actor, group_id: str, invitee: Actor, role: str
) -> None:
    invitation = await invite(client, facilitator, group_id, invitee, role)
    response = await client.post(
        f"/v1/invitations/{invitation['id']}/accept", headers=invitee.headers
    )
    assert response.status_code == 200, response.text


@pytest.fixture
async def room(client: httpx.AsyncClient, new_actor: Any) -> Room:
    facilitator, member, observer, outsider = [await new_actor() for _ in range(4)]
    group = await create_group(client, facilitator)
    await join(client, facilitator, group["id"], member, "member")
    await join(client, facilitator, group["id"], observer, "observer")
    return Room(group, facilitator, member, observer, outsider)


def assert_problem(response: httpx.Response, status: int) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    body: dict[str, Any] = response.json()
    assert body["status"] == status
    assert body["type"].startswith("/problems/")
    return body


def error_fields(body: dict[str, Any]) -> set[str]:
    return {error["field"] for error in body.get("errors") or []}


async def member_slugs(client: httpx.AsyncClient, room: Room) -> dict[str, str]:
    response = await client.get(
        f"{room.path}/members", params={"limit": 200}, headers=room.facilitator.headers
    )
    assert response.status_code == 200, response.text
    return {m["tenant"]["slug"]: m["role"] for m in response.json()["items"]}


async def event_data(database: Database, actor: Actor, type: str) -> list[dict[str, Any]]:
    """The `type` events in `actor`'s feed, oldest first, read as the app role bound to it."""
    async with database.transaction(actor.id) as session:
        rows = await session.execute(
            sa.text("SELECT data FROM events WHERE type = :type ORDER BY seq"), {"type": type}
        )
        return [row.data for row in rows]
