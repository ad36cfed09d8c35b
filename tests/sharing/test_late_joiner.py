"""A tenant that joins after a finding was shared never reads its own name in that finding."""

from tests.sharing.conftest import new_supplier, record_and_share, shared_findings
from tests.working_groups.conftest import join


async def test_a_name_written_before_its_tenant_joined_is_redacted_for_every_reader(
    client, make_group, new_brand
):
    group = await make_group(members=3, observer=False)
    contributor = group.members[0]
    late = await new_brand()
    supplier = await new_supplier(client, contributor)
    shared = await record_and_share(
        client,
        contributor,
        supplier["id"],
        group,
        title=f"Joint visit planned with {late.name}",
        description=f"{late.name} ({late.slug}) buys here too.",
    )

    # Before it is invited, its name is nobody's to redact; the list and the single read read
    # the group's names (and this server keeps them) ...
    one = f"{group.path}/shared-findings/{shared['shared_finding_id']}"
    before = await shared_findings(client, group.members[1], group)
    item = next(i for i in before if i["id"] == shared["shared_finding_id"])
    assert item["title"] == f"Joint visit planned with {late.name}"
    single = await client.get(one, headers=group.members[1].headers)
    assert single.json()["title"] == f"Joint visit planned with {late.name}"

    await join(client, group.facilitator, group.id, late, "member")

    # ... and read them again once they changed: the single read first, then the list.
    for reader in [late, *group.members[1:], group.facilitator]:
        single = await client.get(one, headers=reader.headers)
        assert single.status_code == 200, single.text
        assert late.name not in single.text
        assert late.slug not in single.text
        assert "[redacted:organisation]" in single.json()["title"]
        items = await shared_findings(client, reader, group)
        item = next(i for i in items if i["id"] == shared["shared_finding_id"])
        assert late.name not in item["title"]
        assert late.name not in item["description"]
        assert late.slug not in item["description"]
        assert "[redacted:organisation]" in item["title"]
