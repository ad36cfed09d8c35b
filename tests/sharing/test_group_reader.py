"""`wg_group_reader(group)` (migration 0018) answers exactly what the three owner functions it
replaced on the read path answer together, for every kind of caller: the facilitator, members, an
observer, an outsider, a contributor that left, and the same group once below its threshold."""

from __future__ import annotations

from typing import Any

import httpx
import sqlalchemy as sa

from tests.sharing.conftest import new_supplier, record_and_share
from tests.working_groups.conftest import invite
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
    return (three.role, three.below, sorted(three.names)), (one.role, one.below, sorted(one.names))


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
