"""Red team: insights against an attacker who uses bounds, not equalities.

A member queries every grouping (each of the 32 subsets of the five dimensions) with no filter,
with every single-value filter and with every supplier, then combines the published rounded
counts (tests/sharing/bounds.py): a published parent minus its published sub-cells, a filtered
answer against the unfiltered one, a suppressed cell against its published sub-cells. For every
suppressed cell, no such subtraction may leave fewer possible counts than the rounding base,
which is exactly what a published cell's own rounding leaves (5 for base 5).

The first scene is built through HTTP, as members share; the others are random scenes written
straight into `shared_findings` (the insight tallies follow them by their trigger) and read
through `group_insights()` as the app calls it, for breadth.
"""

from __future__ import annotations

import collections
import dataclasses
import itertools
import json
import random
from collections.abc import Awaitable, Callable
from typing import Any

import asyncpg
import httpx
import pytest
import sqlalchemy as sa

from bench.generate import SHARED_COLUMNS, connect_kwargs
from tests.sharing.bounds import DIMENSIONS, Key, Lattice, attack, describe, items, report
from tests.sharing.conftest import (
    SharingGroup,
    groupings,
    insights,
    new_supplier,
    record_and_share,
)

BASE = 5
THRESHOLD = 3
OBSERVED_ON = {
    "2025-Q4": "2025-11-10",
    "2026-Q1": "2026-02-10",
    "2026-Q2": "2026-05-10",
    "2026-Q3": "2026-08-10",
}
# The relations every answer must withstand: along the five dimensions (every grouping against
# a coarser one, every filter against none) and, within one supplier's answers, the same.
DIMENSION_RELATIONS = set(DIMENSIONS)


@dataclasses.dataclass(frozen=True)
class Shared:
    contributor: str
    supplier: str
    values: tuple[tuple[str, str | None], ...]  # the five dimensions


def truth(shared: list[Shared]) -> dict[Key, int]:
    """Every non-empty lattice cell (with and without supplier) and its true count."""
    counts: collections.Counter[Key] = collections.Counter()
    for item in shared:
        values = dict(item.values)
        for size in range(len(DIMENSIONS) + 1):
            for dims in itertools.combinations(DIMENSIONS, size):
                fixed = items({dim: values[dim] for dim in dims})
                counts[(None, fixed)] += 1
                counts[(item.supplier, fixed)] += 1
    return dict(counts)


Query = Callable[[tuple[str, ...], dict[str, str]], Awaitable[tuple[list[dict[str, Any]], int]]]


async def observe(
    query: Query, shared: list[Shared], suppliers: list[str], *, every_filter: bool = True
) -> Lattice:
    """Every grouping with no filter, with every supplier and (if asked) with every single
    value of every dimension; each answer checked against the cells that exist."""
    lattice = Lattice(base=BASE, threshold=THRESHOLD)
    exists = truth(shared)
    filters: list[dict[str, str]] = [{}]
    filters += [{"supplier_id": supplier} for supplier in suppliers]
    if every_filter:
        values = sorted({(d, v) for item in shared for d, v in item.values if v is not None})
        filters += [{dim: value} for dim, value in values]
    for dims in groupings():
        for given in filters:
            cells, suppressed = await query(dims, given)
            supplier = given.get("supplier_id")
            fixed = {d: v for d, v in given.items() if d != "supplier_id"}
            published = set()
            for cell in cells:
                key: Key = (supplier, items({**fixed, **cell["key"]}))
                assert key in exists, (dims, given, cell)
                published.add(key)
                lattice.see_published(key, cell["findings"])
            level = set(dims) | set(fixed)
            hidden = [
                key
                for key in exists
                if key[0] == supplier
                and {d for d, _ in key[1]} == level
                and all(dict(key[1])[d] == v for d, v in fixed.items())
                and key not in published
            ]
            assert len(hidden) == suppressed, (dims, given, cells, suppressed)
            for key in hidden:
                lattice.see_suppressed(key)
    return lattice


def failures(lattice: Lattice, counts: dict[Key, int]) -> str:
    """What the one-level attack finds (empty when nothing is bounded tighter than the base),
    and answers that contradict each other."""
    narrow = attack(lattice, along=DIMENSION_RELATIONS).narrower_than(BASE)
    lines = [*lattice.inconsistent]
    if narrow:
        lines.append(f"{len(narrow)} one-level intervals narrower than {BASE}:")
        lines.append(report(narrow, counts))
    return "\n".join(lines)


def summary(lattice: Lattice, counts: dict[Key, int]) -> str:
    """Beyond the guarantee, printed for the record: intervals along the supplier (the same
    cell of every supplier against the whole group's) and intersections of several relations."""
    everything = attack(lattice)
    across = everything.narrower_than(BASE, along={"supplier"})
    joined = everything.intersections_narrower_than(BASE)
    group_wide = [key for key in joined if key[0] is None]
    lines = [
        f"{len(lattice.published)} published, {len(lattice.suppressed)} suppressed cells",
        f"one-level along dimensions narrower than {BASE}: "
        f"{len(everything.narrower_than(BASE, along=DIMENSION_RELATIONS))}",
        f"one-level along suppliers narrower than {BASE}: {len(across)}",
        f"intersections narrower than {BASE}: {len(joined)} "
        f"({len(group_wide)} of the whole group, {len(joined) - len(group_wide)} of a supplier)",
        report(across, counts, limit=3),
    ]
    for key, (lo, hi) in sorted(joined.items(), key=lambda kv: (kv[0][0] is not None, str(kv)))[:3]:
        lines.append(f"intersection: {describe(key)} in [{lo}, {hi}], true {counts[key]}")
    return "\n".join(lines)


# ---- through HTTP ------------------------------------------------------------------------------


@dataclasses.dataclass
class Scene:
    group: SharingGroup
    shared: list[Shared]
    suppliers: dict[str, dict[str, Any]]


async def _share(
    client: httpx.AsyncClient,
    scene: Scene,
    actor: Any,
    supplier: str,
    times: int,
    *,
    area: str,
    period: str,
    severity: str | None,
    kind: str = "non_compliance",
) -> None:
    body = {"area": area, "kind": kind, "severity": severity, "observed_on": OBSERVED_ON[period]}
    found = scene.suppliers[supplier]
    for _ in range(times):
        await record_and_share(client, actor, found["id"], scene.group, **body)
        values = {
            "area": area,
            "country": found["country"],
            "period": period,
            "severity": severity,
            "kind": kind,
        }
        scene.shared.append(Shared(actor.slug, found["id"], items(values)))


@pytest.fixture(scope="module")
async def scene(client: httpx.AsyncClient, make_group: Any) -> Scene:
    group = await make_group(members=4)
    a, b, c, d = group.members
    suppliers = {
        "dongguan": await new_supplier(client, a, linked=[b, c, d], country="CN"),
        "hanoi": await new_supplier(client, a, linked=[b, c, d], country="VN"),
    }
    scene = Scene(group=group, shared=[], suppliers=suppliers)
    # Three brands, one finding each: published (3, shown as 5).
    for actor in (a, b, c):
        await _share(
            client,
            scene,
            actor,
            "dongguan",
            1,
            area="working_hours",
            period="2026-Q3",
            severity="major",
        )
    # One brand's child-labour finding in the same quarter: suppressed. Today the quarter's
    # total (4, shown as 5) minus working hours (3, shown as 5) bounds it to [1, 4].
    await _share(
        client,
        scene,
        a,
        "dongguan",
        1,
        area="child_labour",
        period="2026-Q3",
        severity="zero_tolerance",
    )
    # Four brands, one young-workers observation each, one per quarter: the area is published
    # (4, shown as 5), each quarter is suppressed, and four of them under a total of at most 7
    # are each at most 4.
    for actor, period in zip((a, b, c, d), OBSERVED_ON, strict=True):
        await _share(
            client,
            scene,
            actor,
            "hanoi",
            1,
            area="young_workers",
            period=period,
            severity=None,
            kind="observation",
        )
    # A dominated cell: 12 of 14 findings are one brand's.
    for actor, times in ((a, 12), (b, 1), (c, 1)):
        await _share(
            client,
            scene,
            actor,
            "hanoi",
            times,
            area="fair_remuneration",
            period="2026-Q1",
            severity="minor",
        )
    # A published cell of several brands next to it.
    for actor, times in ((a, 2), (b, 2), (c, 2), (d, 1)):
        await _share(
            client,
            scene,
            actor,
            "dongguan",
            times,
            area="health_and_safety",
            period="2026-Q2",
            severity="critical",
        )
    return scene


async def _observe_http(client: httpx.AsyncClient, scene: Scene) -> Lattice:
    reader = scene.group.facilitator

    async def query(dims: tuple[str, ...], given: dict[str, str]) -> tuple[list[Any], int]:
        body = (await insights(client, reader, scene.group, dims, **given)).json()
        return body["cells"], body["suppressed_cells"]

    suppliers = [s["id"] for s in scene.suppliers.values()]
    return await observe(query, scene.shared, suppliers)


async def test_no_subtraction_bounds_a_suppressed_cell_tighter_than_the_base(client, scene):
    lattice = await _observe_http(client, scene)
    counts = truth(scene.shared)
    assert lattice.suppressed, "the scene must have suppressed cells"
    assert lattice.published, "the scene must have published cells"
    print(summary(lattice, counts))
    assert failures(lattice, counts) == ""


async def test_what_is_safe_stays_published(client, scene):
    """Protection hides what subtraction would pin, not everything: the group total, and the
    areas whose cells stand alone (working hours: 3 findings; health and safety: 7)."""
    reader = scene.group.facilitator
    total = (await insights(client, reader, scene.group)).json()
    assert [cell["findings"] for cell in total["cells"]] == [30]  # 29 findings
    by_area = (await insights(client, reader, scene.group, ("area",))).json()
    published = {cell["key"]["area"]: cell["findings"] for cell in by_area["cells"]}
    assert published == {"health_and_safety": 5, "working_hours": 5}
    # Child labour (one brand), fair remuneration (dominated) and young workers: four brands,
    # but one finding per quarter, so each quarter would be bounded to [1, 4] by the area's 5.
    assert by_area["suppressed_cells"] == 3
    q3 = (await insights(client, reader, scene.group, ("area",), period="2026-Q3")).json()
    # The quarter's working hours (3) beside one child-labour finding: today's answer showed
    # the quarter (4, as 5) and its working hours (3, as 5), bounding child labour to [1, 4].
    assert q3["cells"] == [
        {"key": {"area": "working_hours"}, "findings": 5, "suppliers": 5, "contributors": "3+"}
    ]
    quarter = (await insights(client, reader, scene.group, period="2026-Q3")).json()
    assert quarter["cells"] == []
    assert quarter["suppressed_cells"] == 1


# ---- random scenes, straight into the database ---------------------------------------------------

AREAS = ("working_hours", "child_labour", "health_and_safety")
COUNTRIES = ("CN", "VN")
PERIODS = ("2026-Q1", "2026-Q2", "2026-Q3")
SEVERITIES = ("major", "critical")
COLUMNS = ", ".join(SHARED_COLUMNS)
# Only fixed column names are joined in.
INSERT = (
    f"INSERT INTO shared_findings ({COLUMNS}) "  # noqa: S608
    f"SELECT {COLUMNS} FROM jsonb_populate_recordset(NULL::shared_findings, $1::jsonb)"
)
INSIGHTS = sa.text(
    "SELECT cell, findings FROM group_insights(CAST(:group_id AS uuid), CAST(:dims AS text[]), "
    "CAST(:supplier AS uuid), NULL, NULL, NULL, NULL, NULL, :base)"
)


@pytest.fixture(scope="module")
async def blank(
    client: httpx.AsyncClient, make_group: Any, admin_url: Any
) -> tuple[SharingGroup, dict[str, Any], list[str]]:
    """A group, one shared record as a template (as JSON), and three suppliers."""
    group = await make_group(members=4)
    a = group.members[0]
    suppliers = [(await new_supplier(client, a))["id"] for _ in range(3)]
    shared = await record_and_share(client, a, suppliers[0], group)
    conn = await asyncpg.connect(**connect_kwargs(admin_url))
    try:
        template = await conn.fetchval(
            "SELECT to_jsonb(f) FROM shared_findings f WHERE id = $1", shared["shared_finding_id"]
        )
    finally:
        await conn.close()
    return group, json.loads(template), suppliers


def random_scene(rng: random.Random, contributors: list[str], suppliers: list[str]) -> list[Shared]:
    """A sparse scene: a few brands, a few suppliers, small counts, so cells sit on both sides
    of the threshold and of the rounding."""
    shared = []
    for _ in range(rng.randint(6, 40)):
        kind = rng.choice(("non_compliance", "non_compliance", "observation"))
        values = {
            "area": rng.choice(AREAS),
            "country": rng.choice(COUNTRIES),
            "period": rng.choice(PERIODS),
            "severity": rng.choice(SEVERITIES) if kind == "non_compliance" else None,
            "kind": kind,
        }
        contributor = rng.choice(contributors[: rng.randint(2, len(contributors))])
        for _ in range(rng.choice((1, 1, 1, 2, 3))):
            shared.append(Shared(contributor, rng.choice(suppliers), items(values)))
    return shared


@pytest.mark.parametrize("seed", range(8))
async def test_random_scenes_withstand_the_attack(blank, admin, database, seed):
    group, template, suppliers = blank
    contributors = [str(actor.id) for actor in (group.facilitator, *group.members)]
    rng = random.Random(seed)
    shared = random_scene(rng, contributors, suppliers)
    rows = []
    for item in shared:
        values = dict(item.values)
        rows.append(
            {
                **template,
                "contributor": item.contributor,
                "supplier_id": item.supplier,
                "area": values["area"],
                "country": values["country"],
                "observed_period": values["period"],
                "severity": values["severity"],
                "kind": values["kind"],
            }
        )
    async with admin.transaction():
        await admin.execute("DELETE FROM shared_findings WHERE group_id = $1", group.id)
        await admin.execute(INSERT, json.dumps(rows))
    reader = group.members[3]

    async def query(dims: tuple[str, ...], given: dict[str, str]) -> tuple[list[Any], int]:
        async with database.transaction(reader.id) as session:
            result = await session.execute(
                INSIGHTS,
                {
                    "group_id": group.id,
                    "dims": list(dims),
                    "base": BASE,
                    "supplier": given.get("supplier_id"),
                },
            )
            rows = result.all()
        cells = [
            {"key": {d: row.cell.get(d) for d in dims}, "findings": row.findings}
            for row in rows
            if row.findings is not None
        ]
        return cells, sum(1 for row in rows if row.findings is None)

    lattice = await observe(query, shared, suppliers, every_filter=False)
    print(f"seed {seed}:", summary(lattice, truth(shared)))
    assert failures(lattice, truth(shared)) == "", seed
