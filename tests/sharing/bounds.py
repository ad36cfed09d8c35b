"""The bounds attack on insights: what a member learns about a suppressed cell's count by
combining published rounded counts, the way a patient statistician would.

Every answer of `GET /v1/working-groups/{id}/insights` is a set of cells of one *level* of the
lattice of marginals: the grouping plus the filtered dimensions (a filter `area=x` with
`group_by=period` answers the cells (area, period) with area = x), and, with `supplier_id`, the
same within one supplier's records. So every published value is the value of one lattice cell,
and the attack works on the lattice:

- a published count `r` (rounded half away from zero to the base `b`) means the true count is
  in [r - b // 2, r + (b - 1) // 2] (for b = 5: [r - 2, r + 2]), and at least `k` (a
  published cell has `k` contributors, each with a finding);
- a suppressed cell exists (it is counted), so its count is at least 1; an absent cell is 0;
- a cell is the sum of its children along any dimension it does not fix (its sub-cells by area,
  by country, ...), and a cell without a supplier is the sum of the same cell of every supplier.

One-level subtraction: for a suppressed child `z` of a published parent, z = parent - the other
children, so z is in [parent_lo - sum(others' hi), parent_hi - sum(others' lo)] (others
suppressed count as [1, inf)); for a suppressed parent, z is in [sum(children lo), sum(children
hi)]. A filter against no filter is the same subtraction: the filtered answer's cells are the
children of the unfiltered answer's cells. `attack()` computes every such interval and, for each
suppressed cell, their intersection: the tightest interval this attacker gets.
"""

from __future__ import annotations

import dataclasses
import math
from collections import defaultdict
from collections.abc import Iterable

DIMENSIONS = ("area", "country", "period", "severity", "kind")
INF = math.inf

# A lattice cell: the supplier (None for the whole group) and the fixed dimensions, in
# DIMENSIONS order, with their values.
Items = tuple[tuple[str, str | None], ...]
Key = tuple[str | None, Items]


def items(values: dict[str, str | None]) -> Items:
    return tuple((dim, values[dim]) for dim in DIMENSIONS if dim in values)


def describe(key: Key) -> str:
    supplier, fixed = key
    text = ",".join(f"{dim}={value}" for dim, value in fixed) or "total"
    return f"{text} (supplier {supplier[:8]})" if supplier else text


def rounding_interval(published: int, base: int, threshold: int) -> tuple[int, int]:
    """What a published count says of the true count: round(x / b) * b = r, half away from
    zero, and at least `threshold` findings (one per contributor)."""
    lo = published - base // 2
    hi = published + (base - 1) // 2
    return max(lo, threshold), hi


@dataclasses.dataclass
class Lattice:
    """What a member has seen: published values and suppressed cells, per lattice cell."""

    base: int
    threshold: int
    published: dict[Key, int] = dataclasses.field(default_factory=dict)
    suppressed: set[Key] = dataclasses.field(default_factory=set)
    # Contradictions between answers: the same cell published with two values, or published
    # in one answer and suppressed in another.
    inconsistent: list[str] = dataclasses.field(default_factory=list)

    def see_published(self, key: Key, findings: int) -> None:
        seen = self.published.setdefault(key, findings)
        if seen != findings:
            self.inconsistent.append(f"{describe(key)}: {seen} and {findings}")
        if key in self.suppressed:
            self.inconsistent.append(f"{describe(key)}: published and suppressed")

    def see_suppressed(self, key: Key) -> None:
        self.suppressed.add(key)
        if key in self.published:
            self.inconsistent.append(f"{describe(key)}: published and suppressed")

    def interval(self, key: Key) -> tuple[float, float]:
        if key in self.published:
            return rounding_interval(self.published[key], self.base, self.threshold)
        if key in self.suppressed:
            return 1, INF
        return 0, 0


@dataclasses.dataclass(frozen=True)
class Bound:
    """One relation's interval for a suppressed cell."""

    cell: Key
    relation: str
    along: str
    lo: float
    hi: float

    @property
    def width(self) -> float:
        """How many counts the interval leaves possible."""
        return self.hi - self.lo + 1


@dataclasses.dataclass(frozen=True)
class Relation:
    parent: Key
    children: tuple[Key, ...]
    along: str  # a dimension, or "supplier"


def relations(cells: Iterable[Key]) -> list[Relation]:
    """Every parent/children relation among existing cells: along each dimension a cell does
    not fix, and (for cells of the whole group) along the supplier."""
    existing = set(cells)
    by_parent: dict[tuple[Key, str], list[Key]] = defaultdict(list)
    for key in existing:
        supplier, fixed = key
        for index, (dim, _) in enumerate(fixed):
            parent = (supplier, fixed[:index] + fixed[index + 1 :])
            by_parent[(parent, dim)].append(key)
        if supplier is not None:
            by_parent[((None, fixed), "supplier")].append(key)
    return [
        Relation(parent, tuple(sorted(children, key=str)), along)
        for (parent, along), children in sorted(by_parent.items(), key=str)
        if parent in existing
    ]


def one_level(lattice: Lattice, relation: Relation) -> list[Bound]:
    """The intervals one relation gives for its suppressed members."""
    bounds = []
    name = f"{describe(relation.parent)} by {relation.along}"
    intervals = {child: lattice.interval(child) for child in relation.children}
    parent_lo, parent_hi = lattice.interval(relation.parent)
    if relation.parent in lattice.published:
        for child in relation.children:
            if child not in lattice.suppressed:
                continue
            others = [intervals[other] for other in relation.children if other != child]
            lo = parent_lo - sum(hi for _, hi in others)
            hi = parent_hi - sum(lo for lo, _ in others)
            bounds.append(Bound(child, name, relation.along, max(1, lo), hi))
    elif relation.parent in lattice.suppressed:
        lo = sum(lo for lo, _ in intervals.values())
        hi = sum(hi for _, hi in intervals.values())
        name += " (the sum of its sub-cells)"
        bounds.append(Bound(relation.parent, name, relation.along, max(1, lo), hi))
    return bounds


@dataclasses.dataclass
class Findings:
    """The attack's result: every interval, the narrowest per relation, the intersections."""

    bounds: list[Bound]
    tightest: dict[Key, tuple[float, float]]

    def narrower_than(self, base: int, *, along: set[str] | None = None) -> list[Bound]:
        return sorted(
            (b for b in self.bounds if b.width < base and (along is None or b.along in along)),
            key=lambda b: (b.width, str(b.cell)),
        )

    def intersections_narrower_than(self, base: int) -> dict[Key, tuple[float, float]]:
        return {key: (lo, hi) for key, (lo, hi) in self.tightest.items() if hi - lo + 1 < base}


def attack(lattice: Lattice, *, along: set[str] | None = None) -> Findings:
    """Every one-level interval (only relations along `along`, if given) and their
    intersection for each suppressed cell."""
    cells = set(lattice.published) | lattice.suppressed
    chosen = [r for r in relations(cells) if along is None or r.along in along]
    bounds = [b for r in chosen for b in one_level(lattice, r)]
    tightest: dict[Key, tuple[float, float]] = {key: (1, INF) for key in lattice.suppressed}
    for bound in bounds:
        lo, hi = tightest[bound.cell]
        tightest[bound.cell] = (max(lo, bound.lo), min(hi, bound.hi))
    return Findings(bounds, tightest)


def report(bounds: Iterable[Bound], truth: dict[Key, int] | None = None, limit: int = 12) -> str:
    lines = []
    for bound in list(bounds)[:limit]:
        actual = f", true {truth[bound.cell]}" if truth and bound.cell in truth else ""
        hi = "inf" if bound.hi == INF else int(bound.hi)
        lines.append(
            f"{describe(bound.cell)} in [{int(bound.lo)}, {hi}] from {bound.relation}{actual}"
        )
    return "\n".join(lines)
