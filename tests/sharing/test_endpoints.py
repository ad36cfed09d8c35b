"""Endpoint hygiene of sharing: another tenant's finding or share is a 404 exactly like a random
id, a missing scope is a 403, unknown fields 400, unacceptable values 422, oversize pages 400; and
nothing changes on any of them.
"""

from __future__ import annotations

import dataclasses
import uuid
from typing import Any

import httpx
import pytest

from tests.sharing.conftest import (
    Actor,
    SharingGroup,
    assert_problem,
    new_supplier,
    record,
    record_and_share,
    shared_findings,
)
from tests.suppliers.conftest import assert_hidden
from tests.working_groups.conftest import event_data


@dataclasses.dataclass
class Scene:
    group: SharingGroup
    owner: Actor
    stranger: Actor  # a member of the same group, which owns neither the finding nor the share
    finding: dict[str, Any]
    share: dict[str, Any]
    unshared: dict[str, Any]


@pytest.fixture(scope="module")
async def scene(client: httpx.AsyncClient, make_group: Any) -> Scene:
    group = await make_group()
    owner, stranger = group.members[0], group.members[1]
    supplier = await new_supplier(client, owner)
    shared = await record_and_share(client, owner, supplier["id"], group)
    unshared = await record(client, owner, supplier["id"])
    finding = {"id": shared["finding_id"]}
    return Scene(group, owner, stranger, finding, shared, unshared)


async def _shares(client: httpx.AsyncClient, scene: Scene, finding_id: str) -> list[Any]:
    response = await client.get(f"/v1/findings/{finding_id}/shares", headers=scene.owner.headers)
    assert response.status_code == 200, response.text
    shares: list[Any] = response.json()
    return shares


async def _unchanged(client: httpx.AsyncClient, scene: Scene) -> None:
    [share] = await _shares(client, scene, scene.finding["id"])
    assert share["status"] == "active"
    assert await _shares(client, scene, scene.unshared["id"]) == []
    assert len(await shared_findings(client, scene.group.facilitator, scene.group)) == 1


async def test_the_owner_sees_its_shares(client, scene):
    [share] = await _shares(client, scene, scene.finding["id"])
    assert share == {
        "id": scene.share["id"],
        "finding_id": scene.finding["id"],
        "working_group_id": scene.group.id,
        "shared_finding_id": scene.share["shared_finding_id"],
        "status": "active",
        "include_description": True,
        "created_at": share["created_at"],
        "withdrawn_at": None,
    }
    item = await client.get(
        f"{scene.group.path}/shared-findings/{scene.share['shared_finding_id']}",
        headers=scene.stranger.headers,
    )
    assert item.status_code == 200, item.text
    assert item.headers["etag"]


async def test_another_tenants_finding_and_share_are_404_like_random_ids(client, scene):
    theirs, random = f"/v1/findings/{scene.finding['id']}", f"/v1/findings/{uuid.uuid4()}"
    body = {"json": {"working_group_id": scene.group.id}}
    headers = scene.stranger.headers
    await assert_hidden(client, "POST", f"{theirs}/shares", f"{random}/shares", headers, **body)
    await assert_hidden(client, "GET", f"{theirs}/shares", f"{random}/shares", headers)
    await assert_hidden(
        client,
        "DELETE",
        f"{theirs}/shares/{scene.share['id']}",
        f"{random}/shares/{uuid.uuid4()}",
        headers,
    )
    # The owner itself: a share id of another of its findings, or a random one.
    await assert_hidden(
        client,
        "DELETE",
        f"/v1/findings/{scene.unshared['id']}/shares/{scene.share['id']}",
        f"/v1/findings/{scene.unshared['id']}/shares/{uuid.uuid4()}",
        scene.owner.headers,
    )
    await _unchanged(client, scene)


async def test_missing_scopes_are_403(client, scene):
    no_sharing = {
        "Authorization": "Bearer "
        + await scene.owner.handle.token("findings:read findings:write working-groups:read")
    }
    no_groups = {
        "Authorization": "Bearer "
        + await scene.stranger.handle.token("findings:read sharing:write")
    }
    finding = f"/v1/findings/{scene.unshared['id']}"
    refused = [
        await client.post(
            f"{finding}/shares", json={"working_group_id": scene.group.id}, headers=no_sharing
        ),
        await client.delete(
            f"/v1/findings/{scene.finding['id']}/shares/{scene.share['id']}", headers=no_sharing
        ),
        await client.get(f"{scene.group.path}/shared-findings", headers=no_groups),
        await client.get(
            f"{scene.group.path}/shared-findings/{scene.share['shared_finding_id']}",
            headers=no_groups,
        ),
        await client.get(f"{scene.group.path}/insights", headers=no_groups),
    ]
    for response in refused:
        assert assert_problem(response, 403)["type"] == "/problems/forbidden"
    await _unchanged(client, scene)


@pytest.mark.parametrize(
    ("body", "status", "field"),
    [
        ({"working_group_id": "GROUP", "tenant_id": str(uuid.uuid4())}, 400, "tenant_id"),
        ({"working_group_id": "GROUP", "contributor": "anyone"}, 400, "contributor"),
        ({"working_group_id": "GROUP", "include_description": "yes"}, 400, "include_description"),
        ({"working_group_id": 42}, 400, "working_group_id"),
        ({"include_description": False}, 422, "working_group_id"),
        ({"working_group_id": "RANDOM"}, 422, "working_group_id"),
    ],
)
async def test_bad_share_bodies(client, scene, body, status, field):
    values = {"GROUP": scene.group.id, "RANDOM": str(uuid.uuid4())}
    body = {k: values.get(v, v) if isinstance(v, str) else v for k, v in body.items()}
    response = await client.post(
        f"/v1/findings/{scene.unshared['id']}/shares", json=body, headers=scene.owner.headers
    )
    problem = assert_problem(response, status)
    assert [e["field"] for e in problem["errors"]] == [field]
    await _unchanged(client, scene)


async def test_a_group_the_caller_is_not_in_reads_like_a_random_group(client, scene):
    outsider = scene.group.outsider
    supplier = await new_supplier(client, outsider)
    finding = await record(client, outsider, supplier["id"])
    answers = [
        await client.post(
            f"/v1/findings/{finding['id']}/shares",
            json={"working_group_id": group_id},
            headers=outsider.headers,
        )
        for group_id in (scene.group.id, str(uuid.uuid4()))
    ]
    assert assert_problem(answers[0], 422) == assert_problem(answers[1], 422)


async def test_sharing_twice_into_one_group_is_a_conflict(client, scene):
    again = await client.post(
        f"/v1/findings/{scene.finding['id']}/shares",
        json={"working_group_id": scene.group.id},
        headers=scene.owner.headers,
    )
    assert assert_problem(again, 409)["type"] == "/problems/already-shared"
    await _unchanged(client, scene)


@pytest.mark.parametrize(
    ("path", "params", "status", "fields"),
    [
        ("/shared-findings", {"limit": 201}, 400, None),
        ("/shared-findings", {"limit": 0}, 400, None),
        ("/shared-findings", {"cursor": "bm9wZQ"}, 400, None),
        ("/shared-findings", {"supplier_id": "not-a-uuid"}, 422, ["supplier_id"]),
        ("/shared-findings", {"area": "child_rights"}, 422, ["area"]),
        ("/shared-findings", {"severity": "high"}, 422, ["severity"]),
        ("/shared-findings", {"kind": "rumour"}, 422, ["kind"]),
        ("/shared-findings", {"country": "cn"}, 422, ["country"]),
        ("/shared-findings", {"period": "2026-Q5"}, 422, ["period"]),
        ("/shared-findings", {"period": "2026-07"}, 422, ["period"]),
        ("/shared-findings", {"area": "x", "period": "Q3"}, 422, ["area", "period"]),
        ("/insights", {"group_by": "area,supplier"}, 422, ["group_by"]),
        ("/insights", {"group_by": "tenant"}, 422, ["group_by"]),
        ("/insights", {"group_by": "area,area"}, 422, ["group_by"]),
        ("/insights", {"period": "2026-Q5"}, 422, ["period"]),
        ("/insights", {"area": "child_rights"}, 422, ["area"]),
        ("/insights", {"group_by": "contributor", "country": "CHN"}, 422, ["group_by", "country"]),
    ],
)
async def test_bad_query_parameters(client, scene, path, params, status, fields):
    response = await client.get(
        scene.group.path + path, params=params, headers=scene.stranger.headers
    )
    problem = assert_problem(response, status)
    if fields is not None:
        assert [e["field"] for e in problem["errors"]] == fields


async def test_a_shared_finding_of_another_group_is_404_through_this_one(client, scene, make_group):
    elsewhere = await make_group()
    contributor = elsewhere.members[0]
    supplier = await new_supplier(client, contributor)
    shared = await record_and_share(client, contributor, supplier["id"], elsewhere)
    await assert_hidden(
        client,
        "GET",
        f"{scene.group.path}/shared-findings/{shared['shared_finding_id']}",
        f"{scene.group.path}/shared-findings/{uuid.uuid4()}",
        scene.stranger.headers,
    )


async def test_a_listed_shared_finding_is_the_one_read_alone(client, make_group, database):
    """The list and the single read build their items from the driver's rows by position, the
    events by name: every field, the supplier and the counts included, must be the same in all
    three, for its contributor (`is_own`) and for another member."""
    group = await make_group()
    owner, other = group.members[0], group.members[1]
    supplier = await new_supplier(client, owner)
    await record_and_share(client, owner, supplier["id"], group)
    await record_and_share(
        client,
        owner,
        supplier["id"],
        group,
        area="child_labour",
        kind="observation",
        severity=None,
        basis=None,
        affected_workers=None,
        child_labour_case={"confirmed_under_min_age": 2, "age_unconfirmed": 1},
    )
    for actor in (owner, other):
        listed = await shared_findings(client, actor, group)
        assert len(listed) == 2
        assert {item["is_own"] for item in listed} == {actor is owner}
        for item in listed:
            alone = await client.get(
                f"{group.path}/shared-findings/{item['id']}", headers=actor.headers
            )
            assert alone.status_code == 200, alone.text
            assert item == alone.json()
    told = await event_data(database, other, "shared_finding.published")
    assert len(told) == 2
    for data in told:
        data.pop("working_group_id")
        alone = await client.get(
            f"{group.path}/shared-findings/{data['id']}", headers=other.headers
        )
        assert alone.json() == data
