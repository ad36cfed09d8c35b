"""Members: the list, role changes, removal and leaving; the last facilitator stays."""

from __future__ import annotations

import uuid

from tests.working_groups.conftest import (
    assert_problem,
    error_fields,
    event_data,
    join,
    member_slugs,
)


async def test_members_list_pages_in_joining_order(client, room):
    seen, cursor = [], None
    while True:
        params = {"limit": 1, **({"cursor": cursor} if cursor else {})}
        response = await client.get(
            f"{room.path}/members", params=params, headers=room.observer.headers
        )
        assert response.status_code == 200, response.text
        seen += response.json()["items"]
        cursor = response.json()["next_cursor"]
        if cursor is None:
            break
    assert [(m["tenant"], m["role"]) for m in seen] == [
        (room.facilitator.ref(), "facilitator"),
        (room.member.ref(), "member"),
        (room.observer.ref(), "observer"),
    ]
    response = await client.get(
        f"{room.path}/members", params={"limit": 201}, headers=room.member.headers
    )
    assert_problem(response, 400)

    one = await client.get(f"{room.path}/members/{room.member.id}", headers=room.observer.headers)
    assert one.status_code == 200, one.text
    assert one.json() == seen[1]
    assert one.headers["etag"]
    for tenant_id in (room.outsider.id, uuid.uuid4()):
        response = await client.get(f"{room.path}/members/{tenant_id}", headers=room.member.headers)
        assert_problem(response, 404)


async def test_facilitator_changes_roles_and_members_learn_it(client, room, database):
    path = f"{room.path}/members/{room.observer.id}"
    read = await client.get(path, headers=room.facilitator.headers)
    response = await client.patch(
        path,
        json={"role": "member"},
        headers={**room.facilitator.headers, "If-Match": read.headers["etag"]},
    )
    assert response.status_code == 200, response.text
    assert response.json()["role"] == "member"
    assert (await member_slugs(client, room))[room.observer.slug] == "member"
    for actor in (room.facilitator, room.member, room.observer):
        [changed] = await event_data(database, actor, "working_group.member_role_changed")
        assert changed["tenant"] == room.observer.ref()
        assert (changed["role"], changed["previous_role"]) == ("member", "observer")
    assert await event_data(database, room.outsider, "working_group.member_role_changed") == []

    stale = await client.patch(
        path,
        json={"role": "facilitator"},
        headers={**room.facilitator.headers, "If-Match": read.headers["etag"]},
    )
    assert_problem(stale, 412)
    assert (await member_slugs(client, room))[room.observer.slug] == "member"


async def test_role_changes_are_for_facilitators_with_a_valid_role(client, room):
    path = f"{room.path}/members/{room.member.id}"
    for actor in (room.member, room.observer):
        response = await client.patch(path, json={"role": "facilitator"}, headers=actor.headers)
        assert_problem(response, 403)
    # Nobody promotes itself.
    response = await client.patch(
        f"{room.path}/members/{room.observer.id}",
        json={"role": "facilitator"},
        headers=room.observer.headers,
    )
    assert_problem(response, 403)
    headers = room.facilitator.headers
    problem = assert_problem(await client.patch(path, json={"role": "owner"}, headers=headers), 422)
    assert "role" in error_fields(problem)
    problem = assert_problem(
        await client.patch(path, json={"role": "member", "status": "left"}, headers=headers), 400
    )
    assert "status" in error_fields(problem)
    response = await client.patch(
        f"{room.path}/members/{room.outsider.id}", json={"role": "member"}, headers=headers
    )
    assert_problem(response, 404)
    assert await member_slugs(client, room) == {
        room.facilitator.slug: "facilitator",
        room.member.slug: "member",
        room.observer.slug: "observer",
    }


async def test_the_last_facilitator_cannot_leave_or_step_down(client, room):
    me = f"{room.path}/members/{room.facilitator.id}"
    headers = room.facilitator.headers
    for response in (
        await client.delete(me, headers=headers),
        await client.patch(me, json={"role": "member"}, headers=headers),
    ):
        problem = assert_problem(response, 409)
        assert problem["type"] == "/problems/last-facilitator"
        assert "only facilitator" in problem["detail"]
    assert (await member_slugs(client, room))[room.facilitator.slug] == "facilitator"

    # With a second facilitator, the first may step down, and then leave.
    response = await client.patch(
        f"{room.path}/members/{room.member.id}", json={"role": "facilitator"}, headers=headers
    )
    assert response.status_code == 200, response.text
    response = await client.patch(me, json={"role": "observer"}, headers=headers)
    assert response.status_code == 200, response.text
    # No longer a facilitator: facilitator actions are refused.
    assert_problem(await client.patch(room.path, json={"name": "x"}, headers=headers), 403)
    response = await client.delete(me, headers=headers)
    assert response.status_code == 204, response.text
    # The remaining facilitator is now the last one.
    response = await client.delete(
        f"{room.path}/members/{room.member.id}", headers=room.member.headers
    )
    assert assert_problem(response, 409)["type"] == "/problems/last-facilitator"


async def test_a_tenant_that_leaves_loses_access_at_once(client, room, database):
    response = await client.delete(
        f"{room.path}/members/{room.member.id}", headers=room.member.headers
    )
    assert response.status_code == 204, response.text
    headers = room.member.headers
    random_path = f"/v1/working-groups/{uuid.uuid4()}"
    for suffix in ("", "/members", f"/members/{room.facilitator.id}"):
        gone = await client.get(room.path + suffix, headers=headers)
        assert_problem(gone, 404)
        assert gone.json() == (await client.get(random_path + suffix, headers=headers)).json()
    assert_problem(
        await client.delete(f"{room.path}/members/{room.member.id}", headers=headers), 404
    )
    assert (await client.get("/v1/working-groups", headers=headers)).json()["items"] == []
    assert room.member.slug not in await member_slugs(client, room)

    for actor in (room.facilitator, room.observer, room.member):
        [left] = await event_data(database, actor, "working_group.member_left")
        assert left["tenant"] == room.member.ref()
        assert left["working_group"]["id"] == room.id

    # Later events of the group no longer reach it.
    await client.patch(room.path, json={"name": "After"}, headers=room.facilitator.headers)
    assert await event_data(database, room.member, "working_group.updated") == []
    assert len(await event_data(database, room.observer, "working_group.updated")) == 1

    # A new invitation brings it back, in the invited role.
    await join(client, room.facilitator, room.id, room.member, "observer")
    back = await client.get(room.path, headers=headers)
    assert back.status_code == 200, back.text
    assert back.json()["my_role"] == "observer"


async def test_facilitators_remove_members_who_lose_access(client, room, database):
    path = f"{room.path}/members/{room.observer.id}"
    # Members cannot remove each other.
    assert_problem(await client.delete(path, headers=room.member.headers), 403)
    response = await client.delete(
        f"{room.path}/members/{room.facilitator.id}", headers=room.observer.headers
    )
    assert_problem(response, 403)
    read = await client.get(path, headers=room.facilitator.headers)
    stale = await client.delete(path, headers={**room.facilitator.headers, "If-Match": '"0000"'})
    assert_problem(stale, 412)
    response = await client.delete(
        path, headers={**room.facilitator.headers, "If-Match": read.headers["etag"]}
    )
    assert response.status_code == 204, response.text

    removed = room.observer.headers
    assert_problem(await client.get(room.path, headers=removed), 404)
    assert_problem(await client.get(f"{room.path}/members", headers=removed), 404)
    assert room.observer.slug not in await member_slugs(client, room)
    assert_problem(await client.delete(path, headers=room.facilitator.headers), 404)

    # The removed tenant learns it was removed, as do the others.
    for actor in (room.facilitator, room.member, room.observer):
        [event] = await event_data(database, actor, "working_group.member_removed")
        assert event["tenant"] == room.observer.ref()
    assert await event_data(database, room.outsider, "working_group.member_removed") == []
