"""Red team: a group whose member tenants leave until fewer than its threshold remain. With two
sharing tenants left, each would know every shared finding is the other's (or a former member's),
so the group hides its shared findings and insights (empty answers, `group_below_threshold`
true; one record 404 like a random id) until enough members are back; nothing is deleted.
Observers never count.
"""

from __future__ import annotations

import dataclasses
import uuid
from typing import Any

import httpx

from tests.sharing.conftest import (
    Actor,
    SharingGroup,
    assert_problem,
    feed,
    insights,
    new_supplier,
    record_and_share,
    shared_findings,
)
from tests.suppliers.conftest import assert_hidden
from tests.working_groups.conftest import join

HIDDEN_PAGE: dict[str, Any] = {"items": [], "next_cursor": None, "group_below_threshold": True}


@dataclasses.dataclass
class Scene:
    group: SharingGroup
    shared: list[dict[str, Any]]  # one share by the facilitator and each member


async def _scene(client: httpx.AsyncClient, make_group: Any) -> Scene:
    """A facilitator and two members (three sharing tenants, threshold 3) and an observer, each
    sharing tenant with a finding at one factory: every cell has three contributors."""
    group = await make_group(members=2, threshold=3, observer=True)
    sharers = [group.facilitator, *group.members]
    supplier = await new_supplier(client, sharers[0], linked=sharers[1:])
    shared = [await record_and_share(client, actor, supplier["id"], group) for actor in sharers]
    return Scene(group, shared)


def _item(scene: Scene, index: int = 0) -> str:
    return f"{scene.group.path}/shared-findings/{scene.shared[index]['shared_finding_id']}"


async def _remaining(scene: Scene) -> list[Actor]:
    """Who still reads the group: the facilitator, the first member, the observer."""
    assert scene.group.observer is not None
    return [scene.group.facilitator, scene.group.members[0], scene.group.observer]


async def _assert_visible(client: httpx.AsyncClient, scene: Scene, readers: list[Actor]) -> None:
    for reader in readers:
        page = await client.get(f"{scene.group.path}/shared-findings", headers=reader.headers)
        assert page.status_code == 200, page.text
        assert page.json()["group_below_threshold"] is False
        assert len(page.json()["items"]) == 3
        # A filter that finds nothing: an empty page, not a hidden group.
        empty = await client.get(
            f"{scene.group.path}/shared-findings",
            params={"kind": "good_practice"},
            headers=reader.headers,
        )
        assert empty.status_code == 200, empty.text
        assert empty.json() == {"items": [], "next_cursor": None, "group_below_threshold": False}
        assert (await client.get(_item(scene), headers=reader.headers)).status_code == 200
        body = (await insights(client, reader, scene.group)).json()
        assert body["group_below_threshold"] is False
        assert [cell["contributors"] for cell in body["cells"]] == ["3+"]


async def _assert_hidden(client: httpx.AsyncClient, scene: Scene, readers: list[Actor]) -> None:
    for reader in readers:
        page = await client.get(f"{scene.group.path}/shared-findings", headers=reader.headers)
        assert page.status_code == 200, page.text
        assert page.json() == HIDDEN_PAGE
        filtered = await client.get(
            f"{scene.group.path}/shared-findings",
            params={"area": "working_hours", "limit": 1},
            headers=reader.headers,
        )
        assert filtered.json() == HIDDEN_PAGE
        assert "link" not in filtered.headers
        for index in range(len(scene.shared)):
            await assert_hidden(
                client,
                "GET",
                _item(scene, index),
                f"{scene.group.path}/shared-findings/{uuid.uuid4()}",
                reader.headers,
            )
        for dims in ((), ("area",), ("area", "period", "severity")):
            body = (await insights(client, reader, scene.group, dims)).json()
            assert body == {
                "group_by": list(dims),
                "threshold": 3,
                "rounding_base": 5,
                "cells": [],
                "suppressed_cells": 0,
                "group_below_threshold": True,
            }


async def test_a_group_hides_everything_while_below_its_threshold_and_shows_it_again(
    client, make_group
):
    scene = await _scene(client, make_group)
    group, leaver = scene.group, scene.group.members[1]
    readers = await _remaining(scene)
    await _assert_visible(client, scene, [*readers, leaver])

    removed = await client.delete(
        f"{group.path}/members/{leaver.id}", headers=group.facilitator.headers
    )
    assert removed.status_code == 204, removed.text
    await _assert_hidden(client, scene, readers)
    # The contributor itself, still a member, sees no more than the others.
    assert (await client.get(_item(scene), headers=group.facilitator.headers)).status_code == 404
    # Its shares stay active: nothing is deleted.
    own = await client.get(
        f"/v1/findings/{scene.shared[0]['finding_id']}/shares", headers=group.facilitator.headers
    )
    assert [s["status"] for s in own.json()] == ["active"]

    await join(client, group.facilitator, group.id, leaver, "member")
    await _assert_visible(client, scene, [*readers, leaver])


async def test_a_member_made_observer_counts_no_more(client, make_group):
    scene = await _scene(client, make_group)
    group, demoted = scene.group, scene.group.members[1]
    changed = await client.patch(
        f"{group.path}/members/{demoted.id}",
        json={"role": "observer"},
        headers=group.facilitator.headers,
    )
    assert changed.status_code == 200, changed.text
    await _assert_hidden(client, scene, [*await _remaining(scene), demoted])
    # Nor can anything be shared or previewed into it meanwhile.
    finding_id = scene.shared[0]["finding_id"]
    for path in ("shares", "shares/preview"):
        response = await client.post(
            f"/v1/findings/{finding_id}/{path}",
            json={"working_group_id": group.id},
            headers=group.facilitator.headers,
        )
        assert assert_problem(response, 409)["type"] == "/problems/group-below-anonymity-threshold"

    restored = await client.patch(
        f"{group.path}/members/{demoted.id}",
        json={"role": "member"},
        headers=group.facilitator.headers,
    )
    assert restored.status_code == 200, restored.text
    await _assert_visible(client, scene, [*await _remaining(scene), demoted])


async def test_changes_made_while_hidden_are_not_announced_and_show_when_visible_again(
    client, make_group
):
    scene = await _scene(client, make_group)
    group, contributor, leaver = scene.group, scene.group.members[0], scene.group.members[1]
    left = await client.delete(f"{group.path}/members/{leaver.id}", headers=leaver.headers)
    assert left.status_code == 204, left.text

    mine = scene.shared[1]
    changed = await client.patch(
        f"/v1/findings/{mine['finding_id']}",
        json={"title": "Overtime cut to the legal limit", "status": "resolved"},
        headers=contributor.headers,
    )
    assert changed.status_code == 200, changed.text
    for reader in (group.facilitator, group.observer):
        assert reader is not None
        response = await client.get(
            "/v1/events", params={"types": "shared_finding.updated"}, headers=reader.headers
        )
        assert response.json()["items"] == []

    await join(client, group.facilitator, group.id, leaver, "member")
    item = f"{group.path}/shared-findings/{mine['shared_finding_id']}"
    for reader in (group.facilitator, leaver):
        record = await client.get(item, headers=reader.headers)
        assert record.status_code == 200, record.text
        assert record.json()["title"] == "Overtime cut to the legal limit"
        assert record.json()["status"] == "resolved"
    # Announced again once visible.
    again = await client.patch(
        f"/v1/findings/{mine['finding_id']}",
        json={"status": "verified"},
        headers=contributor.headers,
    )
    assert again.status_code == 200, again.text
    events = (await feed(client, group.facilitator, "shared_finding.updated")).json()["items"]
    assert [e["data"]["status"] for e in events] == ["verified"]


async def test_a_higher_threshold_hides_sooner(client, make_group):
    group = await make_group(members=3, threshold=4, observer=False)
    sharers = [group.facilitator, *group.members]
    supplier = await new_supplier(client, sharers[0], linked=sharers[1:])
    for actor in sharers:
        await record_and_share(client, actor, supplier["id"], group)
    assert len(await shared_findings(client, group.facilitator, group)) == 4
    left = await client.delete(
        f"{group.path}/members/{group.members[2].id}", headers=group.members[2].headers
    )
    assert left.status_code == 204, left.text
    page = await client.get(f"{group.path}/shared-findings", headers=group.facilitator.headers)
    assert page.json() == HIDDEN_PAGE
