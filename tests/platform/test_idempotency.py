"""Idempotency-Key on POST, exactly as api.md says, through a route that records an event."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import sqlalchemy as sa

from tests.conftest import superuser_transaction
from tests.platform.conftest import GATES, WIDGET_CREATED, Gate, count_events

WIDGETS = "/v1/test/widgets"


def key() -> str:
    return f"key-{uuid.uuid4()}"


async def post_widget(http, tenant, idempotency_key: str | None, payload: Any, path=WIDGETS):
    headers = await tenant.headers()
    if idempotency_key is not None:
        headers["Idempotency-Key"] = idempotency_key
    return await http.post(path, headers=headers, json=payload)


async def test_same_key_and_body_replays_the_first_response(test_app_client, make_tenant, database):
    tenant = await make_tenant()
    k = key()
    first = await post_widget(test_app_client, tenant, k, {"name": "gear", "quantity": 2})
    assert first.status_code == 201, first.text
    assert "idempotent-replayed" not in first.headers

    again = await post_widget(test_app_client, tenant, k, {"name": "gear", "quantity": 2})
    assert again.status_code == 201
    assert again.headers["idempotent-replayed"] == "true"
    assert again.content == first.content
    assert again.json()["id"] == first.json()["id"]
    assert again.headers["location"] == first.headers["location"]
    assert again.headers["content-type"] == first.headers["content-type"]
    assert await count_events(database, tenant.id, WIDGET_CREATED) == 1


async def test_without_a_key_every_post_runs(test_app_client, make_tenant, database):
    tenant = await make_tenant()
    first = await post_widget(test_app_client, tenant, None, {"name": "gear"})
    second = await post_widget(test_app_client, tenant, None, {"name": "gear"})
    assert first.status_code == second.status_code == 201
    assert first.json()["id"] != second.json()["id"]
    assert await count_events(database, tenant.id, WIDGET_CREATED) == 2


async def test_same_key_with_another_body_is_422(test_app_client, make_tenant, database):
    tenant = await make_tenant()
    k = key()
    first = await post_widget(test_app_client, tenant, k, {"name": "gear", "quantity": 2})
    assert first.status_code == 201
    other = await post_widget(test_app_client, tenant, k, {"name": "gear", "quantity": 3})
    assert other.status_code == 422, other.text
    assert other.headers["content-type"] == "application/problem+json"
    assert other.json()["type"] == "/problems/idempotency-key-reused"
    assert "idempotent-replayed" not in other.headers
    # The same key on another route is another request too.
    elsewhere = await post_widget(
        test_app_client, tenant, k, {"name": "gear", "quantity": 2}, path="/v1/test/notes"
    )
    assert elsewhere.status_code == 422
    assert elsewhere.json()["type"] == "/problems/idempotency-key-reused"
    assert await count_events(database, tenant.id, WIDGET_CREATED) == 1


async def test_a_retry_while_the_first_is_running_is_409(test_app_client, make_tenant, database):
    tenant = await make_tenant()
    k = key()
    name = f"held-{uuid.uuid4().hex[:8]}"
    gate = GATES[name] = Gate()
    try:
        first = asyncio.create_task(
            post_widget(test_app_client, tenant, k, {"name": name}, path="/v1/test/held-widgets")
        )
        await asyncio.wait_for(gate.entered.wait(), timeout=10)

        retry = await post_widget(
            test_app_client, tenant, k, {"name": name}, path="/v1/test/held-widgets"
        )
        assert retry.status_code == 409, retry.text
        assert retry.headers["content-type"] == "application/problem+json"
        assert retry.json()["type"] == "/problems/idempotency-key-in-use"

        gate.release.set()
        done = await asyncio.wait_for(first, timeout=10)
    finally:
        gate.release.set()
        GATES.pop(name, None)
    assert done.status_code == 201, done.text

    replay = await post_widget(
        test_app_client, tenant, k, {"name": name}, path="/v1/test/held-widgets"
    )
    assert replay.headers["idempotent-replayed"] == "true"
    assert replay.json()["id"] == done.json()["id"]
    assert await count_events(database, tenant.id, WIDGET_CREATED) == 1


async def test_keys_are_scoped_to_the_tenant(test_app_client, make_tenant, database):
    alice, bob = await make_tenant(), await make_tenant()
    k = key()
    payload = {"name": "shared-key"}
    first = await post_widget(test_app_client, alice, k, payload)
    theirs = await post_widget(test_app_client, bob, k, payload)
    assert first.status_code == theirs.status_code == 201
    assert "idempotent-replayed" not in theirs.headers
    assert theirs.json()["id"] != first.json()["id"]
    # A different body from the other tenant is not a "reused key" either.
    other = await post_widget(test_app_client, bob, key(), {"name": "x"})
    assert other.status_code == 201
    assert await count_events(database, alice.id, WIDGET_CREATED) == 1
    assert await count_events(database, bob.id, WIDGET_CREATED) == 2


async def test_key_length_limits(test_app_client, make_tenant, database):
    tenant = await make_tenant()
    too_long = await post_widget(test_app_client, tenant, "k" * 256, {"name": "a"})
    assert too_long.status_code == 400, too_long.text
    assert too_long.headers["content-type"] == "application/problem+json"
    assert too_long.json()["type"] == "/problems/invalid-request"
    assert "Idempotency-Key" in too_long.json()["detail"]
    assert await count_events(database, tenant.id, WIDGET_CREATED) == 0

    longest = await post_widget(test_app_client, tenant, "k" * 255, {"name": "a"})
    assert longest.status_code == 201, longest.text
    empty = await post_widget(test_app_client, tenant, "", {"name": "a"})
    assert empty.status_code == 400


async def test_failed_requests_are_not_stored(test_app_client, make_tenant, database):
    tenant = await make_tenant()
    k = key()
    bad = await post_widget(test_app_client, tenant, k, {"name": "a", "quantity": 1000})
    assert bad.status_code == 422
    assert bad.json()["type"] == "/problems/validation-failed"
    bad_again = await post_widget(test_app_client, tenant, k, {"name": "a", "quantity": 1000})
    assert bad_again.status_code == 422
    assert "idempotent-replayed" not in bad_again.headers

    # The key is still free: a corrected request with it runs (no "key reused" answer).
    good = await post_widget(test_app_client, tenant, k, {"name": "a", "quantity": 10})
    assert good.status_code == 201, good.text
    assert "idempotent-replayed" not in good.headers
    assert await count_events(database, tenant.id, WIDGET_CREATED) == 1


async def test_server_errors_are_not_stored(test_app_client, make_tenant, database):
    tenant = await make_tenant()
    k = key()
    failed = await post_widget(
        test_app_client, tenant, k, {"name": "a"}, path="/v1/test/failing-widgets"
    )
    assert failed.status_code == 500
    again = await post_widget(
        test_app_client, tenant, k, {"name": "a"}, path="/v1/test/failing-widgets"
    )
    assert again.status_code == 500
    assert "idempotent-replayed" not in again.headers
    assert await count_events(database, tenant.id, WIDGET_CREATED) == 0


async def test_keys_are_kept_24_hours(test_app_client, make_tenant, database):
    tenant = await make_tenant()
    k = key()
    first = await post_widget(test_app_client, tenant, k, {"name": "kept"})
    assert first.status_code == 201
    async with superuser_transaction(database) as session:
        kept_for = await session.scalar(
            sa.text("SELECT expires_at - created_at FROM idempotency_keys WHERE tenant_id = :t"),
            {"t": tenant.id},
        )
    assert kept_for is not None
    assert kept_for.total_seconds() >= 24 * 3600


async def test_an_expired_key_runs_again(test_app_client, make_tenant, database):
    tenant = await make_tenant()
    k = key()
    first = await post_widget(test_app_client, tenant, k, {"name": "old"})
    assert first.status_code == 201
    async with superuser_transaction(database) as session:
        expired = await session.execute(
            sa.text(
                "UPDATE idempotency_keys SET expires_at = now() - interval '1 second' "
                "WHERE tenant_id = :t"
            ),
            {"t": tenant.id},
        )
        assert expired.rowcount == 1

    fresh = await post_widget(test_app_client, tenant, k, {"name": "old"})
    assert fresh.status_code == 201, fresh.text
    assert "idempotent-replayed" not in fresh.headers
    assert fresh.json()["id"] != first.json()["id"]
    # The fresh response is stored in place of the expired one.
    replay = await post_widget(test_app_client, tenant, k, {"name": "old"})
    assert replay.headers["idempotent-replayed"] == "true"
    assert replay.json()["id"] == fresh.json()["id"]
    assert await count_events(database, tenant.id, WIDGET_CREATED) == 2


async def new_client_headers(http, tenant, **body: Any) -> dict[str, str]:
    """Headers with a token of a new client of `tenant` (another integration or person)."""
    made = await http.post(
        "/v1/api-clients", json={"name": "another", **body}, headers=await tenant.headers()
    )
    assert made.status_code == 201, made.text
    form = {"grant_type": "client_credentials"}
    auth = (made.json()["client_id"], made.json()["client_secret"])
    token = await http.post("/oauth/token", data=form, auth=auth)
    return {"Authorization": f"Bearer {token.json()['access_token']}"}


async def test_a_viewer_reusing_an_admins_key_and_body_gets_no_replay(
    test_app_client, make_tenant, database
):
    tenant = await make_tenant()
    k = key()
    body = {"name": "deploy bot", "role": "editor"}
    admin = {**await tenant.headers(), "Idempotency-Key": k}
    first = await test_app_client.post("/v1/api-clients", json=body, headers=admin)
    assert first.status_code == 201, first.text

    viewer = {**await new_client_headers(test_app_client, tenant), "Idempotency-Key": k}
    stolen = await test_app_client.post("/v1/api-clients", json=body, headers=viewer)
    assert stolen.status_code == 403, stolen.text
    assert "idempotent-replayed" not in stolen.headers
    assert first.json()["client_id"] not in stolen.text
    # The admin still gets its own replay.
    again = await test_app_client.post("/v1/api-clients", json=body, headers=admin)
    assert again.headers["idempotent-replayed"] == "true"
    assert again.json()["id"] == first.json()["id"]


async def test_two_integrations_with_the_same_keys_each_get_their_own_write(
    test_app_client, make_tenant, database
):
    tenant = await make_tenant()
    one = await new_client_headers(test_app_client, tenant, role="editor")
    other = await new_client_headers(test_app_client, tenant, role="editor")
    payload = {"name": "nightly", "quantity": 3}
    answers = [
        await test_app_client.post(
            WIDGETS, json=payload, headers={**headers, "Idempotency-Key": "sync-2026-10-01"}
        )
        for headers in (one, other, one, other)
    ]
    assert [a.status_code for a in answers] == [201] * 4
    assert [a.headers.get("idempotent-replayed") for a in answers] == [None, None, "true", "true"]
    assert answers[0].json()["id"] != answers[1].json()["id"]
    assert answers[2].json() == answers[0].json()
    assert answers[3].json() == answers[1].json()
    assert await count_events(database, tenant.id, WIDGET_CREATED) == 2


async def test_a_token_with_other_scopes_is_another_caller(test_app_client, make_tenant):
    tenant = await make_tenant()
    k = key()
    full = {**await tenant.headers(), "Idempotency-Key": k}
    fewer = {**await tenant.headers("findings:read"), "Idempotency-Key": k}
    first = await test_app_client.post("/v1/api-clients", json={"name": "x"}, headers=full)
    assert first.status_code == 201
    narrower = await test_app_client.post("/v1/api-clients", json={"name": "x"}, headers=fewer)
    assert narrower.status_code == 403
    assert "idempotent-replayed" not in narrower.headers


def test_every_v1_write_replays_after_its_guards() -> None:
    """A handler with its own before_request would replace the one that claims keys."""
    from wg_api.app import create_app
    from wg_api.platform.transaction import replay_idempotent

    app = create_app()
    writes = [
        (route.path, handler)
        for route in app.routes
        for handler in getattr(route, "route_handlers", [])
        if route.path.startswith("/v1") and "POST" in getattr(handler, "http_methods", ())
    ]
    assert len(writes) >= 10
    for path, handler in writes:
        assert handler.resolve_before_request() is replay_idempotent, path
