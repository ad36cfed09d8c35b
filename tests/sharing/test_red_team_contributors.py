"""Red team: telling contributors apart. Two brands share the same kind of finding about the same
factory; the group must not be able to tell whose is whose by id, by order or by any field, and
`is_own` is true only in the contributor's own view.
"""

from __future__ import annotations

import uuid
from typing import Any

from tests.sharing.conftest import (
    Actor,
    new_supplier,
    record,
    record_and_share,
    share,
    shared_findings,
)


def _private(actor: Actor, reference: str) -> dict[str, Any]:
    """What differs between two brands' findings, none of which may reach the group."""
    return {
        "external_id": f"ERP-{reference}",
        "title": f"Overtime above the legal limit, found by {actor.name}",
        "description": f"{actor.name} audit team; write to audit@{actor.slug}.example.com",
        "source": {"scheme": "amfori_bsci", "reference": f"BSCI-{reference}"},
        "affected_workers": 12 if reference.endswith("1") else 44,
        "observed_on": "2026-07-02" if reference.endswith("1") else "2026-09-28",
        "cap": {
            "planned_actions": "Cap overtime at 60 hours",
            "due_on": "2027-03-01",
            "contact": f"Contact {reference}",
        },
    }


async def test_two_contributors_findings_differ_only_by_a_random_id(client, make_group):
    group = await make_group()
    first, second = group.members[0], group.members[3]
    supplier = await new_supplier(client, first, linked=[second])
    for actor, reference in ((first, "A-1"), (second, "B-2")):
        finding = await record(client, actor, supplier["id"], **_private(actor, reference))
        await share(client, actor, finding["id"], group)

    for reader in group.others(first):
        if reader.id == second.id:
            continue
        items = await shared_findings(client, reader, group)
        assert len(items) == 2
        ids = [uuid.UUID(item["id"]) for item in items]
        assert [u.version for u in ids] == [4, 4]
        assert [u.variant for u in ids] == [uuid.RFC_4122] * 2
        rest = [{k: v for k, v in item.items() if k != "id"} for item in items]
        assert rest[0] == rest[1]
        assert (
            rest[0]["title"] == "Overtime above the legal limit, found by [redacted:organisation]"
        )
        assert rest[0]["affected_workers_band"] == "11-50"
        assert rest[0]["observed_period"] == "2026-Q3"
        assert rest[0]["is_own"] is False


async def test_list_order_follows_supplier_and_period_never_sharing_order(client, make_group):
    group = await make_group()
    a, b, c, d = group.members
    zelkova = await new_supplier(client, a, name=f"Zelkova Knitwear {uuid.uuid4().hex[:8]}")
    alder = await new_supplier(client, b, name=f"Alder Footwear {uuid.uuid4().hex[:8]}")
    maple = await new_supplier(client, c, name=f"Maple Toys {uuid.uuid4().hex[:8]}", linked=[d])
    # Shared in an order that is neither by supplier nor by period.
    shares = [
        (a, zelkova, "2026-05-10"),
        (c, maple, "2026-02-03"),
        (b, alder, "2025-11-20"),
        (d, maple, "2026-08-30"),
    ]
    for actor, supplier, observed_on in shares:
        await record_and_share(client, actor, supplier["id"], group, observed_on=observed_on)

    expected = [
        (alder["id"], "2025-Q4"),
        (maple["id"], "2026-Q3"),
        (maple["id"], "2026-Q1"),
        (zelkova["id"], "2026-Q2"),
    ]
    for reader in group.readers:
        whole = await shared_findings(client, reader, group)
        assert [(i["supplier"]["id"], i["observed_period"]) for i in whole] == expected
        paged = await shared_findings(client, reader, group, limit=1)
        assert [i["id"] for i in paged] == [i["id"] for i in whole]


async def test_is_own_is_true_only_in_the_contributors_view(client, make_group):
    group = await make_group()
    contributor, other = group.members[2], group.members[0]
    supplier = await new_supplier(client, contributor, linked=[other])
    mine = await record_and_share(client, contributor, supplier["id"], group)
    theirs = await record_and_share(client, other, supplier["id"], group)

    for reader in group.readers:
        items = {i["id"]: i["is_own"] for i in await shared_findings(client, reader, group)}
        assert items == {
            mine["shared_finding_id"]: reader.id == contributor.id,
            theirs["shared_finding_id"]: reader.id == other.id,
        }
        for shared_id, own in items.items():
            one = await client.get(
                f"{group.path}/shared-findings/{shared_id}", headers=reader.headers
            )
            assert one.status_code == 200, one.text
            assert one.json()["is_own"] is own
