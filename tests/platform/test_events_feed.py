"""GET /v1/events: the per-tenant change feed over the outbox that record_event writes."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from wg_api.platform.events import feed_cursor_context, record_event
from wg_api.platform.pagination import encode_cursor


async def record(database, tenant_id: uuid.UUID, *events: tuple[str, dict[str, Any]]) -> None:
    """Record `events` in one committed transaction of the tenant, as a domain write would."""
    async with database.transaction(tenant_id) as session:
        for type, data in events:
            await record_event(session, tenant_id, type, data)


async def read(client, headers, expected: int | None = None, **params: str) -> Any:
    """One page of the feed, polled briefly until it holds `expected` events."""
    for _ in range(50):
        response = await client.get("/v1/events", params=params, headers=headers)
        assert response.status_code == 200, response.text
        body = response.json()
        if expected is None or len(body["items"]) >= expected:
            return response
        await asyncio.sleep(0.05)
    return response


def numbers(response) -> list[int]:
    return [item["data"]["n"] for item in response.json()["items"]]


async def test_needs_the_events_read_scope(client, make_tenant):
    tenant = await make_tenant()
    assert (await client.get("/v1/events")).status_code == 401
    response = await client.get("/v1/events", headers=await tenant.headers("findings:read"))
    assert response.status_code == 403
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["type"] == "/problems/forbidden"
    allowed = await client.get("/v1/events", headers=await tenant.headers("events:read"))
    assert allowed.status_code == 200


async def test_events_come_in_order_with_their_fields(client, make_tenant, database):
    tenant = await make_tenant()
    await record(database, tenant.id, ("finding.created", {"n": 1}))
    await record(database, tenant.id, ("finding.updated", {"n": 2}), ("finding.deleted", {"n": 3}))
    await record(database, tenant.id, ("finding.created", {"n": 4}))
    response = await read(client, await tenant.headers("events:read"), expected=4)
    body = response.json()
    assert numbers(response) == [1, 2, 3, 4]
    assert [item["type"] for item in body["items"]] == [
        "finding.created",
        "finding.updated",
        "finding.deleted",
        "finding.created",
    ]
    for item in body["items"]:
        assert set(item) == {"id", "type", "occurred_at", "data"}
        uuid.UUID(item["id"])
        assert item["occurred_at"].endswith("Z")
    assert body["has_more"] is False


async def test_the_feed_is_resumable_from_next_cursor(client, make_tenant, database):
    tenant = await make_tenant()
    headers = await tenant.headers("events:read")
    for n in range(1, 6):
        await record(database, tenant.id, ("meeting.scheduled", {"n": n}))

    first = await read(client, headers, expected=2, limit="2")
    assert numbers(first) == [1, 2]
    assert first.json()["has_more"] is True
    assert 'rel="next"' in first.headers["link"]
    second = await read(client, headers, limit="2", after=first.json()["next_cursor"])
    assert numbers(second) == [3, 4]
    third = await read(client, headers, limit="2", after=second.json()["next_cursor"])
    assert numbers(third) == [5]
    assert third.json()["has_more"] is False
    assert "link" not in third.headers

    # Polling at the end answers nothing new and the same position (sealed afresh: a cursor
    # never repeats, so two answers cannot be matched by their cursors)...
    cursor = third.json()["next_cursor"]
    idle = await read(client, headers, after=cursor)
    assert numbers(idle) == []
    assert idle.json()["has_more"] is False
    assert idle.json()["next_cursor"] != cursor
    # ...until something happens; then exactly that, from either cursor.
    await record(database, tenant.id, ("meeting.updated", {"n": 6}))
    later = await read(client, headers, expected=1, after=cursor)
    assert numbers(later) == [6]
    from_idle = await read(client, headers, expected=1, after=idle.json()["next_cursor"])
    assert numbers(from_idle) == [6]


async def test_types_filter(client, make_tenant, database):
    tenant = await make_tenant()
    headers = await tenant.headers("events:read")
    await record(
        database,
        tenant.id,
        ("finding.created", {"n": 1}),
        ("meeting.scheduled", {"n": 2}),
        ("finding.updated", {"n": 3}),
        ("finding.created", {"n": 4}),
    )
    await read(client, headers, expected=4)
    one = await read(client, headers, types="finding.created")
    assert numbers(one) == [1, 4]
    two = await read(client, headers, types="finding.created, meeting.scheduled")
    assert numbers(two) == [1, 2, 4]
    none = await read(client, headers, types="pledge.committed")
    assert numbers(none) == []
    too_long = await client.get("/v1/events", params={"types": "x" * 101}, headers=headers)
    assert too_long.status_code == 400


async def test_never_shows_another_tenants_events(client, make_tenant, database):
    alice, bob = await make_tenant(), await make_tenant()
    await record(database, alice.id, ("finding.created", {"n": 1, "secret": "alice"}))
    await record(database, bob.id, ("finding.created", {"n": 2, "secret": "bob"}))
    await record(database, alice.id, ("finding.updated", {"n": 3, "secret": "alice"}))

    alices = await read(client, await alice.headers("events:read"), expected=2)
    bobs = await read(client, await bob.headers("events:read"), expected=1)
    assert numbers(alices) == [1, 3]
    assert numbers(bobs) == [2]
    assert "bob" not in alices.text
    assert "alice" not in bobs.text
    # Alice's cursor is hers: in Bob's hands it is a bad cursor, not a position in his feed.
    alice_start = (await read(client, await alice.headers("events:read"), limit="1")).json()
    from_alices_cursor = await client.get(
        "/v1/events",
        params={"after": alice_start["next_cursor"]},
        headers=await bob.headers("events:read"),
    )
    assert from_alices_cursor.status_code == 400, from_alices_cursor.text
    assert "alice" not in from_alices_cursor.text


async def test_a_cursor_older_than_the_retention_is_410(
    client, make_tenant, settings, cursor_cipher
):
    tenant = await make_tenant()
    headers = await tenant.headers("events:read")
    context = feed_cursor_context(tenant.id)
    retention = timedelta(days=settings.event_retention_days)
    expired = (datetime.now(UTC) - retention - timedelta(hours=1)).timestamp()
    response = await client.get(
        "/v1/events", params={"after": cursor_cipher.seal([1, expired], context)}, headers=headers
    )
    assert response.status_code == 410, response.text
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["type"] == "/problems/gone"

    recent = (datetime.now(UTC) - retention + timedelta(hours=1)).timestamp()
    response = await client.get(
        "/v1/events", params={"after": cursor_cipher.seal([1, recent], context)}, headers=headers
    )
    assert response.status_code == 200, response.text


@pytest.mark.parametrize(
    "values",
    [
        ["not-a-number", 0],
        [1],
        [-1, 0],
        [1.5, 0],
        [1, "yesterday"],
        [1, 0, 0],
        {"position": 1},
    ],
)
async def test_a_well_sealed_cursor_of_the_wrong_shape_is_400(
    client, make_tenant, cursor_cipher, values
):
    tenant = await make_tenant()
    cursor = cursor_cipher.seal(values, feed_cursor_context(tenant.id))
    response = await client.get(
        "/v1/events", params={"after": cursor}, headers=await tenant.headers("events:read")
    )
    assert response.status_code == 400, response.text
    assert response.json()["type"] == "/problems/invalid-request"


@pytest.mark.parametrize(
    "cursor",
    ["garbage", "!!!", "", encode_cursor(["1", 1, 0]), encode_cursor([1, 0]), "A" * 100],
)
async def test_a_garbage_cursor_is_400(client, make_tenant, cursor):
    tenant = await make_tenant()
    response = await client.get(
        "/v1/events",
        params={"after": cursor} if cursor else {"after": "x"},
        headers=await tenant.headers("events:read"),
    )
    assert response.status_code == 400, response.text
    assert response.json()["type"] == "/problems/invalid-request"


@pytest.mark.parametrize("limit", ["0", "201", "lots"])
async def test_bad_limit_is_400(client, make_tenant, limit):
    tenant = await make_tenant()
    response = await client.get(
        "/v1/events", params={"limit": limit}, headers=await tenant.headers("events:read")
    )
    assert response.status_code == 400, response.text
