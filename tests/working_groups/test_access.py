"""Every working-group endpoint: a non-member sees a random id's 404; a missing scope is 403."""

from __future__ import annotations

import uuid
from typing import Any

import httpx

from tests.working_groups.conftest import Actor, Room, assert_problem, invite, member_slugs


def _endpoints(
    group_id: object, tenant_id: object, invitation_id: object, invitee_slug: str
) -> list[tuple[str, str, dict[str, str] | None]]:
    """(method, path, json) of everything under one group."""
    base = f"/v1/working-groups/{group_id}"
    return [
        ("GET", base, None),
        ("PATCH", base, {"name": "Taken over"}),
        ("GET", f"{base}/members", None),
        ("GET", f"{base}/members/{tenant_id}", None),
        ("PATCH", f"{base}/members/{tenant_id}", {"role": "observer"}),
        ("DELETE", f"{base}/members/{tenant_id}", None),
        ("POST", f"{base}/invitations", {"tenant_slug": invitee_slug, "role": "member"}),
        ("GET", f"{base}/invitations", None),
        ("GET", f"{base}/invitations/{invitation_id}", None),
        ("POST", f"{base}/invitations/{invitation_id}/revoke", None),
    ]


async def _state(
    client: httpx.AsyncClient, room: Room, invitation_id: str, invitee: Actor
) -> tuple[Any, ...]:
    group = (await client.get(room.path, headers=room.facilitator.headers)).json()
    invitation = await client.get(f"/v1/invitations/{invitation_id}", headers=invitee.headers)
    return group, await member_slugs(client, room), invitation.json()["status"]


async def test_non_members_get_the_same_404_everywhere_and_change_nothing(client, room, new_actor):
    invitee = await new_actor()
    sent = await invite(client, room.facilitator, room.id, invitee, "member")
    before = await _state(client, room, sent["id"], invitee)
    real = _endpoints(room.id, room.facilitator.id, sent["id"], invitee.slug)
    fake = _endpoints(uuid.uuid4(), room.facilitator.id, uuid.uuid4(), invitee.slug)
    # The invitee is not a member yet either: an invitation opens nothing but itself.
    for actor in (room.outsider, invitee):
        for (method, path, body), (_, random_path, _) in zip(real, fake, strict=True):
            answer = await client.request(method, path, json=body, headers=actor.headers)
            random = await client.request(method, random_path, json=body, headers=actor.headers)
            assert_problem(answer, 404)
            assert answer.json() == random.json(), (method, path)
    # Its own tenant id under the group is no way in either (leaving a group it is not in).
    response = await client.delete(
        f"{room.path}/members/{room.outsider.id}", headers=room.outsider.headers
    )
    assert_problem(response, 404)
    assert await _state(client, room, sent["id"], invitee) == before
    assert (await client.get("/v1/working-groups", headers=room.outsider.headers)).json() == {
        "items": [],
        "next_cursor": None,
    }


async def test_missing_scope_is_403_on_every_endpoint(client, room, new_actor):
    invitee = await new_actor()
    sent = await invite(client, room.facilitator, room.id, invitee, "member")
    before = await _state(client, room, sent["id"], invitee)
    handle = room.facilitator.handle
    read_only = {"Authorization": f"Bearer {await handle.token('working-groups:read')}"}
    unrelated = {"Authorization": f"Bearer {await handle.token('findings:read')}"}
    invitee_read_only = {
        "Authorization": f"Bearer {await invitee.handle.token('working-groups:read')}"
    }
    endpoints = _endpoints(room.id, room.member.id, sent["id"], room.outsider.slug)
    endpoints += [
        ("GET", "/v1/working-groups", None),
        ("POST", "/v1/working-groups", {"name": "g"}),
    ]
    for method, path, body in endpoints:
        headers = unrelated if method == "GET" else read_only
        response = await client.request(method, path, json=body, headers=headers)
        problem = assert_problem(response, 403)
        assert "scope" in problem["detail"], (method, path)
    invitee_unrelated = {"Authorization": f"Bearer {await invitee.handle.token('findings:read')}"}
    for method, path, headers in [
        ("GET", "/v1/invitations", invitee_unrelated),
        ("GET", f"/v1/invitations/{sent['id']}", invitee_unrelated),
        ("POST", f"/v1/invitations/{sent['id']}/accept", invitee_read_only),
        ("POST", f"/v1/invitations/{sent['id']}/decline", invitee_read_only),
    ]:
        assert_problem(await client.request(method, path, headers=headers), 403)
    assert await _state(client, room, sent["id"], invitee) == before


async def test_no_token_is_401(client, room):
    response = await client.get(room.path)
    assert_problem(response, 401)
    assert response.headers["www-authenticate"].startswith("Bearer")
