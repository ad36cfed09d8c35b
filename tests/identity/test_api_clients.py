"""/v1/api-clients: tenant admins create, list, read, revoke and rotate machine clients."""

from __future__ import annotations

import base64
import hashlib
import uuid
from typing import Any

import httpx
import sqlalchemy as sa

from tests.conftest import superuser_transaction
from tests.identity.conftest import (
    assert_problem,
    assert_unauthorized,
    audit_actions,
    bearer,
    field_names,
    tenant_state,
)
from wg_api.identity.scopes import ROLE_SCOPES
from wg_api.platform.pagination import encode_cursor


async def request_token(
    client: httpx.AsyncClient, client_id: str, secret: str, scope: str | None = None
) -> httpx.Response:
    form = {"grant_type": "client_credentials"}
    if scope:
        form["scope"] = scope
    basic = base64.b64encode(f"{client_id}:{secret}".encode()).decode()
    return await client.post("/oauth/token", data=form, headers={"Authorization": f"Basic {basic}"})


async def create(client: httpx.AsyncClient, headers: dict[str, str], **body: Any) -> httpx.Response:
    return await client.post("/v1/api-clients", json={"name": "sync", **body}, headers=headers)


async def test_me_names_a_client_by_the_name_it_was_created_with(client, make_tenant):
    tenant = await make_tenant()
    headers = await tenant.headers()
    fixture_client = (await client.get("/v1/me", headers=headers)).json()["principal"]
    assert fixture_client["name"] == "tests"  # the fixture creates its client as "tests"
    made = (await create(client, headers, name="read-only sync")).json()
    token = await request_token(client, made["client_id"], made["client_secret"])
    me = (await client.get("/v1/me", headers=bearer(token.json()["access_token"]))).json()
    assert me["principal"] == {"type": "client", "id": made["id"], "name": "read-only sync"}
    assert not me["principal"]["name"].startswith("wgc_")


async def test_create_shows_the_secret_once_and_stores_only_its_hash(client, make_tenant, database):
    tenant = await make_tenant()
    headers = await tenant.headers()
    response = await create(client, headers, name="  nightly sync  ", role="editor")
    assert response.status_code == 201, response.text
    made = response.json()
    assert made["client_id"].startswith("wgc_")
    assert made["client_secret"].startswith("wgs_")
    assert len(made["client_secret"]) >= 40
    assert made["name"] == "nightly sync"
    assert made["role"] == "editor"
    assert made["scopes"] == sorted(ROLE_SCOPES["editor"])
    assert made["revoked_at"] is None
    assert made["token_url"].endswith("/oauth/token")
    assert response.headers["location"] == f"/v1/api-clients/{made['id']}"
    assert response.headers["cache-control"] == "no-store"

    # The secret works at the token endpoint, and the token acts for this tenant.
    token = await request_token(client, made["client_id"], made["client_secret"])
    assert token.status_code == 200, token.text
    me = (await client.get("/v1/me", headers=bearer(token.json()["access_token"]))).json()
    assert me["tenant"]["id"] == str(tenant.id)
    assert me["principal"] == {"type": "client", "id": made["id"], "name": "nightly sync"}
    assert me["role"] == "editor"

    # Never shown again: not in the list, not in the single read.
    listed = await client.get("/v1/api-clients", headers=headers)
    read = await client.get(f"/v1/api-clients/{made['id']}", headers=headers)
    for answer in (listed, read):
        assert answer.status_code == 200
        assert made["client_secret"] not in answer.text
        assert "client_secret" not in answer.text
    # Stored as a hash only.
    async with superuser_transaction(database) as session:
        stored = await session.scalar(
            sa.text("SELECT secret_hash FROM api_clients WHERE id = :id"), {"id": made["id"]}
        )
    assert bytes(stored) == hashlib.sha256(made["client_secret"].encode()).digest()


async def test_role_defaults_to_viewer_and_scopes_are_kept(client, make_tenant):
    tenant = await make_tenant()
    headers = await tenant.headers()
    viewer = await create(client, headers)
    assert viewer.status_code == 201
    assert viewer.json()["role"] == "viewer"
    assert viewer.json()["scopes"] == sorted(ROLE_SCOPES["viewer"])

    narrow = await create(
        client, headers, role="editor", scopes=["findings:write", "findings:read"]
    )
    assert narrow.json()["scopes"] == ["findings:read", "findings:write"]
    token = await request_token(client, narrow.json()["client_id"], narrow.json()["client_secret"])
    assert token.json()["scope"] == "findings:read findings:write"


async def test_list_is_paginated_oldest_first_and_only_the_tenants_own(client, make_tenant):
    tenant, other = await make_tenant(), await make_tenant()
    headers = await tenant.headers()
    await create(client, await other.headers(), name="not yours")
    made = [(await create(client, headers, name=f"c{i}")).json()["id"] for i in range(3)]

    first = await client.get("/v1/api-clients", params={"limit": 2}, headers=headers)
    assert first.status_code == 200
    page = first.json()
    assert len(page["items"]) == 2
    assert page["next_cursor"]
    assert 'rel="next"' in first.headers["link"]
    second = await client.get(
        "/v1/api-clients", params={"limit": 2, "cursor": page["next_cursor"]}, headers=headers
    )
    rest = second.json()
    assert rest["next_cursor"] is None
    ids = [item["id"] for item in page["items"] + rest["items"]]
    names = [item["name"] for item in page["items"] + rest["items"]]
    # The tenant's own admin client (made by the fixture) and the three made here; nothing else.
    assert names == ["tests", "c0", "c1", "c2"]
    assert ids[1:] == made


async def test_revoke_stops_new_tokens_and_live_tokens(client, make_tenant, database):
    tenant = await make_tenant()
    headers = await tenant.headers()
    made = (await create(client, headers, role="viewer")).json()
    live = (await request_token(client, made["client_id"], made["client_secret"])).json()
    assert (await client.get("/v1/me", headers=bearer(live["access_token"]))).status_code == 200

    revoked = await client.delete(f"/v1/api-clients/{made['id']}", headers=headers)
    assert revoked.status_code == 204, revoked.text

    again = await request_token(client, made["client_id"], made["client_secret"])
    assert again.status_code == 401
    assert again.json()["error"] == "invalid_client"
    # The tests run with WG_REVOCATION_CACHE_SECONDS=0: the live token stops at once.
    assert_unauthorized(await client.get("/v1/me", headers=bearer(live["access_token"])))

    shown = (await client.get(f"/v1/api-clients/{made['id']}", headers=headers)).json()
    assert shown["revoked_at"] is not None
    # Revoking again changes nothing and records nothing more.
    assert (
        await client.delete(f"/v1/api-clients/{made['id']}", headers=headers)
    ).status_code == 204
    assert (await audit_actions(database, tenant.id)).count("api_client.revoked") == 1
    # Rotating a revoked client is a conflict, not a way back in.
    rotated = await client.post(f"/v1/api-clients/{made['id']}/rotate-secret", headers=headers)
    assert_problem(rotated, 409)
    assert (
        await request_token(client, made["client_id"], made["client_secret"])
    ).status_code == 401


async def test_revoke_honours_if_match(client, make_tenant, database):
    tenant = await make_tenant()
    headers = await tenant.headers()
    made = (await create(client, headers)).json()
    read = await client.get(f"/v1/api-clients/{made['id']}", headers=headers)
    etag = read.headers["etag"]
    before = await tenant_state(database, tenant.id)

    stale = await client.delete(
        f"/v1/api-clients/{made['id']}", headers={**headers, "If-Match": '"stale"'}
    )
    assert_problem(stale, 412)
    assert await tenant_state(database, tenant.id) == before

    fresh = await client.delete(
        f"/v1/api-clients/{made['id']}", headers={**headers, "If-Match": etag}
    )
    assert fresh.status_code == 204


async def test_rotate_secret_replaces_the_old_one(client, make_tenant, database):
    tenant = await make_tenant()
    headers = await tenant.headers()
    made = (await create(client, headers, role="editor")).json()
    old_token = (await request_token(client, made["client_id"], made["client_secret"])).json()

    rotated = await client.post(f"/v1/api-clients/{made['id']}/rotate-secret", headers=headers)
    assert rotated.status_code == 200, rotated.text
    new = rotated.json()
    assert new["id"] == made["id"]
    assert new["client_id"] == made["client_id"]
    assert new["client_secret"].startswith("wgs_")
    assert new["client_secret"] != made["client_secret"]
    assert new["secret_rotated_at"] is not None
    assert rotated.headers["cache-control"] == "no-store"

    old = await request_token(client, made["client_id"], made["client_secret"])
    assert old.status_code == 401
    assert old.json()["error"] == "invalid_client"
    assert (await request_token(client, made["client_id"], new["client_secret"])).status_code == 200
    # Tokens issued before the rotation keep working until they expire.
    assert (
        await client.get("/v1/me", headers=bearer(old_token["access_token"]))
    ).status_code == 200
    assert await audit_actions(database, tenant.id) == [
        "api_client.created",
        "api_client.created",
        "api_client.secret_rotated",
    ]


async def test_another_tenants_client_is_not_found_like_a_random_id(client, make_tenant, database):
    owner, intruder = await make_tenant(), await make_tenant()
    victim = (await create(client, await owner.headers(), role="editor")).json()
    before = await tenant_state(database, owner.id)
    headers = await intruder.headers()

    for method, suffix in (("GET", ""), ("DELETE", ""), ("POST", "/rotate-secret")):
        theirs = await client.request(
            method, f"/v1/api-clients/{victim['id']}{suffix}", headers=headers
        )
        random = await client.request(
            method, f"/v1/api-clients/{uuid.uuid4()}{suffix}", headers=headers
        )
        assert_problem(theirs, 404)
        assert theirs.json() == random.json()

    assert await tenant_state(database, owner.id) == before
    token = await request_token(client, victim["client_id"], victim["client_secret"])
    assert token.status_code == 200


async def test_missing_scope_or_role_is_forbidden(client, make_tenant, database):
    tenant = await make_tenant()
    made = (await create(client, await tenant.headers())).json()
    narrow = await tenant.headers("findings:read findings:write")
    viewer = await make_tenant(role="viewer")
    before = await tenant_state(database, tenant.id)

    for headers in (narrow, await viewer.headers()):
        calls = [
            await create(client, headers),
            await client.get("/v1/api-clients", headers=headers),
            await client.get(f"/v1/api-clients/{made['id']}", headers=headers),
            await client.delete(f"/v1/api-clients/{made['id']}", headers=headers),
            await client.post(f"/v1/api-clients/{made['id']}/rotate-secret", headers=headers),
        ]
        for response in calls:
            body = assert_problem(response, 403)
            assert "admin" in body["detail"]
    assert await tenant_state(database, tenant.id) == before


async def test_an_admin_cannot_grant_scopes_it_does_not_hold(client, make_tenant, database):
    tenant = await make_tenant(scopes=["admin", "findings:read"])
    headers = await tenant.headers()
    before = await tenant_state(database, tenant.id)

    wider = await create(client, headers, role="editor", scopes=["findings:write"])
    body = assert_problem(wider, 403)
    assert "findings:write" in body["detail"]
    # Without explicit scopes the role's defaults apply, and an editor's exceed this caller's.
    assert_problem(await create(client, headers, role="editor"), 403)
    assert await tenant_state(database, tenant.id) == before

    within = await create(client, headers, role="viewer", scopes=["findings:read"])
    assert within.status_code == 201


async def test_unknown_fields_are_rejected(client, make_tenant, database):
    tenant, other = await make_tenant(), await make_tenant()
    headers = await tenant.headers()
    before = await tenant_state(database, tenant.id)
    before_other = await tenant_state(database, other.id)
    for extra in ({"tenant_id": str(other.id)}, {"client_secret": "wgs_mine"}, {"revoked": False}):
        response = await create(client, headers, **extra)
        body = assert_problem(response, 400)
        assert field_names(body) == set(extra)
    assert await tenant_state(database, tenant.id) == before
    assert await tenant_state(database, other.id) == before_other


async def test_bad_values_are_422_and_wrong_types_400(client, make_tenant, database):
    tenant = await make_tenant()
    headers = await tenant.headers()
    before = await tenant_state(database, tenant.id)
    cases: list[tuple[dict[str, Any], str]] = [
        ({"name": ""}, "name"),
        ({"name": "x" * 101}, "name"),
        ({"role": "owner"}, "role"),
        ({"scopes": ["findings:read", "root"]}, "scopes"),
        ({"role": "viewer", "scopes": ["admin"]}, "scopes"),
    ]
    for body, field in cases:
        response = await client.post(
            "/v1/api-clients", json={"name": "sync", **body}, headers=headers
        )
        problem = assert_problem(response, 422)
        assert field in field_names(problem), (body, problem)
    for body in ({"name": 5}, {"name": "sync", "scopes": "findings:read"}):
        assert_problem(await client.post("/v1/api-clients", json=body, headers=headers), 400)
    assert_problem(await client.post("/v1/api-clients", json={}, headers=headers), 422)
    assert await tenant_state(database, tenant.id) == before


async def test_page_limit_over_the_maximum_is_400(client, make_tenant):
    tenant = await make_tenant()
    headers = await tenant.headers()
    response = await client.get("/v1/api-clients", params={"limit": 201}, headers=headers)
    assert_problem(response, 400)
    for cursor in ("bm90LWEtY3Vyc29y", encode_cursor([1]), encode_cursor(["yesterday", "x"])):
        listed = await client.get("/v1/api-clients", params={"cursor": cursor}, headers=headers)
        assert_problem(listed, 400)
