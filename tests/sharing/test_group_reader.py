"""`wg_group_reader(group)` (migration 0018) answers exactly what the three owner functions it
replaced on the read path answer together, for every kind of caller: the facilitator, members, an
observer, an outsider, a contributor that left, and the same group once below its threshold.

Since 0020 it answers from `group_readers`, which triggers keep: the row must follow every kind of
change it depends on (memberships, invitations, tenants' names and slugs, aliases, the threshold),
also when tenants join and leave at the same moment, and the list of shared findings (which reads
the row itself) must redact with it. Each change gives the row a larger version (0021), by which a
server knows that the names it kept for the group are old."""

from __future__ import annotations

import asyncio
from typing import Any

import asyncpg
import httpx
import sqlalchemy as sa

from tests.sharing.conftest import SharingGroup, new_supplier, record_and_share
from tests.working_groups.conftest import invite, join
from wg_api.platform.database import Database

_THREE = sa.text(
    "SELECT wg_group_role(:g) AS role, coalesce(wg_group_below_threshold(:g), false) AS below, "
    "ARRAY(SELECT term FROM shared_finding_scrub_names(:g) n, "
    "unnest(ARRAY[n.name, n.slug] || n.aliases) AS term) AS names"
)
_ONE = sa.text("SELECT role, below, names FROM wg_group_reader(:g)")


async def _both(database: Database, tenant_id: Any, group_id: str) -> tuple[Any, Any]:
    async with database.transaction(tenant_id) as connection:
        three = (await connection.execute(_THREE, {"g": group_id})).one()
        one = (await connection.execute(_ONE, {"g": group_id})).one()
    return (three.role, three.below, sorted(set(three.names))), (
        one.role,
        one.below,
        sorted(set(one.names)),
    )


async def test_the_reader_is_the_three_functions_for_every_caller(
    client: httpx.AsyncClient, make_group: Any, new_brand: Any, database: Database
) -> None:
    group = await make_group(members=3, threshold=3)
    invitee = await new_brand()  # invited, not yet in: its names are redacted, it reads nothing
    await invite(client, group.facilitator, group.id, invitee, "member")
    leaver, stayer = group.members[0], group.members[1]
    # An alias, so that the names carry aliases too.
    aliased = await client.patch(
        "/v1/tenant", json={"aliases": ["Kestrel Kids"]}, headers=stayer.headers
    )
    assert aliased.status_code == 200, aliased.text
    supplier = await new_supplier(client, leaver)
    await record_and_share(client, leaver, supplier["id"], group)
    callers = [*group.readers, invitee, group.outsider]
    seen = []
    for actor in callers:
        three, one = await _both(database, actor.id, group.id)
        assert one == three, actor
        seen.append(one)
    assert {role for role, _, _ in seen} == {"facilitator", "member", "observer", None}
    assert all(names for role, _, names in seen if role is not None)
    assert any("Kestrel Kids" in names and invitee.slug in names for _, _, names in seen)
    assert seen[-1] == (None, False, [])  # the outsider
    # The contributor leaves and another member is removed: the group falls below its threshold
    # (the facilitator and one member share there, of 3).
    left = await client.delete(f"{group.path}/members/{leaver.id}", headers=leaver.headers)
    assert left.status_code == 204, left.text
    for actor in [*callers, leaver]:  # at the threshold exactly: not below
        three, one = await _both(database, actor.id, group.id)
        assert one == three, actor
    removed = await client.delete(
        f"{group.path}/members/{group.members[2].id}", headers=group.facilitator.headers
    )
    assert removed.status_code == 204, removed.text
    for actor in [*callers, leaver]:
        three, one = await _both(database, actor.id, group.id)
        assert one == three, actor
    assert (await _both(database, stayer.id, group.id))[1][:2] == ("member", True)
    # The contributor that left still learns the threshold (it has shared there), nothing else.
    assert (await _both(database, leaver.id, group.id))[1] == (None, True, [])
    # No tenant bound at all: nothing.
    assert (await _both(database, None, group.id))[1] == (None, False, [])


async def _assert_follows(database: Database, group: SharingGroup) -> tuple[Any, bool, list[str]]:
    """The facilitator's reader row equals the live functions' answer; returns it."""
    three, one = await _both(database, group.facilitator.id, group.id)
    assert one == three
    role, below, names = one
    return role, below, names


async def test_the_readers_row_follows_every_change(
    client: httpx.AsyncClient,
    make_group: Any,
    new_brand: Any,
    database: Database,
    admin: asyncpg.Connection,
) -> None:
    group = await make_group(members=2, threshold=3)
    versions: list[int] = []

    async def follows() -> tuple[Any, bool, list[str]]:
        """The row equals the live answer, and its version (0021) grew with the change: a server
        that kept the names of an older version reads them again."""
        answer = await _assert_follows(database, group)
        versions.append(
            await admin.fetchval("SELECT version FROM group_readers WHERE group_id = $1", group.id)
        )
        assert versions == sorted(set(versions)), versions
        return answer

    _, below, names = await follows()
    assert below is False
    renamed = group.members[0]
    # A tenant renamed (and its slug changed): the old name is no longer redacted, the new one is.
    await admin.execute(
        "UPDATE tenants SET name = 'Osprey Outfitters', slug = 'osprey-outfitters' WHERE id = $1",
        renamed.id,
    )
    _, _, names = await follows()
    assert "Osprey Outfitters" in names
    assert "osprey-outfitters" in names
    assert renamed.slug not in names
    # An alias added, then taken away.
    for aliases in (["Osprey Kids"], []):
        changed = await client.patch(
            "/v1/tenant", json={"aliases": aliases}, headers=renamed.headers
        )
        assert changed.status_code == 200, changed.text
        _, _, names = await follows()
        assert ("Osprey Kids" in names) is bool(aliases)
    # An invitation sent (its tenant's names are redacted while it is pending), then declined.
    invitee = await new_brand()
    invitation = await invite(client, group.facilitator, group.id, invitee, "member")
    assert invitee.slug in (await follows())[2]
    declined = await client.post(
        f"/v1/invitations/{invitation['id']}/decline", headers=invitee.headers
    )
    assert declined.status_code == 200, declined.text
    assert invitee.slug not in (await follows())[2]
    # A member made an observer: two sharing tenants of three, below the threshold.
    demoted = await client.patch(
        f"/v1/working-groups/{group.id}/members/{group.members[1].id}",
        json={"role": "observer"},
        headers=group.facilitator.headers,
    )
    assert demoted.status_code == 200, demoted.text
    assert (await follows())[1] is True
    # The threshold lowered is refused below 3; a new member brings the group back up to it.
    joiner = await new_brand()
    await join(client, group.facilitator, group.id, joiner, "member")
    assert (await follows())[1] is False
    raised = await client.patch(
        f"/v1/working-groups/{group.id}",
        json={"anonymity_threshold": 4},
        headers=group.facilitator.headers,
    )
    assert raised.status_code == 200, raised.text
    assert (await follows())[1] is True
    # A tenant deleted altogether: its memberships go, and its names with them.
    await admin.execute("DELETE FROM tenants WHERE id = $1", joiner.id)
    _, below, names = await follows()
    assert joiner.slug not in names
    assert below is True
    assert len(versions) == 10
    # Every group has its row, and no row outlives its group.
    assert await admin.fetchval(
        "SELECT (SELECT count(*) FROM working_groups) = (SELECT count(*) FROM group_readers)"
    )


async def test_the_row_holds_when_tenants_join_and_leave_at_once(
    client: httpx.AsyncClient, make_group: Any, new_brand: Any, database: Database
) -> None:
    group = await make_group(members=3, threshold=3)
    joiners = [await new_brand() for _ in range(6)]
    leaving = group.members

    async def leave(actor: Any) -> None:
        left = await client.delete(f"{group.path}/members/{actor.id}", headers=actor.headers)
        assert left.status_code == 204, left.text

    await asyncio.gather(
        *(join(client, group.facilitator, group.id, a, "member") for a in joiners),
        *(leave(a) for a in leaving),
    )
    _, below, names = await _assert_follows(database, group)
    assert below is False
    assert {a.slug for a in [*joiners, *leaving]} <= set(names)  # former members stay redacted
