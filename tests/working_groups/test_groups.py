"""/v1/working-groups: create, list, read and change a group."""

from __future__ import annotations

import uuid

from tests.conftest import count_rows
from tests.working_groups.conftest import (
    assert_problem,
    create_group,
    error_fields,
    event_data,
    join,
)


async def test_create_makes_the_caller_facilitator_with_defaults(client, new_actor, database):
    brand = await new_actor()
    response = await client.post(
        "/v1/working-groups", json={"name": "  Toys in Jiangsu  "}, headers=brand.headers
    )
    assert response.status_code == 201, response.text
    group = response.json()
    assert response.headers["location"] == f"/v1/working-groups/{group['id']}"
    assert group["name"] == "Toys in Jiangsu"
    assert group["description"] is None
    assert group["timezone"] == "Asia/Hong_Kong"
    assert group["anonymity_threshold"] == 3
    assert group["member_count"] == 1
    assert group["my_role"] == "facilitator"
    uuid.UUID(group["id"])

    members = await client.get(f"/v1/working-groups/{group['id']}/members", headers=brand.headers)
    assert members.status_code == 200, members.text
    [me] = members.json()["items"]
    assert me["tenant"] == {"id": str(brand.id), "slug": brand.slug, "name": brand.name}
    assert me["role"] == "facilitator"
    assert me["joined_at"].endswith("Z")

    [created] = await event_data(database, brand, "working_group.created")
    assert created["working_group"]["id"] == group["id"]
    assert created["working_group"]["name"] == "Toys in Jiangsu"

    fetched = await client.get(f"/v1/working-groups/{group['id']}", headers=brand.headers)
    assert fetched.json() == group
    assert fetched.headers["etag"] == response.headers["etag"]


async def test_create_takes_every_field(client, new_actor):
    brand = await new_actor()
    group = await create_group(
        client,
        brand,
        name="Vietnam footwear",
        description="Young workers in Binh Duong",
        timezone="Asia/Ho_Chi_Minh",
        anonymity_threshold=5,
    )
    assert group["description"] == "Young workers in Binh Duong"
    assert group["timezone"] == "Asia/Ho_Chi_Minh"
    assert group["anonymity_threshold"] == 5


async def test_create_rejects_bad_values_and_changes_nothing(client, new_actor, database):
    brand = await new_actor()
    before = await count_rows(database, "working_groups")
    cases = [
        ({"name": "g", "anonymity_threshold": 2}, "anonymity_threshold"),
        ({"name": "g", "timezone": "Mars/Olympus_Mons"}, "timezone"),
        ({"name": "g", "timezone": "hong kong"}, "timezone"),
        ({"name": "   "}, "name"),
        ({"name": ""}, "name"),
        ({"name": "x" * 201}, "name"),
        ({}, "name"),
    ]
    for body, field in cases:
        response = await client.post("/v1/working-groups", json=body, headers=brand.headers)
        problem = assert_problem(response, 422)
        assert field in error_fields(problem), (body, problem)
    for body, field in [
        ({"name": "g", "tenant_id": str(brand.id)}, "tenant_id"),
        ({"name": "g", "anonymity_threshold": "3"}, "anonymity_threshold"),
        ({"name": 7}, "name"),
    ]:
        response = await client.post("/v1/working-groups", json=body, headers=brand.headers)
        problem = assert_problem(response, 400)
        assert field in error_fields(problem), (body, problem)
    assert await count_rows(database, "working_groups") == before
    listed = await client.get("/v1/working-groups", headers=brand.headers)
    assert listed.json()["items"] == []


async def test_scopes_gate_reads_and_writes(client, new_actor, room):
    reader = {"Authorization": f"Bearer {await room.member.handle.token('working-groups:read')}"}
    other = {"Authorization": f"Bearer {await room.member.handle.token('findings:read')}"}
    response = await client.post("/v1/working-groups", json={"name": "g"}, headers=reader)
    assert "working-groups:write" in assert_problem(response, 403)["detail"]
    assert (await client.get(room.path, headers=reader)).status_code == 200
    assert_problem(await client.get(room.path, headers=other), 403)
    assert_problem(await client.get("/v1/working-groups", headers=other), 403)
    assert_problem(await client.patch(room.path, json={"name": "n"}, headers=reader), 403)

    viewer = await new_actor(role="viewer")
    response = await client.post("/v1/working-groups", json={"name": "g"}, headers=viewer.headers)
    assert_problem(response, 403)


async def test_list_shows_only_my_active_groups_and_pages(client, new_actor):
    brand, other = await new_actor(), await new_actor()
    mine = [await create_group(client, brand, name=f"Group {i}") for i in range(3)]
    await create_group(client, other, name="Not yours")
    theirs = await create_group(client, other, name="Joined later")
    await join(client, other, theirs["id"], brand, "observer")

    seen, cursor, pages = [], None, 0
    while True:
        params = {"limit": 2, **({"cursor": cursor} if cursor else {})}
        response = await client.get("/v1/working-groups", params=params, headers=brand.headers)
        assert response.status_code == 200, response.text
        body = response.json()
        seen += body["items"]
        pages += 1
        cursor = body["next_cursor"]
        if cursor is None:
            assert "link" not in response.headers
            break
        assert 'rel="next"' in response.headers["link"]
    assert pages == 2
    assert [g["id"] for g in seen] == [g["id"] for g in mine] + [theirs["id"]]
    assert [g["my_role"] for g in seen] == ["facilitator"] * 3 + ["observer"]
    assert seen[-1]["member_count"] == 2

    assert_problem(
        await client.get("/v1/working-groups", params={"limit": 201}, headers=brand.headers), 400
    )
    assert_problem(
        await client.get("/v1/working-groups", params={"cursor": "bm9wZQ"}, headers=brand.headers),
        400,
    )


async def test_outsiders_get_the_same_404_as_for_a_random_id(client, room):
    outsider = room.outsider.headers
    random_path = f"/v1/working-groups/{uuid.uuid4()}"
    real = await client.get(room.path, headers=outsider)
    random = await client.get(random_path, headers=outsider)
    assert_problem(real, 404)
    assert real.json() == random.json()
    real = await client.patch(room.path, json={"name": "Taken over"}, headers=outsider)
    random = await client.patch(random_path, json={"name": "Taken over"}, headers=outsider)
    assert_problem(real, 404)
    assert real.json() == random.json()
    assert (await client.get("/v1/working-groups", headers=outsider)).json()["items"] == []
    unchanged = await client.get(room.path, headers=room.facilitator.headers)
    assert unchanged.json()["name"] == room.group["name"]


async def test_members_and_observers_read_the_group(client, room):
    for actor, role in ((room.member, "member"), (room.observer, "observer")):
        response = await client.get(room.path, headers=actor.headers)
        assert response.status_code == 200, response.text
        assert response.json()["my_role"] == role
        assert response.json()["member_count"] == 3
        assert response.headers["etag"]


async def test_facilitator_changes_the_group_and_members_learn_it(client, room, database):
    read = await client.get(room.path, headers=room.facilitator.headers)
    response = await client.patch(
        room.path,
        json={"name": "Renamed", "description": "Q3 focus", "anonymity_threshold": 4},
        headers={**room.facilitator.headers, "If-Match": read.headers["etag"]},
    )
    assert response.status_code == 200, response.text
    changed = response.json()
    assert changed["name"] == "Renamed"
    assert changed["description"] == "Q3 focus"
    assert changed["anonymity_threshold"] == 4
    assert changed["timezone"] == room.group["timezone"]
    assert response.headers["etag"] != read.headers["etag"]

    # Only what is sent changes; null clears the description.
    response = await client.patch(
        room.path, json={"description": None}, headers=room.facilitator.headers
    )
    assert response.json()["description"] is None
    assert response.json()["name"] == "Renamed"

    for actor in (room.facilitator, room.member, room.observer):
        updates = await event_data(database, actor, "working_group.updated")
        assert [u["changed"] for u in updates] == [
            ["anonymity_threshold", "description", "name"],
            ["description"],
        ]
        assert updates[0]["working_group"]["name"] == "Renamed"
    assert await event_data(database, room.outsider, "working_group.updated") == []

    # A stale ETag is refused and changes nothing.
    stale = await client.patch(
        room.path,
        json={"name": "Lost update"},
        headers={**room.facilitator.headers, "If-Match": read.headers["etag"]},
    )
    assert_problem(stale, 412)
    current = await client.get(room.path, headers=room.member.headers)
    assert current.json()["name"] == "Renamed"


async def test_change_is_for_facilitators_with_valid_values(client, room):
    for actor in (room.member, room.observer):
        response = await client.patch(room.path, json={"name": "Mine"}, headers=actor.headers)
        assert_problem(response, 403)
    headers = room.facilitator.headers
    for body, field in [
        ({"anonymity_threshold": 2}, "anonymity_threshold"),
        ({"timezone": "Europe/Atlantis"}, "timezone"),
        ({"name": " "}, "name"),
    ]:
        problem = assert_problem(await client.patch(room.path, json=body, headers=headers), 422)
        assert field in error_fields(problem)
    for body, field in [
        ({"id": str(uuid.uuid4())}, "id"),
        ({"created_at": "2020-01-01T00:00:00Z"}, "created_at"),
        ({"name": None}, "name"),
    ]:
        problem = assert_problem(await client.patch(room.path, json=body, headers=headers), 400)
        assert field in error_fields(problem)
    current = (await client.get(room.path, headers=headers)).json()
    assert current == {**room.group, "member_count": 3}
