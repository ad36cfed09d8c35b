"""/v1/identity-providers and people's tokens, against a real OIDC issuer served on 127.0.0.1."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import json
import time
import uuid
from typing import Any

import httpx
import sqlalchemy as sa

from tests.conftest import superuser_transaction
from tests.identity.conftest import (
    another_app,
    assert_problem,
    assert_unauthorized,
    audit_actions,
    bearer,
    field_names,
    tenant_state,
)
from wg_api.identity.auth import AUTHENTICATOR_STATE_KEY
from wg_api.platform import outbound


def hs256_with_public_key(idp: Any) -> str:
    """Algorithm confusion: the provider's published RSA key used as an HMAC secret."""
    kid = idp.published[0]
    _, claims, _ = idp.token(kid=kid).split(".")
    header = base64.urlsafe_b64encode(json.dumps({"alg": "HS256", "kid": kid}).encode())
    signing_input = header.rstrip(b"=") + b"." + claims.encode()
    secret = idp.keys[kid].as_pem(private=False)
    mac = hmac.new(secret, signing_input, hashlib.sha256).digest()
    token: str = (signing_input + b"." + base64.urlsafe_b64encode(mac).rstrip(b"=")).decode()
    return token


async def register(
    client: httpx.AsyncClient, tenant: Any, idp: Any, **overrides: Any
) -> dict[str, Any]:
    response = await client.post(
        "/v1/identity-providers",
        json=idp.provider_body(**overrides),
        headers=await tenant.headers(),
    )
    assert response.status_code == 201, response.text
    provider: dict[str, Any] = response.json()
    return provider


async def test_register_list_read_and_remove(client, make_tenant, local_idp, database):
    tenant = await make_tenant()
    headers = await tenant.headers()
    idp = local_idp()
    response = await client.post(
        "/v1/identity-providers", json=idp.provider_body(role_claim=None), headers=headers
    )
    assert response.status_code == 201, response.text
    provider = response.json()
    assert provider["issuer"] == idp.issuer
    assert provider["audience"] == "wg-api"
    assert provider["jwks_uri"] == idp.jwks_uri
    assert provider["role_claim"] is None
    assert provider["default_role"] == "viewer"
    assert response.headers["location"] == f"/v1/identity-providers/{provider['id']}"

    listed = (await client.get("/v1/identity-providers", headers=headers)).json()
    assert listed == {"items": [provider], "next_cursor": None}
    read = await client.get(f"/v1/identity-providers/{provider['id']}", headers=headers)
    assert read.json() == provider
    assert read.headers["etag"]

    stale = await client.delete(
        f"/v1/identity-providers/{provider['id']}", headers={**headers, "If-Match": '"old"'}
    )
    assert_problem(stale, 412)
    removed = await client.delete(
        f"/v1/identity-providers/{provider['id']}",
        headers={**headers, "If-Match": read.headers["etag"]},
    )
    assert removed.status_code == 204
    assert (await client.get("/v1/identity-providers", headers=headers)).json()["items"] == []
    again = await client.delete(f"/v1/identity-providers/{provider['id']}", headers=headers)
    assert_problem(again, 404)
    assert await audit_actions(database, tenant.id) == [
        "api_client.created",
        "identity_provider.added",
        "identity_provider.removed",
    ]


async def test_a_persons_token_acts_for_its_tenant_only(client, make_tenant, local_idp, database):
    tenant, other = await make_tenant(), await make_tenant()
    idp = local_idp()
    await register(client, tenant, idp)
    theirs = (
        await client.post("/v1/api-clients", json={"name": "theirs"}, headers=await other.headers())
    ).json()

    token = idp.token(subject="mei", name="Mei Chen", email="mei@brand.example", wg_role="admin")
    me = await client.get("/v1/me", headers=bearer(token))
    assert me.status_code == 200, me.text
    body = me.json()
    assert body["tenant"]["id"] == str(tenant.id)
    assert body["principal"]["type"] == "user"
    assert body["principal"]["name"] == "Mei Chen"
    assert body["role"] == "admin"
    assert "admin" in body["scopes"]
    # Recorded on first sight as a user of that tenant, the same user on every later request.
    again = (await client.get("/v1/me", headers=bearer(token))).json()
    assert again["principal"]["id"] == body["principal"]["id"]
    async with superuser_transaction(database) as session:
        user = (
            await session.execute(
                sa.text("SELECT tenant_id, issuer, subject, email, role FROM users WHERE id = :id"),
                {"id": body["principal"]["id"]},
            )
        ).one()
    assert tuple(user) == (tenant.id, idp.issuer, "mei", "mei@brand.example", "admin")

    # The person sees their own tenant's resources and nothing of another tenant's.
    person = bearer(token)
    listed = (await client.get("/v1/api-clients", headers=person)).json()
    assert [c["name"] for c in listed["items"]] == ["tests"]
    assert_problem(await client.get(f"/v1/api-clients/{theirs['id']}", headers=person), 404)
    before = await tenant_state(database, other.id)
    revoke = await client.delete(f"/v1/api-clients/{theirs['id']}", headers=person)
    assert_problem(revoke, 404)
    assert await tenant_state(database, other.id) == before
    # Claims naming another tenant change nothing: the issuer decides the tenant.
    sneaky = idp.token(subject="mei", wg_role="admin", tenant_id=str(other.id), tenant=other.slug)
    sneaky_me = (await client.get("/v1/me", headers=bearer(sneaky))).json()
    assert sneaky_me["tenant"]["id"] == str(tenant.id)
    # What the person does is done in their tenant, in their name.
    made = await client.post("/v1/api-clients", json={"name": "by mei"}, headers=person)
    assert made.status_code == 201
    entries = (await client.get("/v1/audit-log", headers=person)).json()["items"]
    assert entries[0]["actor"] == {
        "type": "user",
        "id": body["principal"]["id"],
        "name": "Mei Chen",
    }


async def test_an_issuer_of_tenant_a_can_never_act_for_b(client, make_tenant, local_idp, database):
    tenant_a, tenant_b = await make_tenant(), await make_tenant()
    idp_a, idp_b = local_idp(), local_idp()
    await register(client, tenant_a, idp_a)
    await register(client, tenant_b, idp_b)

    # B cannot claim A's issuer: not beside a key set of its own, not with a proof it signed...
    beside_own_keys = await client.post(
        "/v1/identity-providers",
        json=idp_a.provider_body(
            jwks_uri=idp_b.jwks_uri, proof_token=idp_b.token(issuer=idp_a.issuer)
        ),
        headers=await tenant_b.headers(),
    )
    assert field_names(assert_problem(beside_own_keys, 422)) == {"jwks_uri"}
    own_proof = await client.post(
        "/v1/identity-providers",
        json=idp_a.provider_body(jwks_uri=None, proof_token=idp_b.token(issuer=idp_a.issuer)),
        headers=await tenant_b.headers(),
    )
    assert field_names(assert_problem(own_proof, 422)) == {"proof_token"}
    # ...and even with a real proof of A's, the issuer maps to one tenant.
    taken = await client.post(
        "/v1/identity-providers", json=idp_a.provider_body(), headers=await tenant_b.headers()
    )
    assert_problem(taken, 409)
    # A token signed by A's keys that claims B's issuer fails B's keys.
    forged = idp_a.token(issuer=idp_b.issuer, wg_role="admin")
    assert_unauthorized(await client.get("/v1/me", headers=bearer(forged)))
    # A's key published under B's kid does not help either.
    kid_b = idp_b.published[0]
    idp_a.keys[kid_b] = idp_a.keys[idp_a.published[0]]
    forged = idp_a.token(issuer=idp_b.issuer, kid=kid_b, wg_role="admin")
    assert_unauthorized(await client.get("/v1/me", headers=bearer(forged)))
    # B's own people act for B.
    me_b = (await client.get("/v1/me", headers=bearer(idp_b.token()))).json()
    assert me_b["tenant"]["id"] == str(tenant_b.id)


async def test_a_persons_token_is_checked_like_any_other(client, make_tenant, local_idp):
    tenant = await make_tenant()
    idp = local_idp()
    await register(client, tenant, idp)
    now = int(time.time())
    bad = [
        idp.token(audience="someone-else"),
        idp.token(exp=now - 60),
        idp.token(nbf=now + 300),
        idp.token(subject=""),
        idp.token(kid=idp.add_key(publish=False)),
        hs256_with_public_key(idp),
    ]
    for token in bad:
        assert_unauthorized(await client.get("/v1/me", headers=bearer(token)))
    signature_of_another = idp.token(subject="a").rsplit(".", 1)[1]
    tampered = idp.token(subject="b").rsplit(".", 1)[0] + "." + signature_of_another
    assert_unauthorized(await client.get("/v1/me", headers=bearer(tampered)))
    # An issuer nobody registered.
    stranger = local_idp()
    assert_unauthorized(await client.get("/v1/me", headers=bearer(stranger.token())))


async def test_removing_the_provider_stops_its_people(client, make_tenant, local_idp):
    tenant = await make_tenant()
    idp = local_idp()
    provider = await register(client, tenant, idp)
    token = idp.token()
    assert (await client.get("/v1/me", headers=bearer(token))).status_code == 200
    removed = await client.delete(
        f"/v1/identity-providers/{provider['id']}", headers=await tenant.headers()
    )
    assert removed.status_code == 204
    assert_unauthorized(await client.get("/v1/me", headers=bearer(token)))


async def test_roles_come_from_the_claim_and_changes_are_audited(
    client, make_tenant, local_idp, database
):
    tenant = await make_tenant()
    idp = local_idp()
    await register(client, tenant, idp, default_role="viewer", role_claim="groups")
    cases: list[tuple[dict[str, Any], str]] = [
        ({}, "viewer"),
        ({"groups": "editor"}, "editor"),
        ({"groups": ["staff", "editor", "admin"]}, "admin"),
        ({"groups": "superuser"}, "viewer"),
    ]
    for claims, role in cases:
        me = (await client.get("/v1/me", headers=bearer(idp.token(subject="lin", **claims)))).json()
        assert me["role"] == role, claims
    viewer = bearer(idp.token(subject="lin"))
    assert_problem(await client.get("/v1/audit-log", headers=viewer), 403)

    admin = bearer(idp.token(subject="lin", groups="admin"))
    entries = (await client.get("/v1/audit-log", headers=admin)).json()["items"]
    changes = [e for e in entries if e["action"] == "user.role_changed"]
    assert [(e["details"]["from"], e["details"]["to"]) for e in reversed(changes)] == [
        ("viewer", "editor"),
        ("editor", "admin"),
        ("admin", "viewer"),
        ("viewer", "admin"),
    ]
    assert changes[0]["actor"]["type"] == "identity_provider"
    assert changes[0]["actor"]["name"] == idp.issuer
    assert await audit_actions(database, tenant.id) != []


async def test_discovery_finds_the_key_set(client, make_tenant, local_idp):
    tenant = await make_tenant()
    idp = local_idp()
    await register(client, tenant, idp, jwks_uri=None)
    # Checking the proof fetched both, fresh.
    assert idp.fetches[idp.discovery_path] == idp.fetches[idp.jwks_path] == 1
    for _ in range(3):
        me = await client.get("/v1/me", headers=bearer(idp.token()))
        assert me.status_code == 200, me.text
    # For people's tokens, discovery and key set are each fetched once, then cached.
    assert idp.fetches[idp.discovery_path] == 2
    assert idp.fetches[idp.jwks_path] == 2


async def test_unknown_kid_refetches_at_most_once_a_minute(
    settings, database, make_tenant, client, local_idp
):
    tenant = await make_tenant()
    idp = local_idp()
    await register(client, tenant, idp)
    idp.fetches.clear()  # the proof's fetch at registration
    async with another_app(settings, database) as (replica, app):
        now = [1000.0]
        app.state[AUTHENTICATOR_STATE_KEY].jwks.clock = lambda: now[0]

        assert (await replica.get("/v1/me", headers=bearer(idp.token()))).status_code == 200
        assert idp.fetches[idp.jwks_path] == 1

        rotated = idp.add_key()  # the provider publishes a new key
        assert_unauthorized(await replica.get("/v1/me", headers=bearer(idp.token(kid=rotated))))
        assert idp.fetches[idp.jwks_path] == 1  # under a minute: no refetch

        now[0] += 61
        assert (
            await replica.get("/v1/me", headers=bearer(idp.token(kid=rotated)))
        ).status_code == 200
        assert idp.fetches[idp.jwks_path] == 2

        never = idp.add_key(publish=False)  # a key the provider never publishes
        for _ in range(3):
            assert_unauthorized(await replica.get("/v1/me", headers=bearer(idp.token(kid=never))))
        assert idp.fetches[idp.jwks_path] == 2
        now[0] += 61
        for _ in range(3):
            assert_unauthorized(await replica.get("/v1/me", headers=bearer(idp.token(kid=never))))
        assert idp.fetches[idp.jwks_path] == 3

        # The provider goes down: the last good key set keeps serving known keys.
        idp.down = True
        now[0] += 3600
        assert (
            await replica.get("/v1/me", headers=bearer(idp.token(kid=rotated)))
        ).status_code == 200


async def test_another_tenants_provider_is_not_found_like_a_random_id(
    client, make_tenant, local_idp, database
):
    owner, intruder = await make_tenant(), await make_tenant()
    provider = await register(client, owner, local_idp())
    headers = await intruder.headers()
    before = await tenant_state(database, owner.id)
    for method in ("GET", "DELETE"):
        theirs = await client.request(
            method, f"/v1/identity-providers/{provider['id']}", headers=headers
        )
        random = await client.request(
            method, f"/v1/identity-providers/{uuid.uuid4()}", headers=headers
        )
        assert_problem(theirs, 404)
        assert theirs.json() == random.json()
    listed = (await client.get("/v1/identity-providers", headers=headers)).json()
    assert listed["items"] == []
    assert await tenant_state(database, owner.id) == before


async def test_missing_scope_or_role_is_forbidden(client, make_tenant, local_idp, database):
    tenant = await make_tenant()
    idp = local_idp()
    provider = await register(client, tenant, idp)
    viewer = await make_tenant(role="viewer")
    before = await tenant_state(database, tenant.id)
    for headers in (await tenant.headers("findings:read"), await viewer.headers()):
        other_idp = local_idp()
        calls = [
            await client.post(
                "/v1/identity-providers", json=other_idp.provider_body(), headers=headers
            ),
            await client.get("/v1/identity-providers", headers=headers),
            await client.get(f"/v1/identity-providers/{provider['id']}", headers=headers),
            await client.delete(f"/v1/identity-providers/{provider['id']}", headers=headers),
        ]
        for response in calls:
            assert_problem(response, 403)
    assert await tenant_state(database, tenant.id) == before


async def test_unknown_fields_bad_values_and_wrong_types(
    client, make_tenant, local_idp, database, settings
):
    tenant = await make_tenant()
    headers = await tenant.headers()
    idp = local_idp()
    before = await tenant_state(database, tenant.id)

    for extra in ({"tenant_id": str(uuid.uuid4())}, {"client_secret": "x"}):
        response = await client.post(
            "/v1/identity-providers", json=idp.provider_body(**extra), headers=headers
        )
        assert field_names(assert_problem(response, 400)) == set(extra)
    for wrong in ({"issuer": 42}, {"jwks_uri": ["x"]}):
        response = await client.post(
            "/v1/identity-providers", json=idp.provider_body(**wrong), headers=headers
        )
        assert_problem(response, 400)

    cases = [
        ({"issuer": "not a url"}, "issuer"),
        ({"issuer": "http://idp.example.com"}, "issuer"),  # http only on this machine
        ({"issuer": "https://idp.example.com/#frag"}, "issuer"),
        ({"issuer": "https://user:pw@idp.example.com"}, "issuer"),
        ({"issuer": settings.public_url}, "issuer"),  # the service's own issuer
        ({"issuer": "https://idp.example.com/" + "x" * 2000}, "issuer"),
        ({"audience": ""}, "audience"),
        ({"audience": " wg-api "}, "audience"),
        ({"jwks_uri": "ftp://idp.example.com/keys"}, "jwks_uri"),
        ({"role_claim": "has spaces"}, "role_claim"),
        ({"default_role": "owner"}, "default_role"),
    ]
    for change, field in cases:
        response = await client.post(
            "/v1/identity-providers", json=idp.provider_body(**change), headers=headers
        )
        problem = assert_problem(response, 422)
        assert field in field_names(problem), (change, problem)
    missing = {k: v for k, v in idp.provider_body().items() if k != "default_role"}
    problem = assert_problem(
        await client.post("/v1/identity-providers", json=missing, headers=headers), 422
    )
    assert field_names(problem) == {"default_role"}
    assert await tenant_state(database, tenant.id) == before


async def test_registering_the_same_issuer_twice_is_a_conflict(
    client, make_tenant, local_idp, database
):
    tenant = await make_tenant()
    idp = local_idp()
    await register(client, tenant, idp)
    before = await tenant_state(database, tenant.id)
    again = await client.post(
        "/v1/identity-providers", json=idp.provider_body(), headers=await tenant.headers()
    )
    body = assert_problem(again, 409)
    assert "one tenant" in body["detail"]
    assert await tenant_state(database, tenant.id) == before


async def test_list_pagination_and_oversize_limit(client, make_tenant, local_idp):
    tenant = await make_tenant()
    headers = await tenant.headers()
    made = [(await register(client, tenant, local_idp()))["id"] for _ in range(3)]
    first = (await client.get("/v1/identity-providers?limit=2", headers=headers)).json()
    second = (
        await client.get(
            "/v1/identity-providers",
            params={"limit": 2, "cursor": first["next_cursor"]},
            headers=headers,
        )
    ).json()
    assert [p["id"] for p in first["items"] + second["items"]] == made
    assert second["next_cursor"] is None
    assert_problem(await client.get("/v1/identity-providers?limit=201", headers=headers), 400)


async def test_registration_needs_a_fresh_proof_signed_by_the_issuer(
    client, make_tenant, local_idp, database
):
    tenant = await make_tenant()
    headers = await tenant.headers()
    idp = local_idp()
    before = await tenant_state(database, tenant.id)
    now = int(time.time())
    bad_proofs = [
        idp.token(subject="registration", iat=now - 11 * 60),  # older than 10 minutes
        idp.token(subject="registration", iat=now + 600),  # issued in the future
        idp.token(subject="registration", audience="another-audience"),
        idp.token(subject="registration", issuer=idp.base + "/someone-else"),
        idp.token(subject="registration", kid=idp.add_key(publish=False)),  # not the issuer's key
        local_idp().token(subject="registration", issuer=idp.issuer),  # another issuer's key
        hs256_with_public_key(idp),
        "not-a-jwt",
    ]
    for proof in bad_proofs:
        response = await client.post(
            "/v1/identity-providers", json=idp.provider_body(proof_token=proof), headers=headers
        )
        assert field_names(assert_problem(response, 422)) == {"proof_token"}, proof
    missing = {k: v for k, v in idp.provider_body().items() if k != "proof_token"}
    response = await client.post("/v1/identity-providers", json=missing, headers=headers)
    assert field_names(assert_problem(response, 422)) == {"proof_token"}
    # An issuer that cannot be reached cannot prove anything.
    idp.down = True
    response = await client.post(
        "/v1/identity-providers", json=idp.provider_body(), headers=headers
    )
    assert field_names(assert_problem(response, 422)) == {"proof_token"}
    idp.down = False
    assert await tenant_state(database, tenant.id) == before
    # Through discovery (no jwks_uri) a proof checks against the keys the issuer publishes.
    ok = await client.post(
        "/v1/identity-providers", json=idp.provider_body(jwks_uri=None), headers=headers
    )
    assert ok.status_code == 201, ok.text


async def test_the_proof_comes_before_saying_an_issuer_is_taken(client, make_tenant, local_idp):
    owner, stranger = await make_tenant(), await make_tenant()
    idp = local_idp()
    await register(client, owner, idp)
    forged = idp.provider_body(proof_token=local_idp().token(issuer=idp.issuer))
    response = await client.post(
        "/v1/identity-providers", json=forged, headers=await stranger.headers()
    )
    # 422 like any unproven issuer: the stranger learns nothing about who registered it.
    assert field_names(assert_problem(response, 422)) == {"proof_token"}


async def test_refused_addresses_are_named_before_anything_is_fetched(
    client, make_tenant, local_idp, database, monkeypatch
):
    tenant = await make_tenant()
    headers = await tenant.headers()
    idp = local_idp()
    resolved: list[str] = []

    async def resolve(host: str, port: int) -> list[str]:
        resolved.append(host)
        return {"idp.internal.example": ["10.0.0.5"], "keys.example": ["8.8.8.8", "10.0.0.9"]}[host]

    monkeypatch.setattr(outbound, "resolve_host", resolve)
    before = await tenant_state(database, tenant.id)
    cases = [
        ({"issuer": "https://10.1.2.3/realm"}, {"issuer"}),
        ({"issuer": "https://[::ffff:192.168.0.1]/realm"}, {"issuer"}),
        ({"issuer": "https://idp.internal.example/realm"}, {"issuer"}),
        ({"jwks_uri": "https://169.254.169.254/latest/meta-data/keys"}, {"jwks_uri"}),
        ({"jwks_uri": "https://[fd00:ec2::254]/keys"}, {"jwks_uri"}),
        ({"jwks_uri": "https://keys.example/jwks.json"}, {"jwks_uri"}),  # one answer is private
        (
            {"issuer": "https://100.64.1.1/x", "jwks_uri": "https://[fe80::1]/keys"},
            {"issuer", "jwks_uri"},
        ),
    ]
    for change, fields in cases:
        response = await client.post(
            "/v1/identity-providers", json=idp.provider_body(**change), headers=headers
        )
        problem = assert_problem(response, 422)
        assert field_names(problem) == fields, (change, problem)
        assert "does not call" in problem["errors"][0]["message"]
    assert sum(idp.fetches.values()) == 0
    assert resolved == ["idp.internal.example", "keys.example"]
    assert await tenant_state(database, tenant.id) == before


async def test_checking_the_proof_holds_no_database_connection(
    client, make_tenant, local_idp, database
):
    tenant = await make_tenant()
    headers = await tenant.headers()
    idp = local_idp()
    body = idp.provider_body()
    idp.delay = 0.5  # a slow issuer
    # Who holds each of the app pool's connections: the request's own task is the one that
    # counts (the rate limiter's flush, or another background task, may borrow one meanwhile).
    holders: dict[int, asyncio.Task[Any] | None] = {}
    takers: list[asyncio.Task[Any] | None] = []

    def checked_out(dbapi_connection: Any, record: Any, proxy: Any) -> None:
        holders[id(record)] = asyncio.current_task()
        takers.append(holders[id(record)])

    def checked_in(dbapi_connection: Any, record: Any) -> None:
        holders.pop(id(record), None)

    pool_events = database.app_engine.sync_engine.pool
    sa.event.listen(pool_events, "checkout", checked_out)
    sa.event.listen(pool_events, "checkin", checked_in)
    try:
        registering = asyncio.create_task(
            client.post("/v1/identity-providers", json=body, headers=headers)
        )
        for _ in range(500):  # until the proof's first fetch has begun
            if idp.fetches:
                break
            await asyncio.sleep(0.01)
        held = []
        for _ in range(8):
            held.append(sum(1 for task in holders.values() if task is registering))
            await asyncio.sleep(0.04)
        response = await registering
    finally:
        sa.event.remove(pool_events, "checkout", checked_out)
        sa.event.remove(pool_events, "checkin", checked_in)
    assert response.status_code == 201, response.text
    # The request's session takes its connection at its first statement, after the proof.
    assert held == [0] * 8
    # The samples look at the right task: the request did take a connection, after the proof.
    assert registering in takers
