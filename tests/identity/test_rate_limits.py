"""Rate limits per tenant (not per address), a stricter token endpoint, one budget across replicas.

Each test runs its own app instances with low limits on the shared database (the session
`settings` keep their high limits), with the limiter's clock frozen inside one minute so a
window boundary cannot fall in the middle of a test.
"""

from __future__ import annotations

import base64
import random
from typing import Any

from tests.identity.conftest import another_app, assert_problem, bearer
from wg_api.identity.rate_limit import LIMITER_STATE_KEY, WINDOW_SECONDS, RateLimiter

YEAR_2001 = 978_307_200


def frozen_mid_window() -> float:
    """The middle of a minute of 2001 that no other test uses, so no other app's counts mix in."""
    minute = random.randrange(1_000_000)
    return YEAR_2001 + minute * WINDOW_SECONDS + 30.0


def freeze(app: Any, at: float) -> RateLimiter:
    limiter: RateLimiter = app.state[LIMITER_STATE_KEY]
    limiter.clock = lambda: at
    return limiter


def basic(client_id: str, secret: str) -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(f"{client_id}:{secret}".encode()).decode()}


async def test_the_budget_is_per_tenant_not_per_client_or_address(
    settings, database, client, make_tenant
):
    tenant, neighbour = await make_tenant(), await make_tenant()
    admin = await tenant.headers()
    second = (await client.post("/v1/api-clients", json={"name": "second"}, headers=admin)).json()
    second_token = (
        await client.post(
            "/oauth/token",
            data={"grant_type": "client_credentials"},
            headers=basic(second["client_id"], second["client_secret"]),
        )
    ).json()["access_token"]

    async with another_app(settings, database, rate_limit_per_minute=3) as (http, app):
        freeze(app, frozen_mid_window())
        remaining = []
        for headers in (admin, bearer(second_token), admin):
            response = await http.get("/v1/me", headers=headers)
            assert response.status_code == 200
            assert response.headers["ratelimit-limit"] == "3"
            assert response.headers["ratelimit-policy"] == f"3;w={WINDOW_SECONDS}"
            assert int(response.headers["ratelimit-reset"]) == 30
            remaining.append(response.headers["ratelimit-remaining"])
        assert remaining == ["2", "1", "0"]

        # Both of the tenant's clients are now refused: the budget is the tenant's.
        for headers in (admin, bearer(second_token)):
            refused = await http.get("/v1/me", headers=headers)
            body = assert_problem(refused, 429)
            assert body["type"] == "/problems/rate-limited"
            assert refused.headers["retry-after"] == "30"
            assert refused.headers["ratelimit-remaining"] == "0"
            assert refused.headers["ratelimit-limit"] == "3"
        # Writes are refused before they happen.
        write = await http.post("/v1/api-clients", json={"name": "late"}, headers=admin)
        assert_problem(write, 429)
        listed = (await client.get("/v1/api-clients", headers=admin)).json()["items"]
        assert [c["name"] for c in listed] == ["tests", "second"]

        # Another tenant, calling from the very same address, is untouched.
        other = await http.get("/v1/me", headers=await neighbour.headers())
        assert other.status_code == 200
        assert other.headers["ratelimit-remaining"] == "2"


async def test_a_new_minute_brings_a_new_budget(settings, database, make_tenant):
    tenant = await make_tenant()
    headers = await tenant.headers()
    async with another_app(settings, database, rate_limit_per_minute=1) as (http, app):
        start = frozen_mid_window()
        limiter = freeze(app, start)
        assert (await http.get("/v1/me", headers=headers)).status_code == 200
        assert_problem(await http.get("/v1/me", headers=headers), 429)
        limiter.clock = lambda: start + WINDOW_SECONDS
        assert (await http.get("/v1/me", headers=headers)).status_code == 200


async def test_the_token_endpoint_has_its_own_stricter_limit(settings, database, make_tenant):
    tenant, other = await make_tenant(), await make_tenant()
    async with another_app(
        settings,
        database,
        rate_limit_per_minute=1000,
        token_rate_limit_per_minute=2,
        unauthenticated_per_minute=2,
    ) as (http, app):
        freeze(app, frozen_mid_window())
        form = {"grant_type": "client_credentials"}
        for _ in range(2):
            ok = await http.post(
                "/oauth/token", data=form, headers=basic(tenant.client_id, tenant.client_secret)
            )
            assert ok.status_code == 200
        refused = await http.post(
            "/oauth/token", data=form, headers=basic(tenant.client_id, tenant.client_secret)
        )
        assert refused.status_code == 429
        assert refused.json()["error"] == "slow_down"
        assert refused.headers["retry-after"] == "30"
        assert refused.headers["ratelimit-limit"] == "2"
        assert refused.headers["cache-control"] == "no-store"
        # Form-field authentication counts against the same client.
        by_form = await http.post(
            "/oauth/token",
            data={**form, "client_id": tenant.client_id, "client_secret": tenant.client_secret},
        )
        assert by_form.status_code == 429
        # Another client is not affected.
        theirs = await http.post(
            "/oauth/token", data=form, headers=basic(other.client_id, other.client_secret)
        )
        assert theirs.status_code == 200
        # Made-up client ids cannot each buy a fresh budget: they spend the caller's address's
        # (which the right secrets above did not: a client that authenticates pays nothing).
        answers = []
        for i in range(3):
            guess = await http.post(
                "/oauth/token", data=form, headers=basic(f"wgc_guess{i}", "wgs_nope")
            )
            answers.append(guess.status_code)
        assert answers == [401, 401, 429]


async def test_replicas_sharing_the_database_share_the_budget(settings, database, make_tenant):
    tenant = await make_tenant()
    headers = await tenant.headers()
    at = frozen_mid_window()
    async with (
        another_app(settings, database, rate_limit_per_minute=4) as (first, first_app),
        another_app(settings, database, rate_limit_per_minute=4) as (second, second_app),
    ):
        one, two = freeze(first_app, at), freeze(second_app, at)
        for _ in range(2):
            assert (await first.get("/v1/me", headers=headers)).status_code == 200
        assert (await second.get("/v1/me", headers=headers)).status_code == 200
        await one.flush()
        await two.flush()
        await one.flush()

        # The first replica knows the second's request: one left for the tenant, not two.
        last = await first.get("/v1/me", headers=headers)
        assert last.status_code == 200
        assert last.headers["ratelimit-remaining"] == "0"
        assert_problem(await first.get("/v1/me", headers=headers), 429)
        await one.flush()
        await two.flush()
        # The second replica served one request itself, yet the tenant's budget is spent.
        assert_problem(await second.get("/v1/me", headers=headers), 429)
