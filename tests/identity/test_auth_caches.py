"""What each replica caches while authenticating, and for how long (fake clocks, real database)."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import httpx
import pytest

from tests.identity.conftest import another_app, assert_unauthorized, bearer
from wg_api.identity.auth import Authenticator, ExpiringCache
from wg_api.identity.keys import SigningKeys
from wg_api.identity.provider_keys import JWKS_MAX_AGE_SECONDS, JWKSCache
from wg_api.platform.errors import Unauthorized
from wg_api.platform.outbound import OutboundClient


class FakeClock:
    def __init__(self) -> None:
        self.now = 5000.0

    def __call__(self) -> float:
        return self.now


async def new_client_token(
    client: httpx.AsyncClient, tenant: Any, role: str = "editor"
) -> tuple[str, str]:
    headers = await tenant.headers()
    made = (
        await client.post("/v1/api-clients", json={"name": "cached", "role": role}, headers=headers)
    ).json()
    token = await client.post(
        "/oauth/token",
        data={
            "grant_type": "client_credentials",
            "client_id": made["client_id"],
            "client_secret": made["client_secret"],
        },
    )
    return made["id"], token.json()["access_token"]


async def test_a_revoked_clients_token_works_until_the_window_ends(
    client, settings, database, make_tenant
):
    tenant = await make_tenant()
    client_uuid, token = await new_client_token(client, tenant)
    clock = FakeClock()
    authenticator = Authenticator(
        replace(settings, revocation_cache_seconds=30),
        database,
        SigningKeys.load_or_create(settings.key_file),
        clock=clock,
    )
    assert (await authenticator.authenticate(token)).id.hex == client_uuid.replace("-", "")

    revoked = await client.delete(f"/v1/api-clients/{client_uuid}", headers=await tenant.headers())
    assert revoked.status_code == 204
    clock.now += 29.9
    assert (await authenticator.authenticate(token)).type == "client"  # still trusted
    clock.now += 0.1
    with pytest.raises(Unauthorized, match="revoked"):
        await authenticator.authenticate(token)
    clock.now += 1000  # and it stays refused
    with pytest.raises(Unauthorized):
        await authenticator.authenticate(token)


async def test_the_replica_that_revokes_stops_the_token_at_once(
    client, settings, database, make_tenant
):
    tenant = await make_tenant()
    client_uuid, token = await new_client_token(client, tenant)
    admin = await tenant.headers()
    async with (
        another_app(settings, database, revocation_cache_seconds=30) as (revoking, _),
        another_app(settings, database, revocation_cache_seconds=30) as (other, _),
    ):
        for replica in (revoking, other):
            assert (await replica.get("/v1/me", headers=bearer(token))).status_code == 200
        assert (
            await revoking.delete(f"/v1/api-clients/{client_uuid}", headers=admin)
        ).status_code == 204
        assert_unauthorized(await revoking.get("/v1/me", headers=bearer(token)))
        # The other replica trusts its cached answer until its window (30 s here) ends; the
        # previous test shows that it then refuses.
        assert (await other.get("/v1/me", headers=bearer(token))).status_code == 200


def test_the_cache_is_bounded_and_expires():
    clock = FakeClock()
    cache: ExpiringCache[str, int] = ExpiringCache(ttl=10, clock=clock, max_entries=4)
    for i in range(10):
        cache.put(f"k{i}", i)
        assert len(cache._entries) <= 4
    assert cache.get("k9") == (True, 9)
    assert cache.get("k0") == (False, None)
    clock.now += 10
    assert cache.get("k9") == (False, None)
    # Expired entries make room first.
    cache.put("fresh", 1)
    assert list(cache._entries) == ["fresh"]
    # A zero time-to-live caches nothing.
    never: ExpiringCache[str, int] = ExpiringCache(ttl=0, clock=clock)
    never.put("a", 1)
    assert never.get("a") == (False, None)


async def test_key_sets_are_refetched_after_an_hour(local_idp):
    idp = local_idp()
    clock = FakeClock()
    outbound = OutboundClient(allow_loopback=True)
    cache = JWKSCache(outbound, clock=clock)
    try:
        first = await cache.key_set(idp.jwks_uri, idp.published[0])
        assert [k.kid for k in first.keys] == idp.published
        clock.now += JWKS_MAX_AGE_SECONDS - 1
        await cache.key_set(idp.jwks_uri, idp.published[0])
        assert idp.fetches[idp.jwks_path] == 1
        # A key the provider withdrew disappears after the maximum age.
        withdrawn = idp.published.pop(0)
        idp.add_key()
        clock.now += 1
        refreshed = await cache.key_set(idp.jwks_uri, None)
        assert idp.fetches[idp.jwks_path] == 2
        assert withdrawn not in [k.kid for k in refreshed.keys]
        # An unreachable provider before any good fetch is an error, not an empty key set.
        other = local_idp()
        other.down = True
        with pytest.raises(ValueError, match="answered 503"):
            await cache.key_set(other.jwks_uri, None)
    finally:
        await outbound.aclose()
