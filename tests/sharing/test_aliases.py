"""A tenant's aliases are scrubbed from what is shared in every group it is in, like its name."""

from __future__ import annotations

import random
from typing import Any

import sqlalchemy as sa

from tests.conftest import superuser_transaction
from tests.sharing.conftest import feed, new_supplier, record_and_share, shared_findings
from tests.working_groups.conftest import join
from wg_api.platform.database import Database
from wg_api.sharing.aliases import may_mention

CHINESE_NAME = "凯斯特服装"
REDACTED = "[redacted:organisation]"


def code_name() -> str:
    """An upper-case abbreviation like "KAL" that no other tenant of the test database holds."""
    return "K" + "".join(random.choices("BCDFGHJKLMNPQRSTVWXZ", k=4))


async def set_aliases(client: Any, actor: Any, aliases: list[str]) -> None:
    response = await client.patch("/v1/tenant", json={"aliases": aliases}, headers=actor.headers)
    assert response.status_code == 200, response.text
    assert response.json()["aliases"] == aliases


async def seen_by(client: Any, reader: Any, group: Any, shared_id: str) -> dict[str, Any]:
    items = await shared_findings(client, reader, group)
    [item] = [i for i in items if i["id"] == shared_id]
    single = await client.get(f"{group.path}/shared-findings/{shared_id}", headers=reader.headers)
    assert single.json() == item
    return item


async def stored_description(database: Database, shared_id: str) -> str:
    async with superuser_transaction(database) as session:
        text = await session.scalar(
            sa.text("SELECT description FROM shared_findings WHERE id = :id"), {"id": shared_id}
        )
    assert isinstance(text, str)
    return text


async def test_an_alias_written_by_another_member_is_scrubbed_when_shared(
    client, make_group, database
):
    group = await make_group()
    named, writer = group.members[0], group.members[1]
    abbreviation = code_name()
    await set_aliases(client, named, [CHINESE_NAME, abbreviation])
    supplier = await new_supplier(client, writer)
    shared = await record_and_share(
        client,
        writer,
        supplier["id"],
        group,
        title=f"Joint visit with {abbreviation} planned",
        description=(
            f"{CHINESE_NAME}的审核团队 and the {abbreviation.lower()} team saw 72-hour weeks."
        ),
    )
    expected = f"{REDACTED}的审核团队 and the {REDACTED} team saw 72-hour weeks."
    # Scrubbed when shared: the stored record, and so every event and reader, never held it.
    assert await stored_description(database, shared["shared_finding_id"]) == expected
    for reader in group.readers:
        item = await seen_by(client, reader, group, shared["shared_finding_id"])
        assert item["description"] == expected
        assert item["title"] == f"Joint visit with {REDACTED} planned"
    published = (await feed(client, named)).json()["items"][-1]["data"]
    assert published["description"] == expected


async def test_a_record_shared_before_the_alias_was_set_is_redacted_when_read(
    client, make_group, database
):
    group = await make_group()
    named, writer = group.members[0], group.members[1]
    abbreviation = code_name()
    supplier = await new_supplier(client, writer)
    shared = await record_and_share(
        client,
        writer,
        supplier["id"],
        group,
        description=f"Audit with {abbreviation} ({CHINESE_NAME[:3]}童装) staff on site.",
    )
    written = f"Audit with {abbreviation} ({CHINESE_NAME[:3]}童装) staff on site."
    reader = group.members[2]
    assert (await seen_by(client, reader, group, shared["shared_finding_id"]))["description"] == (
        written
    )

    await set_aliases(client, named, [abbreviation, f"{CHINESE_NAME[:3]}童装"])

    for reader in group.readers:
        item = await seen_by(client, reader, group, shared["shared_finding_id"])
        assert item["description"] == f"Audit with {REDACTED} ({REDACTED}) staff on site."
    # The writer's record itself is not rebuilt by another tenant's change: read time covers it.
    assert await stored_description(database, shared["shared_finding_id"]) == written


async def test_adding_an_alias_rescrubs_the_tenants_own_active_shares(client, make_group, database):
    group = await make_group()
    contributor, reader = group.members[0], group.members[1]
    abbreviation = code_name()
    written = f"The {abbreviation} sourcing team found 72-hour weeks."
    supplier = await new_supplier(client, contributor)
    shared = await record_and_share(client, contributor, supplier["id"], group, description=written)
    shared_id = shared["shared_finding_id"]
    assert await stored_description(database, shared_id) == written
    before = len((await feed(client, reader)).json()["items"])

    await set_aliases(client, contributor, [abbreviation])

    scrubbed = f"The {REDACTED} sourcing team found 72-hour weeks."
    assert await stored_description(database, shared_id) == scrubbed
    events = (await feed(client, reader, at_least=before + 1)).json()["items"]
    assert events[-1]["type"] == "shared_finding.updated"
    assert events[-1]["data"]["id"] == shared_id
    assert events[-1]["data"]["description"] == scrubbed
    assert (await seen_by(client, reader, group, shared_id))["description"] == scrubbed

    # Dropping the alias rebuilds the record from the finding again.
    await set_aliases(client, contributor, [])
    assert await stored_description(database, shared_id) == written


async def test_a_contributors_own_alias_is_scrubbed_from_its_shares(client, make_group, database):
    group = await make_group()
    contributor = group.members[0]
    abbreviation = code_name()
    await set_aliases(client, contributor, [abbreviation])
    supplier = await new_supplier(client, contributor)
    shared = await record_and_share(
        client, contributor, supplier["id"], group, description=f"{abbreviation} buys here."
    )
    assert (
        await stored_description(database, shared["shared_finding_id"]) == f"{REDACTED} buys here."
    )


async def test_the_scrub_names_answer_only_an_active_member(
    client, make_group, new_brand, database
):
    group = await make_group()
    named, leaver, removed = group.members[0], group.members[1], group.members[2]
    abbreviation = code_name()
    await set_aliases(client, named, [abbreviation])
    left = await client.delete(f"{group.path}/members/{leaver.id}", headers=leaver.headers)
    assert left.status_code == 204, left.text
    gone = await client.delete(
        f"{group.path}/members/{removed.id}", headers=group.facilitator.headers
    )
    assert gone.status_code == 204, gone.text
    # A tenant joins after they are gone: they must not learn of it.
    late = await new_brand()
    await join(client, group.facilitator, group.id, late, "member")

    member_view = await names_for(database, group.members[3], group.id)
    assert member_view[named.slug] == [abbreviation]
    assert late.slug in member_view
    assert leaver.slug in member_view  # former members' names are still scrubbed
    assert await names_for(database, leaver, group.id) == {}
    assert await names_for(database, removed, group.id) == {}
    assert await names_for(database, group.outsider, group.id) == {}
    # What their own shares there are scrubbed of: who was in the group while they were.
    for former in (leaver, removed):
        theirs = await names_for(database, former, group.id, "shared_finding_contributor_names")
        assert theirs[named.slug] == [abbreviation]
        assert late.slug not in theirs
    assert (
        await names_for(database, group.members[3], group.id, "shared_finding_contributor_names")
        == member_view
    )
    assert (
        await names_for(database, group.outsider, group.id, "shared_finding_contributor_names")
        == {}
    )


async def test_a_change_after_leaving_reaches_the_others_scrubbed(client, make_group, database):
    group = await make_group()
    leaver, named, reader = group.members[0], group.members[3], group.members[1]
    abbreviation = code_name()
    await set_aliases(client, named, [abbreviation])
    supplier = await new_supplier(client, leaver)
    shared = await record_and_share(client, leaver, supplier["id"], group)
    left = await client.delete(f"{group.path}/members/{leaver.id}", headers=leaver.headers)
    assert left.status_code == 204, left.text
    before = len((await feed(client, reader)).json()["items"])

    changed = await client.patch(
        f"/v1/findings/{shared['finding_id']}",
        json={"description": f"{named.name} ({abbreviation}) buys here too."},
        headers=leaver.headers,
    )
    assert changed.status_code == 200, changed.text
    scrubbed = f"{REDACTED} ({REDACTED}) buys here too."
    event = (await feed(client, reader, at_least=before + 1)).json()["items"][-1]
    assert (event["type"], event["data"]["description"]) == ("shared_finding.updated", scrubbed)
    assert await stored_description(database, shared["shared_finding_id"]) == scrubbed


async def names_for(
    database: Database, actor: Any, group_id: str, function: str = "shared_finding_scrub_names"
) -> dict[str, list[str]]:
    async with database.transaction(actor.id) as session:
        rows = await session.execute(
            sa.text(f"SELECT slug, aliases FROM {function}(:g)"),  # noqa: S608
            {"g": group_id},
        )
        return {row.slug: list(row.aliases) for row in rows}


def test_only_findings_that_may_mention_a_changed_alias_are_rebuilt():
    """The re-scrub's pre-test never skips a text the scrubber would change."""
    assert may_mention("The K\u200bZZQ team came", ["KZZQ"])
    assert may_mention("The \uff2b\uff3a\uff3a\uff31 team came", ["kzzq"])
    assert may_mention("凯斯特的审核团队", [CHINESE_NAME])  # a part of the Chinese name
    assert may_mention("Kestrel staff on site", ["Kestrel Kids"])  # a distinctive word alone
    assert may_mention("brand-a-kids visited", ["Brand A Kids"])
    assert may_mention("we met ab there", ["AB C"])
    assert not may_mention("Sewing line workers averaged 72 hours a week.", ["KZZQ", CHINESE_NAME])
    assert not may_mention("Kestrel staff on site", [])
