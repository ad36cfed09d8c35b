"""Invitations: facilitators invite by tenant slug; the invited tenant accepts or declines."""

from __future__ import annotations

import uuid

from tests.conftest import count_rows
from tests.working_groups.conftest import (
    assert_problem,
    error_fields,
    event_data,
    invite,
    member_slugs,
)


async def test_invitation_flow_end_to_end(client, room, new_actor, database):
    brand = await new_actor()
    response = await client.post(
        f"{room.path}/invitations",
        json={"tenant_slug": brand.slug, "role": "member"},
        headers=room.facilitator.headers,
    )
    assert response.status_code == 201, response.text
    sent = response.json()
    assert sent["status"] == "pending"
    assert sent["role"] == "member"
    assert sent["working_group"] == {"id": room.id, "name": room.group["name"]}
    assert sent["tenant"] == brand.ref()
    assert sent["responded_at"] is None
    location = response.headers["location"]
    assert location == f"{room.path}/invitations/{sent['id']}"
    assert (await client.get(location, headers=room.facilitator.headers)).json() == sent

    # The invitee sees it (with the group's name) before it is a member, and nothing else yet.
    received = await event_data(database, brand, "invitation.received")
    assert [r["invitation"]["id"] for r in received] == [sent["id"]]
    mine = await client.get("/v1/invitations", headers=brand.headers)
    assert mine.status_code == 200, mine.text
    assert mine.json() == {"items": [sent], "next_cursor": None}
    one = await client.get(f"/v1/invitations/{sent['id']}", headers=brand.headers)
    assert one.json() == sent
    assert one.headers["etag"]
    assert_problem(await client.get(room.path, headers=brand.headers), 404)
    listed = await client.get(
        f"{room.path}/invitations", params={"status": "pending"}, headers=room.facilitator.headers
    )
    assert listed.json()["items"] == [sent]
    everything = await client.get(f"{room.path}/invitations", headers=room.facilitator.headers)
    assert [i["tenant"]["slug"] for i in everything.json()["items"]] == [
        brand.slug,
        room.observer.slug,
        room.member.slug,
    ]

    # Accepting makes it a member at once.
    accepted = await client.post(f"/v1/invitations/{sent['id']}/accept", headers=brand.headers)
    assert accepted.status_code == 200, accepted.text
    assert accepted.json()["status"] == "accepted"
    assert accepted.json()["responded_at"] is not None
    group = await client.get(room.path, headers=brand.headers)
    assert group.status_code == 200, group.text
    assert group.json()["my_role"] == "member"
    assert group.json()["member_count"] == 4
    assert (await member_slugs(client, room))[brand.slug] == "member"
    mine = await client.get("/v1/working-groups", headers=brand.headers)
    assert [g["id"] for g in mine.json()["items"]] == [room.id]

    # Every member, the joiner included, learns who joined; the outsider does not.
    for actor in (room.facilitator, room.member, room.observer, brand):
        joined = await event_data(database, actor, "working_group.member_joined")
        assert joined[-1]["tenant"] == brand.ref()
        assert joined[-1]["role"] == "member"
        assert joined[-1]["working_group"]["id"] == room.id
    assert await event_data(database, room.outsider, "working_group.member_joined") == []

    # An answer is final.
    again = await client.post(f"/v1/invitations/{sent['id']}/accept", headers=brand.headers)
    assert "accepted" in assert_problem(again, 409)["detail"]
    decline = await client.post(f"/v1/invitations/{sent['id']}/decline", headers=brand.headers)
    assert_problem(decline, 409)
    status = await client.get(
        f"{room.path}/invitations", params={"status": "accepted"}, headers=room.facilitator.headers
    )
    assert [i["tenant"]["slug"] for i in status.json()["items"]] == [
        brand.slug,
        room.observer.slug,
        room.member.slug,
    ]
    assert status.json()["items"][0] == accepted.json()


async def test_decline_keeps_the_tenant_out_and_tells_the_facilitators(
    client, room, new_actor, database
):
    brand = await new_actor()
    sent = await invite(client, room.facilitator, room.id, brand, "observer")
    response = await client.post(f"/v1/invitations/{sent['id']}/decline", headers=brand.headers)
    assert response.status_code == 200, response.text
    assert response.json()["status"] == "declined"
    assert_problem(await client.get(room.path, headers=brand.headers), 404)
    late = await client.post(f"/v1/invitations/{sent['id']}/accept", headers=brand.headers)
    assert "declined" in assert_problem(late, 409)["detail"]
    assert brand.slug not in await member_slugs(client, room)

    [declined] = await event_data(database, room.facilitator, "invitation.declined")
    assert declined["invitation"]["id"] == sent["id"]
    assert declined["invitation"]["tenant"] == brand.ref()
    for actor in (room.member, room.observer):
        assert await event_data(database, actor, "invitation.declined") == []

    # Declined, the tenant can be invited again.
    await invite(client, room.facilitator, room.id, brand, "member")


async def test_revoked_invitation_cannot_be_accepted(client, room, new_actor, database):
    brand = await new_actor()
    sent = await invite(client, room.facilitator, room.id, brand, "member")
    revoke_path = f"{room.path}/invitations/{sent['id']}/revoke"
    assert_problem(await client.post(revoke_path, headers=room.member.headers), 403)
    response = await client.post(revoke_path, headers=room.facilitator.headers)
    assert response.status_code == 200, response.text
    assert response.json()["status"] == "revoked"
    assert_problem(await client.post(revoke_path, headers=room.facilitator.headers), 409)
    accept = await client.post(f"/v1/invitations/{sent['id']}/accept", headers=brand.headers)
    assert "revoked" in assert_problem(accept, 409)["detail"]
    assert_problem(await client.get(room.path, headers=brand.headers), 404)
    [revoked] = await event_data(database, brand, "invitation.revoked")
    assert revoked["invitation"]["id"] == sent["id"]
    pending = await client.get(
        "/v1/invitations", params={"status": "pending"}, headers=brand.headers
    )
    assert pending.json()["items"] == []


async def test_invitation_values_are_checked(client, room, new_actor, database):
    brand = await new_actor()
    path, headers = f"{room.path}/invitations", room.facilitator.headers
    before = await count_rows(database, "invitations")
    for body, field in [
        ({"tenant_slug": "no-such-tenant-here", "role": "member"}, "tenant_slug"),
        ({"tenant_slug": brand.slug, "role": "boss"}, "role"),
        ({"tenant_slug": brand.slug}, "role"),
        ({"role": "member"}, "tenant_slug"),
    ]:
        problem = assert_problem(await client.post(path, json=body, headers=headers), 422)
        assert field in error_fields(problem), (body, problem)
    for body, field in [
        ({"tenant_slug": brand.slug, "role": "member", "status": "accepted"}, "status"),
        ({"tenant_slug": brand.slug, "role": "member", "tenant_id": str(brand.id)}, "tenant_id"),
        ({"tenant_slug": 12, "role": "member"}, "tenant_slug"),
    ]:
        problem = assert_problem(await client.post(path, json=body, headers=headers), 400)
        assert field in error_fields(problem), (body, problem)
    assert await count_rows(database, "invitations") == before

    # Already a member: 409; a second pending invitation: 409.
    for actor in (room.member, room.facilitator):
        body = {"tenant_slug": actor.slug, "role": "observer"}
        problem = assert_problem(await client.post(path, json=body, headers=headers), 409)
        assert "already a member" in problem["detail"]
    await invite(client, room.facilitator, room.id, brand, "member")
    body = {"tenant_slug": brand.slug, "role": "observer"}
    problem = assert_problem(await client.post(path, json=body, headers=headers), 409)
    assert "pending" in problem["detail"]
    assert await count_rows(database, "invitations") == before + 1


async def test_only_the_invited_tenant_answers(client, room, new_actor):
    brand = await new_actor()
    sent = await invite(client, room.facilitator, room.id, brand, "member")
    for actor in (room.facilitator, room.member, room.outsider):
        for action in ("accept", "decline"):
            real = await client.post(
                f"/v1/invitations/{sent['id']}/{action}", headers=actor.headers
            )
            random = await client.post(
                f"/v1/invitations/{uuid.uuid4()}/{action}", headers=actor.headers
            )
            assert_problem(real, 404)
            assert real.json() == random.json()
        real = await client.get(f"/v1/invitations/{sent['id']}", headers=actor.headers)
        assert_problem(real, 404)
        listed = (await client.get("/v1/invitations", headers=actor.headers)).json()["items"]
        assert sent["id"] not in {i["id"] for i in listed}
    still = await client.get(f"/v1/invitations/{sent['id']}", headers=brand.headers)
    assert still.json()["status"] == "pending"


async def test_group_invitations_are_for_facilitators(client, room, new_actor):
    brand = await new_actor()
    sent = await invite(client, room.facilitator, room.id, brand, "member")
    for actor in (room.member, room.observer):
        headers = actor.headers
        assert_problem(await client.get(f"{room.path}/invitations", headers=headers), 403)
        assert_problem(
            await client.get(f"{room.path}/invitations/{sent['id']}", headers=headers), 403
        )
        body = {"tenant_slug": room.outsider.slug, "role": "member"}
        response = await client.post(f"{room.path}/invitations", json=body, headers=headers)
        assert_problem(response, 403)
    outsider_invites = await client.get("/v1/invitations", headers=room.outsider.headers)
    assert outsider_invites.json()["items"] == []


async def test_invitation_lists_page_newest_first(client, new_actor, room):
    brand = await new_actor()
    groups = []
    for i in range(3):
        response = await client.post(
            "/v1/working-groups", json={"name": f"Group {i}"}, headers=room.facilitator.headers
        )
        groups.append(response.json())
        await invite(client, room.facilitator, groups[-1]["id"], brand, "member")
    first = await client.get("/v1/invitations", params={"limit": 2}, headers=brand.headers)
    assert first.status_code == 200, first.text
    assert 'rel="next"' in first.headers["link"]
    rest = await client.get(
        "/v1/invitations",
        params={"limit": 2, "cursor": first.json()["next_cursor"]},
        headers=brand.headers,
    )
    names = [i["working_group"]["name"] for i in first.json()["items"] + rest.json()["items"]]
    assert names == ["Group 2", "Group 1", "Group 0"]
    assert rest.json()["next_cursor"] is None
    for path in ("/v1/invitations", f"{room.path}/invitations"):
        response = await client.get(path, params={"limit": 201}, headers=room.facilitator.headers)
        assert_problem(response, 400)
    response = await client.get("/v1/invitations", params={"status": "lost"}, headers=brand.headers)
    assert_problem(response, 422)
