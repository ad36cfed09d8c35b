"""Red team: insights. Cells with one or two contributors, or dominated by one, never appear under
any grouping or filter; published counts are rounded so differences between answers do not pin a
suppressed cell.

The scene has five sharing tenants and a known set of shared findings, so every answer can be
checked against the rules of the design brief computed here from what was shared.
"""

from __future__ import annotations

import collections
import dataclasses
import math
from typing import Any

import httpx
import pytest

from tests.sharing.conftest import (
    DIMENSIONS,
    Actor,
    SharingGroup,
    groupings,
    insights,
    new_supplier,
    record_and_share,
)

BASE = 5


@dataclasses.dataclass(frozen=True)
class Shared:
    contributor: str
    supplier: str
    area: str
    country: str
    period: str
    severity: str | None
    kind: str


@dataclasses.dataclass
class Scene:
    group: SharingGroup
    shared: list[Shared]
    suppliers: dict[str, dict[str, Any]]
    reader: Actor


OBSERVED_ON = {"2026-Q1": "2026-02-10", "2026-Q2": "2026-05-10", "2026-Q3": "2026-08-10"}


async def _share(
    client: httpx.AsyncClient,
    scene: Scene,
    actor: Actor,
    supplier: str,
    times: int,
    *,
    area: str,
    period: str,
    severity: str | None,
    kind: str = "non_compliance",
) -> None:
    fields: dict[str, Any] = {"area": area, "kind": kind, "observed_on": OBSERVED_ON[period]}
    fields["severity"] = severity
    for _ in range(times):
        await record_and_share(
            client, actor, scene.suppliers[supplier]["id"], scene.group, **fields
        )
        scene.shared.append(
            Shared(
                contributor=actor.slug,
                supplier=scene.suppliers[supplier]["id"],
                area=area,
                country=scene.suppliers[supplier]["country"],
                period=period,
                severity=severity,
                kind=kind,
            )
        )


@pytest.fixture(scope="module")
async def scene(client: httpx.AsyncClient, make_group: Any) -> Scene:
    group = await make_group(members=4)
    f = group.facilitator
    a, b, c, d = group.members
    suppliers = {
        "dongguan": await new_supplier(client, a, linked=[b, c, d, f], country="CN"),
        "binh_duong": await new_supplier(client, a, country="VN"),
        "shenzhen": await new_supplier(client, a, linked=[b, c], country="CN"),
    }
    scene = Scene(group=group, shared=[], suppliers=suppliers, reader=d)
    # Three contributors, two findings each: published.
    for actor in (a, b, c):
        await _share(client, scene, actor, "dongguan", 2, area="working_hours", period="2026-Q3",
                     severity="major")  # fmt: skip
    # One contributor (a supplier only it shares about): never published.
    await _share(client, scene, a, "binh_duong", 2, area="child_labour", period="2026-Q3",
                 severity="zero_tolerance")  # fmt: skip
    # Two contributors: never published.
    for actor in (a, b):
        await _share(client, scene, actor, "dongguan", 1, area="health_and_safety",
                     period="2026-Q2", severity="critical")  # fmt: skip
    # Three contributors, but one holds 12 of 14 findings (86 %): dominated.
    for actor, times in ((a, 12), (b, 1), (c, 1)):
        await _share(client, scene, actor, "shenzhen", times, area="fair_remuneration",
                     period="2026-Q1", severity="minor")  # fmt: skip
    # Three contributors of observations (no severity): published.
    for actor in (c, d, f):
        await _share(client, scene, actor, "dongguan", 1, area="young_workers", period="2026-Q3",
                     severity=None, kind="observation")  # fmt: skip
    return scene


def _round(count: int) -> int:
    return math.floor(count / BASE + 0.5) * BASE


def _band(contributors: int) -> str:
    return "10+" if contributors >= 10 else "5+" if contributors >= 5 else "3+"


def _value(item: Shared, dim: str) -> str | None:
    return item.period if dim == "period" else getattr(item, dim)


def _enough(items: list[Shared]) -> bool:
    """The contributor rule: at least 3 contributors, none above 85 % of the findings."""
    per_contributor = collections.Counter(item.contributor for item in items)
    return len(per_contributor) >= 3 and max(per_contributor.values()) <= 0.85 * len(items)


def _finest(item: Shared) -> tuple[Any, ...]:
    return tuple(_value(item, dim) for dim in DIMENSIONS)


def _safe_against_subtraction(items: list[Shared], level: set[str]) -> bool:
    """Migration 0009's second rule: along every dimension the cell does not fix, its rounded
    count minus what its sub-cells show leaves a hidden sub-cell at least BASE possible counts.
    A sub-cell counts as surely hidden when even the sum of its finest cells' contributors is
    under 3 or one contributor holds over 85 % of it within one finest cell; the others show
    at least max(rounded - 2, 3); when none is surely hidden, any one spanning several finest
    cells may be hidden for its own sub-cells."""
    for dim in set(DIMENSIONS) - level:
        subs: dict[Any, list[Shared]] = collections.defaultdict(list)
        for item in items:
            subs[_value(item, dim)].append(item)
        hidden, shown, smallest = 0, 0, None
        for sub in subs.values():
            finest: dict[tuple[Any, ...], collections.Counter[str]] = collections.defaultdict(
                collections.Counter
            )
            for item in sub:
                finest[_finest(item)][item.contributor] += 1
            pairs = sum(len(counter) for counter in finest.values())
            top = max(max(counter.values()) for counter in finest.values())
            if pairs < 3 or top > 0.85 * len(sub):
                hidden += 1
                continue
            lo = max(_round(len(sub)) - 2, 3)
            shown += lo
            if len(finest) > 1:
                smallest = lo if smallest is None else min(smallest, lo)
        widest = _round(len(items)) + 2 - shown
        if hidden:
            widest -= hidden - 1
        elif smallest is not None:
            widest += smallest
        else:
            continue
        if widest < BASE:
            return False
    return True


def expected(
    scene: Scene, dims: tuple[str, ...], filters: dict[str, str]
) -> tuple[dict[tuple[Any, ...], dict[str, Any]], int]:
    """The design brief's rules applied to what was shared: published cells and suppressed count.
    The answer's level is the grouped and the filtered dimensions (migration 0010)."""
    by_field = {"supplier_id": "supplier"}
    kept = [
        s
        for s in scene.shared
        if all(_value(s, by_field.get(name, name)) == value for name, value in filters.items())
    ]
    level = set(dims) | (set(filters) & set(DIMENSIONS))
    cells: dict[tuple[Any, ...], list[Shared]] = collections.defaultdict(list)
    for item in kept:
        cells[tuple(_value(item, dim) for dim in dims)].append(item)
    published, suppressed = {}, 0
    for key, items in cells.items():
        if not (_enough(items) and _safe_against_subtraction(items, level)):
            suppressed += 1
            continue
        per_contributor = collections.Counter(item.contributor for item in items)
        published[key] = {
            "findings": _round(len(items)),
            "suppliers": max(BASE, _round(len({item.supplier for item in items}))),
            "contributors": _band(len(per_contributor)),
        }
    return published, suppressed


def answered(body: dict[str, Any], dims: tuple[str, ...]) -> dict[tuple[Any, ...], dict[str, Any]]:
    cells = {}
    for cell in body["cells"]:
        assert set(cell["key"]) == set(dims)
        key = tuple(cell["key"][dim] for dim in dims)
        cells[key] = {k: cell[k] for k in ("findings", "suppliers", "contributors")}
    return cells


async def _check(client: httpx.AsyncClient, scene: Scene, dims: tuple[str, ...], **filters: str):
    response = await insights(client, scene.reader, scene.group, dims, **filters)
    body = response.json()
    published, suppressed = expected(scene, dims, filters)
    assert answered(body, dims) == published, (dims, filters, body)
    assert body["suppressed_cells"] == suppressed, (dims, filters, body)
    assert body["group_by"] == list(dims)
    assert body["threshold"] == 3
    assert body["rounding_base"] == BASE
    return body


async def test_the_scene_has_published_and_suppressed_cells(client, scene):
    body = await _check(client, scene, ("area",))
    assert {cell["key"]["area"] for cell in body["cells"]} == {"working_hours", "young_workers"}
    assert body["suppressed_cells"] == 3
    assert body["cells"][0] == {
        "key": {"area": "working_hours"},
        "findings": 5,
        "suppliers": 5,
        "contributors": "3+",
    }


@pytest.mark.parametrize("dims", groupings(), ids=lambda dims: ",".join(dims) or "none")
async def test_every_grouping_follows_the_rules(client, scene, dims):
    await _check(client, scene, dims)
    for supplier in scene.suppliers.values():
        await _check(client, scene, dims, supplier_id=supplier["id"])


async def test_every_filter_follows_the_rules(client, scene):
    filters = [("area", s.area) for s in scene.shared] + [("country", "CN"), ("country", "VN")]
    filters += [("period", s.period) for s in scene.shared]
    filters += [("severity", s.severity) for s in scene.shared if s.severity]
    filters += [("kind", "observation"), ("kind", "non_compliance"), ("kind", "good_practice")]
    for name, value in sorted(set(filters)):
        for dims in ((), ("area",), DIMENSIONS):
            await _check(client, scene, dims, **{name: value})


async def test_a_cell_of_one_or_two_contributors_never_appears(client, scene):
    """Narrowed to the one supplier only one brand shares about, or to the area two brands
    share about, every grouping answers nothing but a count of suppressed cells."""
    only_one = {"supplier_id": scene.suppliers["binh_duong"]["id"]}
    for filters in (only_one, {"area": "health_and_safety"}, {"country": "VN"}):
        for dims in groupings():
            body = (await insights(client, scene.reader, scene.group, dims, **filters)).json()
            assert body["cells"] == [], (filters, dims, body)
            assert body["suppressed_cells"] == 1


async def test_a_dominated_cell_is_suppressed_and_counted(client, scene):
    body = (await insights(client, scene.reader, scene.group, ("area", "period"))).json()
    areas = {cell["key"]["area"] for cell in body["cells"]}
    assert "fair_remuneration" not in areas
    assert body["suppressed_cells"] == 3
    alone = await insights(
        client, scene.reader, scene.group, ("severity",), area="fair_remuneration"
    )
    assert alone.json() == {
        "group_by": ["severity"],
        "threshold": 3,
        "rounding_base": BASE,
        "cells": [],
        "suppressed_cells": 1,
        "group_below_threshold": False,
    }


async def test_every_published_count_is_a_multiple_of_the_rounding_base(client, scene):
    for dims in groupings():
        body = (await insights(client, scene.reader, scene.group, dims)).json()
        for cell in body["cells"]:
            assert cell["findings"] % BASE == 0, cell
            assert cell["findings"] > 0, cell
            assert cell["suppliers"] % BASE == 0, cell
            assert cell["suppliers"] > 0, cell


async def test_subtracting_groupings_does_not_pin_a_suppressed_cell(client, make_group):
    """The total minus the published cells of a grouping is not the suppressed cell's count,
    and a suppressed cell of 2 findings and one of 3 give byte-identical answers."""
    group = await make_group(members=4)
    a, b, c, attacker = group.members
    supplier = await new_supplier(client, a, linked=[b, c])
    for actor in (a, b, c):
        for _ in range(2):
            await record_and_share(client, actor, supplier["id"], group)
    for _ in range(2):
        await record_and_share(
            client, a, supplier["id"], group, area="child_labour", severity="zero_tolerance"
        )

    async def answers() -> dict[tuple[str, ...], bytes]:
        return {
            dims: (await insights(client, attacker, group, dims)).content for dims in groupings()
        }

    before = await answers()
    total = (await insights(client, attacker, group)).json()
    by_area = (await insights(client, attacker, group, ("area",))).json()
    assert total["cells"][0]["findings"] == 10  # 8 findings
    assert [(c["key"]["area"], c["findings"]) for c in by_area["cells"]] == [("working_hours", 5)]
    assert by_area["suppressed_cells"] == 1
    difference = total["cells"][0]["findings"] - sum(c["findings"] for c in by_area["cells"])
    assert difference != 2  # the suppressed child_labour cell holds 2

    await record_and_share(
        client, a, supplier["id"], group, area="child_labour", severity="zero_tolerance"
    )
    assert await answers() == before  # now 3: nobody outside can tell


async def test_a_group_with_a_higher_threshold_needs_that_many_contributors(client, make_group):
    group = await make_group(members=4, threshold=4)
    a, b, c, d = group.members
    supplier = await new_supplier(client, a, linked=[b, c, d])
    for actor in (a, b, c):
        await record_and_share(client, actor, supplier["id"], group)
    three = (await insights(client, group.facilitator, group, ("area",))).json()
    assert three["threshold"] == 4
    assert three["cells"] == []
    assert three["suppressed_cells"] == 1

    await record_and_share(client, d, supplier["id"], group)
    four = (await insights(client, group.facilitator, group, ("area",))).json()
    assert four["cells"] == [
        {"key": {"area": "working_hours"}, "findings": 5, "suppliers": 5, "contributors": "3+"}
    ]
