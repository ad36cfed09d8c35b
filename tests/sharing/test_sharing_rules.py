"""Red team: the sharing rules. Who may share, when a group is too small to share into, withdrawal
(also after leaving the group and by deleting the finding), changes flowing into active shares,
and what a tenant outside the group can learn (nothing: 404s like a random id).
"""

from __future__ import annotations

import uuid
from typing import Any

import httpx

from tests.sharing.conftest import (
    Actor,
    assert_problem,
    feed,
    finding_body,
    insights,
    join_all,
    new_supplier,
    record,
    record_and_share,
    shared_findings,
)
from tests.working_groups.conftest import join

TOO_SMALL = "/problems/group-below-anonymity-threshold"


async def _shares_of(client: httpx.AsyncClient, actor: Actor, finding_id: str) -> list[Any]:
    response = await client.get(f"/v1/findings/{finding_id}/shares", headers=actor.headers)
    assert response.status_code == 200, response.text
    shares: list[Any] = response.json()
    return shares


async def test_an_observer_cannot_share(client, make_group):
    group = await make_group()
    supplier = await new_supplier(client, group.observer)
    finding = await record(client, group.observer, supplier["id"])
    response = await client.post(
        f"/v1/findings/{finding['id']}/shares",
        json={"working_group_id": group.id},
        headers=group.observer.headers,
    )
    assert assert_problem(response, 403)["type"] == "/problems/forbidden"
    assert await _shares_of(client, group.observer, finding["id"]) == []
    assert await shared_findings(client, group.facilitator, group) == []


async def test_a_group_with_fewer_member_tenants_than_its_threshold_refuses_shares(
    client, make_group, new_brand
):
    group = await make_group(members=4, threshold=6, observer=False)
    contributor = group.members[0]
    supplier = await new_supplier(client, contributor)
    finding = await record(client, contributor, supplier["id"])
    path = f"/v1/findings/{finding['id']}/shares"

    refused = await client.post(
        path, json={"working_group_id": group.id}, headers=contributor.headers
    )
    problem = assert_problem(refused, 409)
    assert problem["type"] == TOO_SMALL
    assert "5 member tenants" in problem["detail"]
    assert "threshold is 6" in problem["detail"]
    assert await _shares_of(client, contributor, finding["id"]) == []
    assert await shared_findings(client, group.facilitator, group) == []

    sixth = await new_brand()
    await join(client, group.facilitator, group.id, sixth, "member")
    accepted = await client.post(
        path, json={"working_group_id": group.id}, headers=contributor.headers
    )
    assert accepted.status_code == 201, accepted.text


async def test_observers_do_not_count_towards_the_threshold(client, make_group):
    """Facilitator, one member and an observer: three tenants, but only the member and the
    facilitator can share, so the facilitator would know every shared finding is the member's."""
    group = await make_group(members=1, threshold=3, observer=True)
    member = group.members[0]
    supplier = await new_supplier(client, member)
    finding = await record(client, member, supplier["id"])
    response = await client.post(
        f"/v1/findings/{finding['id']}/shares",
        json={"working_group_id": group.id},
        headers=member.headers,
    )
    assert assert_problem(response, 409)["type"] == TOO_SMALL
    assert await shared_findings(client, group.facilitator, group) == []


async def test_withdraw_removes_the_shared_record_for_everyone_at_once(client, make_group):
    group = await make_group()
    a, b, c, _ = group.members
    supplier = await new_supplier(client, a, linked=[b, c])
    mine = await record_and_share(client, a, supplier["id"], group)
    for actor in (b, c):
        await record_and_share(client, actor, supplier["id"], group)
    item = f"{group.path}/shared-findings/{mine['shared_finding_id']}"
    for reader in group.readers:
        assert (await client.get(item, headers=reader.headers)).status_code == 200
    total = (await insights(client, group.facilitator, group)).json()
    assert total["cells"][0]["contributors"] == "3+"

    withdrawn = await client.delete(
        f"/v1/findings/{mine['finding_id']}/shares/{mine['id']}", headers=a.headers
    )
    assert withdrawn.status_code == 204, withdrawn.text

    for reader in group.readers:
        assert_problem(await client.get(item, headers=reader.headers), 404)
        listed = {i["id"] for i in await shared_findings(client, reader, group)}
        assert len(listed) == 2
        assert mine["shared_finding_id"] not in listed
        after = (await insights(client, reader, group)).json()
        assert after["cells"] == []
        assert after["suppressed_cells"] == 1
    [share] = await _shares_of(client, a, mine["finding_id"])
    assert share["status"] == "withdrawn"
    assert share["shared_finding_id"] is None
    assert share["withdrawn_at"] is not None
    for reader in group.others(a):
        events = await feed(client, reader, "shared_finding.withdrawn")
        assert [e["data"] for e in events.json()["items"]] == [
            {"working_group_id": group.id, "id": mine["shared_finding_id"]}
        ]
    own = await feed(client, a, "share.withdrawn")
    assert own.json()["items"][0]["data"]["id"] == mine["id"]
    again = await client.delete(
        f"/v1/findings/{mine['finding_id']}/shares/{mine['id']}", headers=a.headers
    )
    assert again.status_code == 204


async def test_deleting_the_finding_withdraws_its_shares(client, make_group):
    first, second = await make_group(), await make_group()
    contributor = first.members[0]
    await join_all(client, second, first.members)
    supplier = await new_supplier(client, contributor)
    finding = await record(client, contributor, supplier["id"])
    items = []
    for group in (first, second):
        response = await client.post(
            f"/v1/findings/{finding['id']}/shares",
            json={"working_group_id": group.id},
            headers=contributor.headers,
        )
        assert response.status_code == 201, response.text
        items.append(f"{group.path}/shared-findings/{response.json()['shared_finding_id']}")

    deleted = await client.delete(f"/v1/findings/{finding['id']}", headers=contributor.headers)
    assert deleted.status_code == 204, deleted.text

    for group, item in zip((first, second), items, strict=True):
        for reader in group.readers:
            assert_problem(await client.get(item, headers=reader.headers), 404)
            assert await shared_findings(client, reader, group) == []


async def test_changes_to_the_source_flow_into_active_shares_scrubbed_again(client, make_group):
    group = await make_group()
    contributor, other = group.members[0], group.members[1]
    supplier = await new_supplier(client, contributor)
    shared = await record_and_share(client, contributor, supplier["id"], group)
    quiet = await record(client, contributor, supplier["id"])
    hidden = await client.post(
        f"/v1/findings/{quiet['id']}/shares",
        json={"working_group_id": group.id, "include_description": False},
        headers=contributor.headers,
    )
    assert hidden.status_code == 201, hidden.text

    changes = {
        "status": "remediation_in_progress",
        "severity": "critical",
        "title": f"Escalated by {other.name.upper()}",
        "description": "Call the HR manager on 13812345678 or hr@factory.example.com.",
    }
    for finding_id in (shared["finding_id"], quiet["id"]):
        response = await client.patch(
            f"/v1/findings/{finding_id}", json=changes, headers=contributor.headers
        )
        assert response.status_code == 200, response.text

    expected = {
        "status": "remediation_in_progress",
        "severity": "critical",
        "title": "Escalated by [redacted:organisation]",
        "description": "Call the HR manager on [redacted:phone] or [redacted:email].",
    }
    item = f"{group.path}/shared-findings/{shared['shared_finding_id']}"
    for reader in group.readers:
        one = (await client.get(item, headers=reader.headers)).json()
        assert {k: one[k] for k in expected} == expected
        other_one = (
            await client.get(
                f"{group.path}/shared-findings/{hidden.json()['shared_finding_id']}",
                headers=reader.headers,
            )
        ).json()
        assert other_one["description"] is None
        assert other_one["title"] == expected["title"]
    for reader in group.others(contributor):
        events = (await feed(client, reader, "shared_finding.updated", at_least=2)).json()
        data = [e["data"] for e in events["items"]]
        assert {k: data[0][k] for k in expected} == expected
        assert data[0]["id"] == shared["shared_finding_id"]
        assert data[0]["is_own"] is False

    private_only = await client.patch(
        f"/v1/findings/{shared['finding_id']}",
        json={"external_id": "ERP-991", "affected_workers": 41},
        headers=contributor.headers,
    )
    assert private_only.status_code == 200, private_only.text
    events = (await feed(client, other, "shared_finding.updated", at_least=2)).json()
    assert len(events["items"]) == 2  # nothing the group sees changed: nothing to announce


async def test_a_tenant_that_left_can_still_withdraw_but_no_longer_read(client, make_group):
    group = await make_group()
    leaver = group.members[0]
    supplier = await new_supplier(client, leaver)
    shared = await record_and_share(client, leaver, supplier["id"], group)
    item = f"{group.path}/shared-findings/{shared['shared_finding_id']}"
    left = await client.delete(f"{group.path}/members/{leaver.id}", headers=leaver.headers)
    assert left.status_code == 204, left.text

    random_group = f"/v1/working-groups/{uuid.uuid4()}"
    for path, random_path in (
        (f"{group.path}/shared-findings", f"{random_group}/shared-findings"),
        (item, f"{random_group}/shared-findings/{shared['shared_finding_id']}"),
        (f"{group.path}/insights", f"{random_group}/insights"),
    ):
        mine = await client.get(path, headers=leaver.headers)
        nobodys = await client.get(random_path, headers=leaver.headers)
        assert assert_problem(mine, 404) == assert_problem(nobodys, 404)
    # What it shared stays shared until it withdraws it.
    assert (await client.get(item, headers=group.facilitator.headers)).status_code == 200
    [share] = await _shares_of(client, leaver, shared["finding_id"])
    assert share["status"] == "active"

    withdrawn = await client.delete(
        f"/v1/findings/{shared['finding_id']}/shares/{shared['id']}", headers=leaver.headers
    )
    assert withdrawn.status_code == 204, withdrawn.text
    for reader in group.others(leaver):
        assert_problem(await client.get(item, headers=reader.headers), 404)
    [share] = await _shares_of(client, leaver, shared["finding_id"])
    assert share["status"] == "withdrawn"


async def test_a_change_after_leaving_is_still_scrubbed_of_the_members_names(client, make_group):
    group = await make_group()
    leaver, named = group.members[0], group.members[3]
    supplier = await new_supplier(client, leaver)
    shared = await record_and_share(client, leaver, supplier["id"], group)
    left = await client.delete(f"{group.path}/members/{leaver.id}", headers=leaver.headers)
    assert left.status_code == 204, left.text

    changed = await client.patch(
        f"/v1/findings/{shared['finding_id']}",
        json={"description": f"{named.name} and {group.facilitator.slug} buy here too."},
        headers=leaver.headers,
    )
    assert changed.status_code == 200, changed.text
    one = await client.get(
        f"{group.path}/shared-findings/{shared['shared_finding_id']}", headers=named.headers
    )
    assert one.json()["description"] == (
        "[redacted:organisation] and [redacted:organisation] buy here too."
    )


async def test_a_non_member_gets_404_exactly_like_a_random_group(client, make_group):
    group = await make_group()
    supplier = await new_supplier(client, group.members[0])
    shared = await record_and_share(client, group.members[0], supplier["id"], group)
    random_group = f"/v1/working-groups/{uuid.uuid4()}"
    sf = shared["shared_finding_id"]
    for suffix in ("/shared-findings", f"/shared-findings/{sf}", "/insights?group_by=area"):
        theirs = await client.get(group.path + suffix, headers=group.outsider.headers)
        nobodys = await client.get(random_group + suffix, headers=group.outsider.headers)
        assert assert_problem(theirs, 404) == assert_problem(nobodys, 404)
        assert theirs.content == nobodys.content
        assert (await client.get(group.path + suffix, headers=group.observer.headers)).is_success


async def test_a_supplier_is_readable_through_a_visible_shared_finding_only(client, make_group):
    group = await make_group()
    contributor, reader = group.members[0], group.members[2]
    supplier = await new_supplier(client, contributor, internal_code="OUR-CODE-1")
    path, random_path = f"/v1/suppliers/{supplier['id']}", f"/v1/suppliers/{uuid.uuid4()}"
    before = await client.get(path, headers=reader.headers)
    assert assert_problem(before, 404) == assert_problem(
        await client.get(random_path, headers=reader.headers), 404
    )

    shared = await record_and_share(client, contributor, supplier["id"], group)
    for actor in group.others(contributor):
        seen = await client.get(path, headers=actor.headers)
        assert seen.status_code == 200, seen.text
        assert seen.json() == supplier
        assert "OUR-CODE-1" not in seen.text
    outside = await client.get(path, headers=group.outsider.headers)
    nobodys = await client.get(random_path, headers=group.outsider.headers)
    assert assert_problem(outside, 404) == assert_problem(nobodys, 404)

    await client.delete(
        f"/v1/findings/{shared['finding_id']}/shares/{shared['id']}", headers=contributor.headers
    )
    assert_problem(await client.get(path, headers=reader.headers), 404)


async def test_a_replace_by_external_id_flows_into_active_shares(client, make_group):
    group = await make_group()
    contributor = group.members[0]
    supplier = await new_supplier(client, contributor)
    shared = await record_and_share(
        client, contributor, supplier["id"], group, external_id="CAS-7001"
    )
    replaced = await client.put(
        "/v1/findings/by-external-id/CAS-7001",
        json=finding_body(
            supplier["id"],
            status="resolved",
            title="Resolved: overtime capped (case CAS-7001)",
            description="Checked by zhang.san@factory.example.com.",
        ),
        headers=contributor.headers,
    )
    assert replaced.status_code == 200, replaced.text
    one = await client.get(
        f"{group.path}/shared-findings/{shared['shared_finding_id']}",
        headers=group.members[1].headers,
    )
    assert one.json()["status"] == "resolved"
    assert one.json()["title"] == "Resolved: overtime capped (case [redacted:reference])"
    assert one.json()["description"] == "Checked by [redacted:email]."
