"""Floods before authentication: one address's bad tokens and wrong secrets cost it, not others.

Each test runs its own app instance with low limits, and one HTTP client per caller address
(httpx's ASGI transport sets the ASGI `client`).
"""

from __future__ import annotations

import asyncio
import base64
import json
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import replace
from typing import Any

import httpx

from tests.conftest import serve_in_loop
from wg_api.app import asgi_app
from wg_api.identity import repository
from wg_api.identity.rate_limit import TokenBuckets, client_address

FLOODER = "198.51.100.66"
TENANT_ADDRESS = "203.0.113.10"
FORM = {"grant_type": "client_credentials"}


@asynccontextmanager
async def callers(
    settings: Any, database: Any, addresses: list[str], **overrides: Any
) -> AsyncIterator[list[httpx.AsyncClient]]:
    served = asgi_app(replace(settings, **overrides), database)
    async with serve_in_loop(served):
        clients = [
            httpx.AsyncClient(
                transport=httpx.ASGITransport(app=served, client=(address, 40000)),
                base_url="http://testserver.local",
            )
            for address in addresses
        ]
        try:
            yield clients
        finally:
            for http in clients:
                await http.aclose()


def basic(client_id: str, secret: str) -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(f"{client_id}:{secret}".encode()).decode()}


def unsigned(claims: dict[str, Any]) -> str:
    def part(value: dict[str, Any]) -> str:
        return base64.urlsafe_b64encode(json.dumps(value).encode()).rstrip(b"=").decode()

    return f"{part({'alg': 'RS256', 'kid': 'k'})}.{part(claims)}.c2lnbmF0dXJl"


def bad_tokens(settings: Any, count: int) -> list[dict[str, str]]:
    """Bearer headers that all fail: unknown issuers (each a database lookup), forged service
    tokens, garbage, and no token at all."""
    headers: list[dict[str, str]] = []
    for i in range(count):
        kind = i % 4
        if kind == 0:
            token = unsigned({"iss": f"https://idp-{uuid.uuid4().hex}.example", "sub": "x"})
        elif kind == 1:
            token = unsigned({"iss": settings.public_url, "sub": "wgc_x"})
        elif kind == 2:
            token = "not.a.token"
        else:
            headers.append({})
            continue
        headers.append({"Authorization": f"Bearer {token}"})
    return headers


class LookupCounter:
    """Counts the database lookups made for callers not yet known, and their concurrency."""

    def __init__(self, monkeypatch: Any, delay: float = 0.0) -> None:
        self.calls = 0
        self.running = 0
        self.most_at_once = 0
        for name in ("provider_for_issuer", "client_for_token"):
            monkeypatch.setattr(repository, name, self._wrap(getattr(repository, name), delay))

    def _wrap(self, lookup: Any, delay: float) -> Any:
        async def counted(*args: Any, **kwargs: Any) -> Any:
            self.calls += 1
            self.running += 1
            self.most_at_once = max(self.most_at_once, self.running)
            try:
                await asyncio.sleep(delay)
                return await lookup(*args, **kwargs)
            finally:
                self.running -= 1

        return counted


async def test_a_flood_from_one_address_leaves_other_tenants_untouched(
    settings, database, make_tenant, monkeypatch
):
    tenant = await make_tenant()
    lookups = LookupCounter(monkeypatch)
    async with callers(
        settings,
        database,
        [FLOODER, TENANT_ADDRESS],
        unauthenticated_per_minute=20,
        token_failures_per_minute=5,
        token_rate_limit_per_minute=10,
        rate_limit_per_minute=100_000,
    ) as (flooder, own):

        async def flood() -> list[httpx.Response]:
            answers = []
            for headers in bad_tokens(settings, 120):
                answers.append(await flooder.get("/v1/me", headers=headers))
                # Wrong secrets for the tenant's own client id (it is in every token it holds).
                answers.append(
                    await flooder.post(
                        "/oauth/token", data=FORM, headers=basic(tenant.client_id, "wgs_wrong")
                    )
                )
            return answers

        async def work() -> list[httpx.Response]:
            answers = []
            for _ in range(4):
                token = await own.post(
                    "/oauth/token", data=FORM, headers=basic(tenant.client_id, tenant.client_secret)
                )
                answers.append(token)
                bearer = {"Authorization": f"Bearer {token.json()['access_token']}"}
                for _ in range(10):
                    answers.append(await own.get("/v1/me", headers=bearer))
                    await asyncio.sleep(0)
            return answers

        flooded, worked = await asyncio.gather(flood(), work())

    # The tenant saw no error at all, though a stranger spent many wrong secrets on its client.
    assert [a.status_code for a in worked] == [200] * len(worked)
    # The flooding address got its budget's worth of 401s, then 429 with Retry-After.
    statuses = [a.status_code for a in flooded]
    assert set(statuses) == {401, 429}
    assert statuses.count(401) <= 20
    assert statuses.count(429) >= len(flooded) - 20
    for answer in flooded:
        if answer.status_code == 429:
            assert int(answer.headers["retry-after"]) >= 1
    # What reached the database for the stranger stayed within that budget; the tenant's own
    # token requests are the rest.
    assert lookups.calls <= 20 + 4


async def test_failed_secrets_count_per_address_and_client(
    settings, database, make_tenant, monkeypatch
):
    victim, neighbour = await make_tenant(), await make_tenant()
    async with callers(
        settings,
        database,
        [FLOODER, TENANT_ADDRESS],
        unauthenticated_per_minute=100,
        token_failures_per_minute=3,
        token_rate_limit_per_minute=2,
    ) as (stranger, own):
        guesses = [
            await stranger.post(
                "/oauth/token", data=FORM, headers=basic(victim.client_id, f"wgs_{i}")
            )
            for i in range(6)
        ]
        assert [g.status_code for g in guesses] == [401, 401, 401, 429, 429, 429]
        assert guesses[-1].json()["error"] == "slow_down"
        assert int(guesses[-1].headers["retry-after"]) >= 1
        # Even the right secret is not checked from there any more...
        right = basic(victim.client_id, victim.client_secret)
        assert (await stranger.post("/oauth/token", data=FORM, headers=right)).status_code == 429
        # ...while the same address still reaches other clients,
        theirs = basic(neighbour.client_id, neighbour.client_secret)
        assert (await stranger.post("/oauth/token", data=FORM, headers=theirs)).status_code == 200
        # and the victim, from its own address, has its whole budget of 2 token requests.
        mine = [await own.post("/oauth/token", data=FORM, headers=right) for _ in range(3)]
        assert [m.status_code for m in mine] == [200, 200, 429]


async def test_unauthenticated_lookups_hold_at_most_a_quarter_of_the_pool(
    settings, database, make_tenant, monkeypatch
):
    """A flood spread over many addresses, each within its budget, with slow lookups."""
    tenant = await make_tenant()
    lookups = LookupCounter(monkeypatch, delay=0.05)
    addresses = [f"192.0.2.{i}" for i in range(1, 41)]
    async with callers(settings, database, [TENANT_ADDRESS, *addresses], db_pool_size=8) as (
        own,
        *flooders,
    ):

        async def one(http: httpx.AsyncClient) -> int:
            token = unsigned({"iss": f"https://idp-{uuid.uuid4().hex}.example", "sub": "x"})
            answer = await http.get("/v1/me", headers={"Authorization": f"Bearer {token}"})
            return answer.status_code

        bearer = await tenant.headers()

        async def work() -> list[int]:
            return [(await own.get("/v1/me", headers=bearer)).status_code for _ in range(10)]

        flooded, worked = await asyncio.gather(
            asyncio.gather(*(one(http) for http in flooders)), work()
        )
    assert worked == [200] * 10
    assert set(flooded) <= {401, 503}
    assert lookups.most_at_once == 2  # 8 // 4


def test_buckets_refill_and_stay_bounded() -> None:
    now = [0.0]
    buckets = TokenBuckets(60, max_entries=3, clock=lambda: now[0])
    assert [buckets.take("a") for _ in range(60)] == [0] * 60
    assert buckets.take("a") == 1  # one token a second
    now[0] += 1
    assert buckets.take("a") == 0
    buckets.give_back("a")
    assert buckets.take("a") == 0
    for key in ("b", "c", "d"):
        buckets.take(key)
    assert len(buckets) == 3  # "a" was the least recently used


def test_addresses_are_counted_by_host_and_ipv6_by_its_64() -> None:
    assert client_address({"client": ("203.0.113.9", 1)}) == "203.0.113.9"
    assert client_address({"client": ("::ffff:203.0.113.9", 1)}) == "203.0.113.9"
    one = client_address({"client": ("2001:db8:1:2::1", 1)})
    assert one == client_address({"client": ("2001:db8:1:2:ffff::9", 1)}) == "2001:db8:1:2::/64"
    assert client_address({}) == "unknown"


async def test_an_oversized_issuer_is_refused_without_a_lookup(settings, database, monkeypatch):
    lookups = LookupCounter(monkeypatch)
    async with callers(settings, database, [FLOODER]) as (http,):
        token = unsigned({"iss": "https://" + "x" * 5000 + ".example", "sub": "x"})
        answer = await http.get("/v1/me", headers={"Authorization": f"Bearer {token}"})
    assert answer.status_code == 401
    assert lookups.calls == 0
