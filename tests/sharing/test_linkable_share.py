"""Red team: the same finding in two groups. A tenant in both would see the same record twice and
could narrow its contributor down to the tenants the groups have in common, so a second share is
refused (409 `/problems/linkable-share`) unless the groups have at least k + 1 member tenants in
common (k the larger threshold; observers never count), and the preview says so too.
"""

from __future__ import annotations

from typing import Any

import httpx

from tests.sharing.conftest import (
    Actor,
    SharingGroup,
    assert_problem,
    join_all,
    new_supplier,
    record,
    share,
    shared_findings,
)
from tests.working_groups.conftest import join

LINKABLE = "/problems/linkable-share"


async def _attempt(
    client: httpx.AsyncClient, actor: Actor, finding_id: str, group: SharingGroup
) -> tuple[httpx.Response, httpx.Response]:
    """The preview and the share of `finding_id` into `group`."""
    body = {"working_group_id": group.id}
    previewed = await client.post(
        f"/v1/findings/{finding_id}/shares/preview", json=body, headers=actor.headers
    )
    shared = await client.post(
        f"/v1/findings/{finding_id}/shares", json=body, headers=actor.headers
    )
    return previewed, shared


async def _refused(
    client: httpx.AsyncClient, actor: Actor, finding_id: str, group: SharingGroup
) -> None:
    before = await shared_findings(client, group.facilitator, group)
    for response in await _attempt(client, actor, finding_id, group):
        problem = assert_problem(response, 409)
        assert problem["type"] == LINKABLE
        # The detail names only the caller's own other group, never who is in it.
        assert "too few member tenants" in problem["detail"]
    assert await shared_findings(client, group.facilitator, group) == before


async def _accepted(
    client: httpx.AsyncClient, actor: Actor, finding_id: str, group: SharingGroup
) -> None:
    before = await shared_findings(client, group.facilitator, group)
    previewed, shared = await _attempt(client, actor, finding_id, group)
    assert previewed.status_code == 200, previewed.text
    assert shared.status_code == 201, shared.text
    assert len(await shared_findings(client, group.facilitator, group)) == len(before) + 1


async def _shared_once(
    client: httpx.AsyncClient, first: SharingGroup
) -> tuple[Actor, dict[str, Any]]:
    contributor = first.members[0]
    supplier = await new_supplier(client, contributor)
    finding = await record(client, contributor, supplier["id"])
    await share(client, contributor, finding["id"], first)
    return contributor, finding


async def test_two_groups_with_only_two_tenants_in_common_are_never_linked(client, make_group):
    """Three sharing tenants each; the contributor and one rival are in both."""
    first = await make_group(members=2, observer=False)
    second = await make_group(members=1, observer=False)
    contributor, finding = await _shared_once(client, first)
    await join_all(client, second, first.members)
    await _refused(client, contributor, finding["id"], second)
    # The other way round too: a finding first shared into the second group.
    supplier = await new_supplier(client, contributor)
    other = await record(client, contributor, supplier["id"])
    await share(client, contributor, other["id"], second)
    await _refused(client, contributor, other["id"], first)


async def test_k_plus_one_tenants_in_common_allow_the_second_share(client, make_group):
    first = await make_group(members=4, observer=False)
    second = await make_group(members=2, observer=False)
    contributor, finding = await _shared_once(client, first)
    # Three in common (k): a reader in both narrows the contributor down to the other two.
    await join_all(client, second, first.members[:3])
    await _refused(client, contributor, finding["id"], second)
    await join(client, second.facilitator, second.id, first.members[3], "member")
    await _accepted(client, contributor, finding["id"], second)


async def test_observers_in_common_do_not_count(client, make_group):
    first = await make_group(members=4, observer=False)
    second = await make_group(members=2, observer=False)
    contributor, finding = await _shared_once(client, first)
    a, b, c, d = first.members
    await join_all(client, second, [a, b, c])
    await join(client, second.facilitator, second.id, d, "observer")
    await _refused(client, contributor, finding["id"], second)

    # The same four as members: allowed. An observer of the first group counts no more.
    promoted = await client.patch(
        f"{second.path}/members/{d.id}", json={"role": "member"}, headers=second.facilitator.headers
    )
    assert promoted.status_code == 200, promoted.text
    demoted = await client.patch(
        f"{first.path}/members/{d.id}", json={"role": "observer"}, headers=first.facilitator.headers
    )
    assert demoted.status_code == 200, demoted.text
    await _refused(client, contributor, finding["id"], second)
    restored = await client.patch(
        f"{first.path}/members/{d.id}", json={"role": "member"}, headers=first.facilitator.headers
    )
    assert restored.status_code == 200, restored.text
    await _accepted(client, contributor, finding["id"], second)


async def test_the_larger_threshold_decides(client, make_group):
    first = await make_group(members=4, observer=False)
    second = await make_group(members=2, threshold=5, observer=False)
    contributor, finding = await _shared_once(client, first)
    await join_all(client, second, first.members)  # four in common, seven sharing in the second
    await _refused(client, contributor, finding["id"], second)  # k = 5: six in common needed
    await join_all(client, first, second.members)
    await _accepted(client, contributor, finding["id"], second)


async def test_a_withdrawn_share_links_nothing(client, make_group):
    first = await make_group(members=2, observer=False)
    second = await make_group(members=1, observer=False)
    contributor, finding = await _shared_once(client, first)
    await join_all(client, second, first.members)
    await _refused(client, contributor, finding["id"], second)
    [active] = (
        await client.get(f"/v1/findings/{finding['id']}/shares", headers=contributor.headers)
    ).json()
    withdrawn = await client.delete(
        f"/v1/findings/{finding['id']}/shares/{active['id']}", headers=contributor.headers
    )
    assert withdrawn.status_code == 204, withdrawn.text
    await _accepted(client, contributor, finding["id"], second)


async def test_a_group_the_contributor_left_still_links(client, make_group):
    """Its share there stays active (members still read it), though the contributor no longer
    sees who the members are: the rule is counted inside the database."""
    first = await make_group(members=3, observer=False)
    second = await make_group(members=1, observer=False)
    contributor, finding = await _shared_once(client, first)
    await join_all(client, second, first.members)
    left = await client.delete(
        f"{first.path}/members/{contributor.id}", headers=contributor.headers
    )
    assert left.status_code == 204, left.text
    assert len(await shared_findings(client, first.facilitator, first)) == 1
    await _refused(client, contributor, finding["id"], second)


async def test_the_problem_is_documented(client):
    response = await client.get(LINKABLE)
    assert response.status_code == 200, response.text
    assert "in common" in response.text


async def test_three_groups_are_counted_together(client, make_group, new_brand):
    """Each pair of groups has four tenants in common, but only the contributor and one rival are
    in all three: a reader of all three would have a single suspect."""
    x, p, q, r, s, t, v, w = [await new_brand() for _ in range(8)]
    a, b, c = [await make_group(members=0, observer=False) for _ in range(3)]
    await join_all(client, a, [x, p, q, r, s, v])
    await join_all(client, b, [x, p, q, r, t, w])
    await join_all(client, c, [x, p, s, v, t, w])
    supplier = await new_supplier(client, x)
    finding = await record(client, x, supplier["id"])
    await share(client, x, finding["id"], a)
    await _accepted(client, x, finding["id"], b)  # a and b: x, p, q, r
    await _refused(client, x, finding["id"], c)  # a and c: x, p, s, v; b and c: x, p, t, w
    await join_all(client, c, [q, r])
    await _accepted(client, x, finding["id"], c)
