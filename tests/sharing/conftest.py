"""Helpers of the sharing red team: a working group of rival brands, findings, shares, readers.

`make_group()` builds a group with a facilitator and four (or more) member brands, plus an
observer and a tenant outside the group, every one with a ready token and a distinctive name, so
each attack can check what the others can read.
"""

from __future__ import annotations

import asyncio
import dataclasses
import itertools
import json
import uuid
from collections.abc import AsyncIterator, Iterable
from typing import Any

import asyncpg
import httpx
import pytest
import sqlalchemy as sa

from bench.generate import connect_kwargs
from tests.suppliers.conftest import factory, unique
from tests.working_groups.conftest import Actor, assert_problem, create_group, join
from wg_api.platform.database import Database

__all__ = ["Actor", "assert_problem"]

DIMENSIONS = ("area", "country", "period", "severity", "kind")
SHARED_FINDING_KEYS = {
    "id",
    "supplier",
    "kind",
    "area",
    "severity",
    "basis",
    "status",
    "observed_period",
    "title",
    "description",
    "affected_workers_band",
    "source_scheme",
    "child_labour_case",
    "is_own",
}
SHARING_EVENTS = "shared_finding.published,shared_finding.updated,shared_finding.withdrawn"
# Brand-like words so tenant names read like the real thing (and are scrubbed as such).
BRAND_WORDS = ("Heron", "Kestrel", "Osprey", "Plover", "Avocet", "Curlew", "Dunlin", "Egret")


@dataclasses.dataclass
class SharingGroup:
    """A working group: a facilitator, member brands, maybe an observer; and an outsider."""

    id: str
    threshold: int
    facilitator: Actor
    members: list[Actor]
    observer: Actor | None
    outsider: Actor

    @property
    def path(self) -> str:
        return f"/v1/working-groups/{self.id}"

    @property
    def readers(self) -> list[Actor]:
        """Every tenant of the group: whoever can read its shared findings."""
        return [self.facilitator, *self.members, *([self.observer] if self.observer else [])]

    def others(self, contributor: Actor) -> list[Actor]:
        return [actor for actor in self.readers if actor.id != contributor.id]


@pytest.fixture
async def admin(admin_url: Any) -> AsyncIterator[asyncpg.Connection]:
    """A superuser connection to the test database: for what only the owner's side can see."""
    conn = await asyncpg.connect(**connect_kwargs(admin_url))
    try:
        yield conn
    finally:
        await conn.close()


@pytest.fixture(scope="session")
def new_brand(make_tenant: Any) -> Any:
    counter = itertools.count()

    async def make(kind: str = "brand") -> Actor:
        word = BRAND_WORDS[next(counter) % len(BRAND_WORDS)]
        handle = await make_tenant(kind=kind, name=f"{word} Apparel {unique()[:5]}")
        return Actor(handle, await handle.headers())

    return make


@pytest.fixture(scope="session")
def make_group(client: httpx.AsyncClient, new_brand: Any) -> Any:
    async def make(members: int = 4, *, threshold: int = 3, observer: bool = True) -> SharingGroup:
        facilitator = await new_brand("facilitator")
        brands = [await new_brand() for _ in range(members)]
        watcher = await new_brand() if observer else None
        outsider = await new_brand()
        body = {"name": f"Pearl River Delta {unique()}", "anonymity_threshold": threshold}
        group = await create_group(client, facilitator, **body)
        await asyncio.gather(
            *(join(client, facilitator, group["id"], brand, "member") for brand in brands)
        )
        if watcher is not None:
            await join(client, facilitator, group["id"], watcher, "observer")
        return SharingGroup(
            id=str(group["id"]),
            threshold=threshold,
            facilitator=facilitator,
            members=brands,
            observer=watcher,
            outsider=outsider,
        )

    return make


async def join_all(
    client: httpx.AsyncClient, group: SharingGroup, actors: Iterable[Actor], role: str = "member"
) -> None:
    """Every one of `actors` joins `group` with `role` (sharing one finding into two groups
    needs k + 1 member tenants in common: the linkable-share rule)."""
    await asyncio.gather(*(join(client, group.facilitator, group.id, a, role) for a in actors))


async def new_supplier(
    client: httpx.AsyncClient,
    creator: Actor,
    *,
    linked: Iterable[Actor] = (),
    internal_code: str | None = None,
    **fields: Any,
) -> dict[str, Any]:
    """A new factory created by `creator` and linked by every tenant in `linked` too."""
    body = factory(**fields)
    if internal_code is not None:
        body["internal_code"] = internal_code
    response = await client.post("/v1/suppliers", json=body, headers=creator.headers)
    assert response.status_code == 201, response.text
    supplier: dict[str, Any] = response.json()["supplier"]
    for actor in linked:
        response = await client.post(
            "/v1/suppliers", json={"supplier_id": supplier["id"]}, headers=actor.headers
        )
        assert response.status_code == 200, response.text
    return supplier


def finding_body(supplier_id: str, **overrides: Any) -> dict[str, Any]:
    """A valid non-compliance finding about working hours in 2026-Q3, without any identifier."""
    body: dict[str, Any] = {
        "supplier_id": supplier_id,
        "kind": "non_compliance",
        "area": "working_hours",
        "severity": "major",
        "basis": "legal",
        "title": "Overtime above the legal limit in peak season",
        "description": "Sewing line workers averaged 72 hours a week in peak season.",
        "observed_on": "2026-08-12",
        "source": {"scheme": "amfori_bsci"},
        "status": "open",
        "affected_workers": 40,
    }
    body.update(overrides)
    return body


async def record(
    client: httpx.AsyncClient, actor: Actor, supplier_id: str, **overrides: Any
) -> dict[str, Any]:
    response = await client.post(
        "/v1/findings", json=finding_body(supplier_id, **overrides), headers=actor.headers
    )
    assert response.status_code == 201, response.text
    finding: dict[str, Any] = response.json()
    return finding


async def share(
    client: httpx.AsyncClient, actor: Actor, finding_id: str, group: SharingGroup, **body: Any
) -> dict[str, Any]:
    response = await client.post(
        f"/v1/findings/{finding_id}/shares",
        json={"working_group_id": group.id, **body},
        headers=actor.headers,
    )
    assert response.status_code == 201, response.text
    created: dict[str, Any] = response.json()
    return created


async def record_and_share(
    client: httpx.AsyncClient,
    actor: Actor,
    supplier_id: str,
    group: SharingGroup,
    **overrides: Any,
) -> dict[str, Any]:
    """Record a finding and share it; answers the share (with `shared_finding_id`)."""
    finding = await record(client, actor, supplier_id, **overrides)
    created = await share(client, actor, finding["id"], group)
    return {**created, "finding_id": finding["id"]}


async def list_pages(
    client: httpx.AsyncClient, actor: Actor, group: SharingGroup, **params: Any
) -> list[httpx.Response]:
    """Every page of the group's shared findings as `actor` reads them."""
    pages, cursor = [], None
    while True:
        query = {**params, **({"cursor": cursor} if cursor else {})}
        response = await client.get(
            f"{group.path}/shared-findings", params=query, headers=actor.headers
        )
        assert response.status_code == 200, response.text
        pages.append(response)
        cursor = response.json()["next_cursor"]
        if cursor is None:
            return pages


async def shared_findings(
    client: httpx.AsyncClient, actor: Actor, group: SharingGroup, **params: Any
) -> list[dict[str, Any]]:
    pages = await list_pages(client, actor, group, **params)
    return [item for page in pages for item in page.json()["items"]]


async def insights(
    client: httpx.AsyncClient,
    actor: Actor,
    group: SharingGroup,
    group_by: Iterable[str] = (),
    **filters: Any,
) -> httpx.Response:
    params = {"group_by": ",".join(group_by), **filters}
    response = await client.get(f"{group.path}/insights", params=params, headers=actor.headers)
    assert response.status_code == 200, response.text
    return response


def groupings() -> list[tuple[str, ...]]:
    """Every subset of the insight dimensions, the empty one included."""
    return [
        combo
        for size in range(len(DIMENSIONS) + 1)
        for combo in itertools.combinations(DIMENSIONS, size)
    ]


async def feed(
    client: httpx.AsyncClient, actor: Actor, types: str = SHARING_EVENTS, *, at_least: int = 1
) -> httpx.Response:
    """`actor`'s change feed of `types` once it holds `at_least` events (polled briefly: the
    request that wrote them may still be committing)."""
    for _ in range(100):
        response = await client.get(
            "/v1/events", params={"types": types, "limit": 200}, headers=actor.headers
        )
        assert response.status_code == 200, response.text
        if len(response.json()["items"]) >= at_least:
            return response
        await asyncio.sleep(0.05)
    raise AssertionError(f"fewer than {at_least} {types} events: {response.text}")


async def add_person(database: Database, actor: Actor, name: str) -> None:
    """A person of `actor`'s tenant, as their first sign-in through its identity provider leaves."""
    async with database.transaction(actor.id) as session:
        await session.execute(
            sa.text(
                "INSERT INTO users (tenant_id, issuer, subject, name, role) "
                "VALUES (:tenant_id, 'https://login.example.net', :subject, :name, 'editor')"
            ),
            {"tenant_id": actor.id, "subject": uuid.uuid4().hex, "name": name},
        )


def json_keys(value: Any) -> set[str]:
    """Every key of every object anywhere in a JSON document."""
    if isinstance(value, dict):
        return set(value) | {key for item in value.values() for key in json_keys(item)}
    if isinstance(value, list):
        return {key for item in value for key in json_keys(item)}
    return set()


def _both_ways(recount: str, kept: str) -> str:
    """Rows that are in one and not the other, both ways: empty when the tallies are exact."""
    # Only the fixed queries below are joined in.
    return (
        f"WITH recount AS ({recount}), kept AS ({kept}) "  # noqa: S608
        "SELECT 'missing' AS side, * FROM (TABLE recount EXCEPT TABLE kept) m "
        "UNION ALL SELECT 'extra', * FROM (TABLE kept EXCEPT TABLE recount) e"
    )


TALLY_DIFFERENCE = _both_ways(
    """
    SELECT area, country::text AS country, observed_period AS period,
           coalesce(severity, '') AS severity, kind, contributor, count(*)::int AS n
    FROM shared_findings WHERE group_id = $1
    GROUP BY 1, 2, 3, 4, 5, 6
    """,
    """
    SELECT area, country, period, severity, kind, contributor, n
    FROM insight_tallies WHERE group_id = $1
    """,
)
BITS_DIFFERENCE = _both_ways(
    """
    SELECT f.area, f.country::text AS country, f.observed_period AS period,
           coalesce(f.severity, '') AS severity, f.kind, s.number / 1024 AS chunk,
           bit_or(set_bit(repeat('0', 1024)::bit(1024), s.number % 1024, 1)) AS bits
    FROM shared_findings f
    JOIN insight_suppliers s ON s.group_id = f.group_id AND s.supplier_id = f.supplier_id
    WHERE f.group_id = $1
    GROUP BY 1, 2, 3, 4, 5, 6
    """,
    """
    SELECT area, country, period, severity, kind, chunk, bits
    FROM insight_supplier_bits WHERE group_id = $1
    """,
)
UNNUMBERED = """
    SELECT count(DISTINCT f.supplier_id) FROM shared_findings f
    LEFT JOIN insight_suppliers s ON s.group_id = f.group_id AND s.supplier_id = f.supplier_id
    WHERE f.group_id = $1 AND s.number IS NULL
"""


async def assert_tallies_exact(admin: asyncpg.Connection, *group_ids: str) -> None:
    """The insight tallies of each group (migration 0005) equal a recount of its records."""
    for group_id in group_ids:
        tallies = [dict(row) for row in await admin.fetch(TALLY_DIFFERENCE, group_id)]
        assert tallies == [], tallies
        assert await admin.fetchval(UNNUMBERED, group_id) == 0
        bits = [dict(row) for row in await admin.fetch(BITS_DIFFERENCE, group_id)]
        assert bits == [], [(row["side"], row["area"], row["period"]) for row in bits]


def pretty(response: httpx.Response) -> str:
    return json.dumps(response.json(), indent=1, ensure_ascii=False)[:4000]
