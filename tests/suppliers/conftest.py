"""Helpers for the supplier and findings tests: unique factories, linking, comparing 404s.

The supplier registry is common to every tenant of a test run, so each test makes its own
factories with a unique token in the name and address.
"""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import httpx

PROBLEM_JSON = "application/problem+json"


def unique() -> str:
    return uuid.uuid4().hex[:8]


def factory(**overrides: Any) -> dict[str, Any]:
    """A fictional factory in Dongguan, different from every other one made by `factory()`."""
    token = unique()
    body: dict[str, Any] = {
        "name": f"Kestrel Bay Garment {token} Co., Ltd.",
        "address": f"No. 18 Industrial Rd., Block {token}, Humen Town, Dongguan",
        "country": "CN",
        "province": "Guangdong",
        "city": "Dongguan",
        "sector": "apparel",
    }
    body.update(overrides)
    return body


def os_id() -> str:
    """A well-formed, unique Open Supply Hub OS ID (2 letters, 7 digits, 6 alphanumerics)."""
    return f"CN{uuid.uuid4().int % 10**7:07d}{uuid.uuid4().hex[:6].upper()}"


async def link(
    client: httpx.AsyncClient, headers: dict[str, str], body: dict[str, Any]
) -> dict[str, Any]:
    response = await client.post("/v1/suppliers", json=body, headers=headers)
    assert response.status_code in (200, 201), response.text
    result: dict[str, Any] = response.json()
    return result


async def new_supplier(
    client: httpx.AsyncClient, headers: dict[str, str], **overrides: Any
) -> dict[str, Any]:
    """Create a fresh supplier linked to the caller; answers its canonical fields."""
    result = await link(client, headers, factory(**overrides))
    assert result["match"]["status"] == "created", result
    supplier: dict[str, Any] = result["supplier"]
    return supplier


async def assert_hidden(
    client: httpx.AsyncClient,
    method: str,
    path: str,
    random_path: str,
    headers: dict[str, str],
    **kwargs: Any,
) -> None:
    """`path` (another tenant's resource) answers exactly what `random_path` (no resource) does."""
    theirs = await client.request(method, path, headers=headers, **kwargs)
    nobodys = await client.request(method, random_path, headers=headers, **kwargs)
    assert theirs.status_code == 404, theirs.text
    assert nobodys.status_code == 404, nobodys.text
    assert theirs.headers["content-type"] == PROBLEM_JSON
    assert theirs.json() == nobodys.json()
    assert theirs.content == nobodys.content


async def assert_forbidden(
    client: httpx.AsyncClient, method: str, path: str, headers: dict[str, str], **kwargs: Any
) -> dict[str, Any]:
    response = await client.request(method, path, headers=headers, **kwargs)
    assert response.status_code == 403, response.text
    assert response.headers["content-type"] == PROBLEM_JSON
    problem: dict[str, Any] = response.json()
    assert problem["type"] == "/problems/forbidden"
    return problem


async def events_of(
    client: httpx.AsyncClient, headers: dict[str, str], types: str, *, at_least: int = 1
) -> list[dict[str, Any]]:
    """The caller's events of `types`, waiting briefly until at least `at_least` are there."""
    items: list[dict[str, Any]] = []
    for _ in range(50):
        response = await client.get(
            "/v1/events", params={"types": types, "limit": 200}, headers=headers
        )
        assert response.status_code == 200, response.text
        items = response.json()["items"]
        if len(items) >= at_least:
            return items
        await asyncio.sleep(0.05)
    return items
