"""The feed reveals nothing through its cursor and ids, and a reader resuming from its cursor never
misses or repeats an event: not behind a transaction that commits late, not behind an event that
becomes visible late, not while several writers and readers run at once."""

from __future__ import annotations

import asyncio
import base64
import json
import random
import time
import uuid
from datetime import timedelta
from typing import Any

import pytest
import sqlalchemy as sa

from tests.conftest import superuser_transaction
from wg_api.platform.events import record_event
from wg_api.platform.models import events

FEED = "/v1/events"


def decoded(cursor: str) -> bytes:
    return base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))


async def page(client, headers, **params: str) -> dict[str, Any]:
    response = await client.get(FEED, params=params, headers=headers)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


async def record(database, tenant_id: uuid.UUID, n: int, **columns: Any) -> None:
    """One committed event `{"n": n}`; `columns` (such as visible_at) are written by the system
    role, as only the database's own functions may."""
    if not columns:
        async with database.transaction(tenant_id) as session:
            await record_event(session, tenant_id, "test.happened", {"n": n})
        return
    async with superuser_transaction(database) as session:
        await session.execute(
            sa.insert(events).values(
                tenant_id=tenant_id, type="test.happened", data={"n": n}, **columns
            )
        )


async def drain(client, headers, cursor: str | None, limit: str = "3") -> tuple[list[int], str]:
    seen: list[int] = []
    while True:
        body = await page(client, headers, limit=limit, **({"after": cursor} if cursor else {}))
        seen.extend(item["data"]["n"] for item in body["items"])
        cursor = body["next_cursor"]
        if not body["has_more"]:
            return seen, cursor


async def test_the_cursor_is_opaque_and_ids_are_random(client, make_tenant, database):
    tenant = await make_tenant()
    headers = await tenant.headers("events:read")
    async with database.transaction(tenant.id) as session:
        for n in range(3):
            await record_event(session, tenant.id, "test.happened", {"n": n})
        xid = str(await session.scalar(sa.text("SELECT pg_current_xact_id()")))
    body = await page(client, headers, limit="2")
    cursors = [body["next_cursor"], (await page(client, headers, limit="2"))["next_cursor"]]
    # The same position twice: two different tokens, neither holding JSON, numbers or the xid.
    assert cursors[0] != cursors[1]
    for cursor in cursors:
        raw = decoded(cursor)
        # Not JSON (sealed bytes start with a random nonce: its first byte may well be `[`).
        with pytest.raises((json.JSONDecodeError, UnicodeDecodeError)):
            json.loads(raw)
        assert xid.encode() not in raw
        assert xid not in cursor
        assert str(int(time.time()))[:6].encode() not in raw
    for item in body["items"]:
        assert uuid.UUID(item["id"]).version == 4
    # A token sealed for the first page resumes at the third event.
    rest = await page(client, headers, after=cursors[1])
    assert [item["data"]["n"] for item in rest["items"]] == [2]


async def test_a_tampered_cursor_is_400(client, make_tenant, database):
    tenant = await make_tenant()
    headers = await tenant.headers("events:read")
    await record(database, tenant.id, 1)
    cursor = (await page(client, headers))["next_cursor"]
    raw = bytearray(decoded(cursor))
    for index in (0, len(raw) // 2, len(raw) - 1):
        changed = bytearray(raw)
        changed[index] ^= 0x01
        forged = base64.urlsafe_b64encode(bytes(changed)).rstrip(b"=").decode()
        response = await client.get(FEED, params={"after": forged}, headers=headers)
        assert response.status_code == 400, response.text
        assert response.headers["content-type"] == "application/problem+json"
        assert response.json()["type"] == "/problems/invalid-request"
    truncated = await client.get(FEED, params={"after": cursor[:-4]}, headers=headers)
    assert truncated.status_code == 400


async def test_the_first_read_of_an_empty_feed_gives_a_cursor(client, make_tenant, database):
    tenant = await make_tenant()
    headers = await tenant.headers("events:read")
    empty = await page(client, headers)
    assert empty["items"] == []
    assert empty["has_more"] is False
    assert isinstance(empty["next_cursor"], str)
    await record(database, tenant.id, 1)
    assert [
        i["data"]["n"] for i in (await page(client, headers, after=empty["next_cursor"]))["items"]
    ] == [1]


async def test_a_transaction_that_commits_late_is_not_skipped(client, make_tenant, database):
    tenant = await make_tenant()
    headers = await tenant.headers("events:read")
    _, cursor = await drain(client, headers, None)
    async with database.transaction(tenant.id) as slow:
        # Written first (and stamped first), committed last.
        await record_event(slow, tenant.id, "test.happened", {"n": 1})
        await record(database, tenant.id, 2)
        seen, cursor = await drain(client, headers, cursor)
        assert seen == [2]
    seen, cursor = await drain(client, headers, cursor)
    assert seen == [1]


async def test_an_event_that_becomes_visible_late_is_not_skipped(client, make_tenant, database):
    tenant = await make_tenant()
    headers = await tenant.headers("events:read")
    _, cursor = await drain(client, headers, None)
    await record(database, tenant.id, 1, visible_at=sa.func.now() + timedelta(seconds=1.5))
    await record(database, tenant.id, 2)
    seen, cursor = await drain(client, headers, cursor)
    assert seen == [2]
    await asyncio.sleep(1.6)
    seen, cursor = await drain(client, headers, cursor)
    assert seen == [1]
    assert (await drain(client, headers, cursor))[0] == []


async def test_readers_resuming_during_concurrent_writes_miss_and_repeat_nothing(
    client, make_tenant, database
):
    tenant = await make_tenant()
    headers = await tenant.headers("events:read")
    numbers = iter(range(1, 10_000))
    written: list[int] = []
    writing = True

    async def writer(seed: int) -> None:
        rng = random.Random(seed)
        for _ in range(15):
            n = next(numbers)
            kind = rng.random()
            if kind < 0.3:
                # A slow transaction: stamped when it starts, committed later.
                async with database.transaction(tenant.id) as session:
                    await record_event(session, tenant.id, "test.happened", {"n": n})
                    await asyncio.sleep(rng.uniform(0.05, 0.4))
            elif kind < 0.6:
                delay = timedelta(seconds=rng.uniform(0, 1.0))
                await record(database, tenant.id, n, visible_at=sa.func.now() + delay)
            else:
                await record(database, tenant.id, n)
            written.append(n)
            await asyncio.sleep(rng.uniform(0, 0.05))

    async def reader() -> list[int]:
        seen: list[int] = []
        cursor = None
        while writing:
            got, cursor = await drain(client, headers, cursor, limit=str(random.randint(1, 4)))
            seen.extend(got)
            await asyncio.sleep(0.02)
        await asyncio.sleep(1.2)  # the longest delay
        got, cursor = await drain(client, headers, cursor)
        return seen + got

    readers = [asyncio.create_task(reader()) for _ in range(3)]
    await asyncio.gather(*(writer(seed) for seed in range(4)))
    writing = False
    results = await asyncio.gather(*readers)
    for seen in results:
        assert len(seen) == len(set(seen)), "an event came twice"
        assert sorted(seen) == sorted(written), "an event was missed"
    # Every reader saw one and the same order: positions are the tenant's, not the reader's.
    assert results[0] == results[1] == results[2]
