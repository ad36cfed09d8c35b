"""The insight tallies (migration 0005) follow every change to shared findings exactly.

Insights without a supplier filter are answered from per-cell tallies kept by a trigger. After
each kind of change a user can make (share, edit the source so the record moves cell, edit text
only, withdraw, delete the finding, leave the group, share the same finding into two groups,
share concurrently), the tallies equal a recount from the shared findings themselves, and the
insights answer what the recount implies.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Any

import asyncpg
import httpx
import pytest
import sqlalchemy as sa

from bench.generate import SHARED_COLUMNS, connect_kwargs
from tests.sharing.conftest import (
    SharingGroup,
    assert_tallies_exact,
    insights,
    join_all,
    new_supplier,
    record,
    record_and_share,
    share,
)


async def assert_exact(admin: asyncpg.Connection, *groups: SharingGroup) -> None:
    await assert_tallies_exact(admin, *(group.id for group in groups))


async def patch_finding(
    client: httpx.AsyncClient, actor: Any, finding_id: str, **fields: Any
) -> None:
    response = await client.patch(f"/v1/findings/{finding_id}", json=fields, headers=actor.headers)
    assert response.status_code == 200, response.text


async def total(client: httpx.AsyncClient, actor: Any, group: SharingGroup) -> dict[str, Any]:
    body: dict[str, Any] = (await insights(client, actor, group)).json()
    return body


async def test_every_change_to_a_shared_finding_keeps_the_tallies_exact(client, make_group, admin):
    group = await make_group(members=4)
    other = await make_group(members=4)
    a, b, c, d = group.members
    north = await new_supplier(client, a, linked=[b, c, d], country="CN")
    south = await new_supplier(client, b, linked=[a, c], country="VN")
    shares = {}
    for actor in (a, b, c):
        shares[actor.slug] = await record_and_share(client, actor, north["id"], group)
        await record_and_share(client, actor, south["id"], group, area="young_workers")
    await assert_exact(admin, group)
    assert (await total(client, d, group))["cells"][0]["contributors"] == "3+"

    # Moves cell: area, severity, quarter and kind change at once.
    moved = shares[a.slug]["finding_id"]
    await patch_finding(
        client, a, moved, area="health_and_safety", severity="critical", observed_on="2026-02-03"
    )
    await assert_exact(admin, group)
    await patch_finding(client, a, moved, kind="observation", severity=None)
    await assert_exact(admin, group)
    # Text only: the record stays in its cell.
    await patch_finding(client, a, moved, title="Fire exits locked during the night shift")
    await assert_exact(admin, group)

    # b's finding in a second group too: each group counts its own.
    twice = shares[b.slug]["finding_id"]
    await join_all(client, other, group.members)  # enough in common: not a linkable share
    await share(client, b, twice, other)
    await assert_exact(admin, group, other)

    # Withdraw c's share of north: north's working-hours cell falls to two contributors.
    withdrawn = shares[c.slug]
    response = await client.delete(
        f"/v1/findings/{withdrawn['finding_id']}/shares/{withdrawn['id']}", headers=c.headers
    )
    assert response.status_code == 204, response.text
    await assert_exact(admin, group)
    by_area = (await insights(client, d, group, ("area",))).json()
    assert "working_hours" not in {cell["key"]["area"] for cell in by_area["cells"]}

    # Delete b's finding: its share goes, and with it b's last finding in that cell.
    response = await client.delete(f"/v1/findings/{twice}", headers=b.headers)
    assert response.status_code == 204, response.text
    await assert_exact(admin, group, other)

    # A contributor that leaves keeps what it shared counted until it withdraws.
    response = await client.delete(f"{group.path}/members/{a.id}", headers=a.headers)
    assert response.status_code == 204, response.text
    await assert_exact(admin, group)
    young = (await insights(client, d, group, ("area",), area="young_workers")).json()
    assert young["cells"] == [
        {"key": {"area": "young_workers"}, "findings": 5, "suppliers": 5, "contributors": "3+"}
    ]


async def test_a_finding_shared_into_two_groups_is_counted_in_each(client, make_group, admin):
    first = await make_group(members=4)
    second = await make_group(members=4)
    brand = first.members[0]
    await join_all(client, second, first.members)
    supplier = await new_supplier(client, brand)
    finding = await record(client, brand, supplier["id"])
    await share(client, brand, finding["id"], first)
    await share(client, brand, finding["id"], second)
    await assert_exact(admin, first, second)
    await patch_finding(client, brand, finding["id"], area="working_hours", severity="minor")
    await patch_finding(client, brand, finding["id"], observed_on="2025-11-30")
    await assert_exact(admin, first, second)
    response = await client.delete(f"/v1/findings/{finding['id']}", headers=brand.headers)
    assert response.status_code == 204, response.text
    await assert_exact(admin, first, second)
    for group in (first, second):
        assert (
            await admin.fetchval(
                "SELECT count(*) FROM insight_tallies WHERE group_id = $1", group.id
            )
            == 0
        )


async def test_concurrent_shares_of_new_suppliers_are_all_counted(client, make_group, admin):
    """Every share numbers suppliers the group has not seen, at once, in the same cells."""
    group = await make_group(members=4)
    suppliers = [
        await new_supplier(client, group.members[0], linked=group.members[1:]) for _ in range(3)
    ]
    await asyncio.gather(
        *(
            record_and_share(client, actor, supplier["id"], group)
            for actor in group.members
            for supplier in suppliers
        )
    )
    await assert_exact(admin, group)
    body = (await total(client, group.facilitator, group))["cells"]
    assert body == [{"key": {}, "findings": 10, "suppliers": 5, "contributors": "3+"}]


async def test_the_rebuild_recounts_what_the_trigger_kept(client, make_group, admin):
    group = await make_group(members=4)
    a, b, c, _ = group.members
    supplier = await new_supplier(client, a, linked=[b, c])
    for actor in (a, b, c):
        await record_and_share(client, actor, supplier["id"], group, area="child_labour",
                               severity="zero_tolerance")  # fmt: skip
    before = (await insights(client, group.facilitator, group, ("area", "period"))).content
    kept = await admin.fetch(
        "SELECT * FROM insight_tallies WHERE group_id = $1 ORDER BY 2, 3, 4, 5, 6, 7", group.id
    )
    await admin.execute("SELECT insight_tallies_rebuild($1)", group.id)
    recounted = await admin.fetch(
        "SELECT * FROM insight_tallies WHERE group_id = $1 ORDER BY 2, 3, 4, 5, 6, 7", group.id
    )
    assert [dict(row) for row in recounted] == [dict(row) for row in kept]
    assert len(kept) == 3
    after = (await insights(client, group.facilitator, group, ("area", "period"))).content
    assert after == before


# ---- concurrent changes, interleaved on two connections -----------------------------------------

COLUMNS = ", ".join(SHARED_COLUMNS)
# Only fixed column names are joined in.
COPY_SHARED = (
    f"INSERT INTO shared_findings ({COLUMNS}) "  # noqa: S608
    f"SELECT {COLUMNS} FROM jsonb_populate_record(NULL::shared_findings, $1::jsonb)"
)


# Copies of a record in `$2` more cells: quarters of the 20th century.
SPREAD = (
    f"INSERT INTO shared_findings ({COLUMNS}) SELECT "  # noqa: S608
    + ", ".join(
        "(1900 + q / 4)::text || '-Q' || (q % 4 + 1)::text"
        if column == "observed_period"
        else f"f.{column}"
        for column in SHARED_COLUMNS
    )
    + " FROM jsonb_populate_record(NULL::shared_findings, $1::jsonb) f, "
    "generate_series(0, $2 - 1) q"
)
# Advisory locks this connection holds.
HELD = "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND pid = pg_backend_pid()"


async def _waits_for_a_lock(conn: asyncpg.Connection, watcher: asyncpg.Connection) -> bool:
    """Whether `conn`'s statement is waiting for a lock another transaction holds."""
    pid = conn.get_server_pid()
    for _ in range(100):
        waiting = await watcher.fetchval(
            "SELECT wait_event_type = 'Lock' FROM pg_stat_activity WHERE pid = $1", pid
        )
        if waiting:
            return True
        await asyncio.sleep(0.02)
    return False


@pytest.fixture
async def two_more(admin_url: Any) -> AsyncIterator[list[asyncpg.Connection]]:
    """Two more superuser connections: a second writer and a watcher."""
    conns = [await asyncpg.connect(**connect_kwargs(admin_url)) for _ in range(2)]
    try:
        yield conns
    finally:
        for conn in conns:
            await conn.close()


@pytest.fixture
async def lone_record(client, make_group, admin) -> tuple[SharingGroup, str, str]:
    """A group where one member shared one finding: its shared record's id and row as JSON."""
    group = await make_group(members=4)
    brand = group.members[0]
    supplier = await new_supplier(client, brand)
    shared = await record_and_share(client, brand, supplier["id"], group)
    row = await admin.fetchval(
        "SELECT to_jsonb(f) FROM shared_findings f WHERE id = $1", shared["shared_finding_id"]
    )
    return group, shared["shared_finding_id"], row


@pytest.mark.parametrize("removed_first", [True, False], ids=["removed-first", "added-first"])
@pytest.mark.parametrize("same_contributor", [True, False], ids=["same", "another"])
async def test_a_supplier_leaving_and_entering_a_cell_at_once_is_counted_exactly(
    lone_record, admin, two_more, removed_first, same_contributor
):
    """One transaction removes the supplier's last record in a cell while another adds one there
    (for the same contributor or another): whichever commits first, the supplier is in the cell's
    bits after both, and one finding is counted."""
    group, shared_id, row = lone_record
    if not same_contributor:
        row = json.dumps({**json.loads(row), "contributor": str(group.members[1].id)})
    other, watcher = two_more
    first, second = (admin, other) if removed_first else (other, admin)
    remove = ("DELETE FROM shared_findings WHERE id = $1", shared_id)
    add = (COPY_SHARED, row)
    first_change, second_change = (remove, add) if removed_first else (add, remove)

    first_tx = first.transaction()
    await first_tx.start()
    await first.execute(*first_change)
    second_tx = second.transaction()
    await second_tx.start()
    waiting = asyncio.ensure_future(second.execute(*second_change))
    # The second waits for the first (on the cell's lock, or on the same contributor's count).
    assert await _waits_for_a_lock(second, watcher)
    await first_tx.commit()
    await waiting
    await second_tx.commit()

    await assert_tallies_exact(admin, group.id)
    assert (
        await admin.fetchval("SELECT sum(n) FROM insight_tallies WHERE group_id = $1", group.id)
        == 1
    )


async def test_a_statement_over_many_cells_locks_the_group_once(lone_record, admin):
    """A hundred records in a hundred cells at once (as a tenant's records go when it is
    deleted) are counted exactly, under one lock on the group rather than a lock per cell."""
    group, _, row = lone_record
    async with admin.transaction():
        await admin.execute(SPREAD, row, 100)
        assert await admin.fetchval(HELD) == 1
    await assert_tallies_exact(admin, group.id)
    assert (
        await admin.fetchval("SELECT count(*) FROM insight_tallies WHERE group_id = $1", group.id)
        == 101
    )
    async with admin.transaction():
        await admin.execute(
            "DELETE FROM shared_findings WHERE group_id = $1 AND observed_period < '2000'",
            group.id,
        )
        assert await admin.fetchval(HELD) == 1
    await assert_tallies_exact(admin, group.id)


async def test_records_of_one_contributor_going_from_two_groups_at_once(client, make_group, admin):
    """As when a tenant is deleted: one statement removes its records from two groups (more
    cells than a statement locks one by one), under one lock per group."""
    first, second = await make_group(members=4), await make_group(members=4)
    brand = first.members[0]
    await join_all(client, second, first.members)
    supplier = await new_supplier(client, brand)
    for group in (first, second):
        shared = await record_and_share(client, brand, supplier["id"], group)
        row = await admin.fetchval(
            "SELECT to_jsonb(f) FROM shared_findings f WHERE id = $1", shared["shared_finding_id"]
        )
        await admin.execute(SPREAD, row, 40)  # 40 more cells in each group
    await assert_exact(admin, first, second)
    async with admin.transaction():
        await admin.execute("DELETE FROM shared_findings WHERE contributor = $1", brand.id)
        assert await admin.fetchval(HELD) == 2
    await assert_exact(admin, first, second)
    assert (
        await admin.fetchval(
            "SELECT count(*) FROM insight_tallies WHERE contributor = $1", brand.id
        )
        == 0
    )


async def test_a_record_moved_to_another_supplier_moves_its_bit(lone_record, admin):
    group, shared_id, _ = lone_record
    other = await admin.fetchval(
        "SELECT s.id FROM suppliers s, shared_findings f "
        "WHERE f.id = $1 AND s.id <> f.supplier_id LIMIT 1",
        shared_id,
    )
    await admin.execute(
        "UPDATE shared_findings SET supplier_id = $2 WHERE id = $1", shared_id, other
    )
    await assert_tallies_exact(admin, group.id)
    numbered = "SELECT count(*) FROM insight_suppliers WHERE group_id = $1"
    assert await admin.fetchval(numbered, group.id) == 2


async def test_a_deleted_group_takes_its_tallies_without_counting_down(lone_record, admin):
    group, _, _ = lone_record
    async with admin.transaction():
        await admin.execute("DELETE FROM working_groups WHERE id = $1", group.id)
        assert await admin.fetchval(HELD) == 0
    left = await admin.fetchval(
        "SELECT (SELECT count(*) FROM insight_tallies WHERE group_id = $1) "
        "+ (SELECT count(*) FROM insight_supplier_bits WHERE group_id = $1) "
        "+ (SELECT count(*) FROM insight_suppliers WHERE group_id = $1) "
        "+ (SELECT count(*) FROM insight_groups WHERE group_id = $1)",
        group.id,
    )
    assert left == 0


async def test_the_app_role_cannot_ask_for_finer_rounding(client, lone_record, database):
    """group_insights() rounds to 5 at least, whatever base its caller passes."""
    group, _, _ = lone_record
    for actor in group.members[1:3]:
        supplier = await new_supplier(client, actor)
        await record_and_share(client, actor, supplier["id"], group)
    async with database.transaction(group.members[3].id) as session:
        rows = (
            await session.execute(
                sa.text(
                    "SELECT findings, suppliers FROM group_insights(CAST(:g AS uuid), "
                    "ARRAY[]::text[], NULL, NULL, NULL, NULL, NULL, NULL, 1)"
                ),
                {"g": group.id},
            )
        ).all()
    assert [tuple(row) for row in rows] == [(5, 5)]  # 3 findings, 3 suppliers
