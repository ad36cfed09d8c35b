"""A member of two groups with the same contributor cannot pair the contributor's records through
the change feed: events about shared findings carry the day only, reach each group after a delay
of its own, and have nothing in common but the anonymised content."""

from __future__ import annotations

import asyncio
import dataclasses
import time
import uuid
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
import sqlalchemy as sa

from tests.conftest import serve_in_loop, superuser_transaction
from tests.sharing.conftest import (
    SHARING_EVENTS,
    SharingGroup,
    feed,
    new_supplier,
    record,
    share,
)
from tests.suppliers.conftest import unique
from tests.working_groups.conftest import create_group, join
from wg_api.app import asgi_app

DELAY = 4.0
EDITS = 16


@pytest.fixture(scope="module")
async def delayed_client(settings, database):
    """The same service with WG_SHARED_EVENT_DELAY_SECONDS=4, over the same database."""
    delayed = dataclasses.replace(settings, shared_event_delay_seconds=DELAY)
    async with serve_in_loop(asgi_app(delayed, database)) as http:
        yield http


async def twin_groups(client: httpx.AsyncClient, make_group: Any, new_brand: Any):
    """Two groups with the same five member brands (enough in common to share into both)."""
    first = await make_group(members=5, observer=False)
    facilitator = await new_brand("facilitator")
    body = {"name": f"Mekong Delta {unique()}", "anonymity_threshold": 3}
    created = await create_group(client, facilitator, **body)
    for brand in first.members:
        await join(client, facilitator, created["id"], brand, "member")
    second = SharingGroup(
        id=str(created["id"]),
        threshold=3,
        facilitator=facilitator,
        members=first.members,
        observer=None,
        outsider=first.outsider,
    )
    return first, second


async def read_all(client: httpx.AsyncClient, headers: dict[str, str], after: str | None):
    """Every event ready after `after`, page by page, and the cursor to resume from."""
    items: list[dict[str, Any]] = []
    while True:
        params = {"types": SHARING_EVENTS, "limit": "200", **({"after": after} if after else {})}
        response = await client.get("/v1/events", params=params, headers=headers)
        assert response.status_code == 200, response.text
        body = response.json()
        items.extend(body["items"])
        after = body["next_cursor"]
        if not body["has_more"]:
            return items, after


async def test_two_groups_cannot_pair_a_contributors_edits(
    client, delayed_client, make_group, new_brand, database
):
    first, second = await twin_groups(client, make_group, new_brand)
    contributor, reader = first.members[0], first.members[1]
    supplier = await new_supplier(client, contributor)
    pairs: dict[str, tuple[str, str]] = {}  # finding -> (shared id in first, in second)
    for _ in range(EDITS):
        finding = await record(client, contributor, supplier["id"])
        in_first = await share(client, contributor, finding["id"], first)
        in_second = await share(client, contributor, finding["id"], second)
        pairs[finding["id"]] = (in_first["shared_finding_id"], in_second["shared_finding_id"])

    published = (await feed(client, reader, at_least=2 * EDITS)).json()
    assert len(published["items"]) == 2 * EDITS
    _, cursor = await read_all(client, reader.headers, None)

    # Each edit is one transaction telling both groups, through the service with a 4 s delay.
    started = time.monotonic()
    edited_at = datetime.now(UTC)
    for n, finding_id in enumerate(pairs):
        response = await delayed_client.patch(
            f"/v1/findings/{finding_id}",
            json={"title": f"Overtime above the legal limit, revision {n}"},
            headers=contributor.headers,
        )
        assert response.status_code == 200, response.text
    edits_took = time.monotonic() - started

    first_seen: dict[str, float] = {}
    order: list[dict[str, Any]] = []
    polling_from = time.time()
    deadline = time.monotonic() + DELAY + edits_took + 10
    while len(order) < 2 * EDITS and time.monotonic() < deadline:
        items, cursor = await read_all(client, reader.headers, cursor)
        now = time.time()
        for item in items:
            assert item["id"] not in first_seen, "an event came twice"
            first_seen[item["id"]] = now
        order.extend(items)
        await asyncio.sleep(0.1)
    assert len(order) == 2 * EDITS, order
    assert {item["type"] for item in order} == {"shared_finding.updated"}

    # Not before its group's delay, and soon after it; the delays differ within each edit.
    async with superuser_transaction(database) as session:
        rows = await session.execute(
            sa.text("SELECT id, visible_at FROM events WHERE id = ANY(:ids)"),
            {"ids": [uuid.UUID(item["id"]) for item in order]},
        )
        visible_at = {str(row.id): row.visible_at.timestamp() for row in rows}
    for event_id, seen in first_seen.items():
        assert seen >= visible_at[event_id] - 0.05, "an event was readable before its delay"
        assert seen <= max(visible_at[event_id], polling_from) + 3.0
    assert max(visible_at.values()) - edited_at.timestamp() > 1.0, "nothing was delayed"
    assert max(visible_at.values()) - edited_at.timestamp() <= DELAY + edits_took + 0.5

    by_shared_id = {item["data"]["id"]: (index, item) for index, item in enumerate(order)}
    adjacent = first_group_first = 0
    for first_id, second_id in pairs.values():
        assert first_id != second_id
        (i, one), (j, other) = by_shared_id[first_id], by_shared_id[second_id]
        assert one["data"]["working_group_id"] == first.id
        assert other["data"]["working_group_id"] == second.id
        # Day precision; the event ids are random (v4) and differ.
        for item in (one, other):
            assert item["occurred_at"].endswith("T00:00:00Z"), item["occurred_at"]
            assert uuid.UUID(item["id"]).version == 4
        days = {edited_at.date().isoformat(), datetime.now(UTC).date().isoformat()}
        assert one["occurred_at"][:10] in days
        assert visible_at[one["id"]] != visible_at[other["id"]]
        # Nothing in common but the anonymised content: every field that differs is an id.
        differing = {key for key in one if one[key] != other[key]}
        assert differing == {"id", "data"}
        differing_data = {key for key in one["data"] if one["data"][key] != other["data"][key]}
        assert differing_data == {"id", "working_group_id"}
        adjacent += abs(i - j) == 1
        first_group_first += i < j
    # The two events of one edit are not side by side by construction, nor in a fixed order.
    assert adjacent < EDITS
    assert 0 < first_group_first < EDITS


async def test_published_and_withdrawn_events_carry_the_day_only(client, make_group):
    group = await make_group()
    contributor, reader = group.members[0], group.members[1]
    supplier = await new_supplier(client, contributor)
    finding = await record(client, contributor, supplier["id"])
    created = await share(client, contributor, finding["id"], group)
    response = await client.delete(
        f"/v1/findings/{finding['id']}/shares/{created['id']}", headers=contributor.headers
    )
    assert response.status_code in (200, 204), response.text
    items = (await feed(client, reader, at_least=2)).json()["items"]
    assert [item["type"] for item in items] == [
        "shared_finding.published",
        "shared_finding.withdrawn",
    ]
    for item in items:
        assert item["occurred_at"].endswith("T00:00:00Z")
    # The contributor's own record of what it did keeps its time.
    own = await client.get(
        "/v1/events", params={"types": "share.created"}, headers=contributor.headers
    )
    assert not own.json()["items"][0]["occurred_at"].endswith("T00:00:00Z")
