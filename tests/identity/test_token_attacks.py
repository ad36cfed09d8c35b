"""Attacks on bearer authentication, all through HTTP: each is 401 and changes nothing.

Each attack tries to create an API client (an admin write), so a success would show up in the
tenant's clients and audit log; `tenant_state` proves it did not.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from typing import Any

import httpx
import pytest
from joserfc import jwt
from joserfc.jwk import RSAKey

from tests.identity.conftest import assert_problem, assert_unauthorized, bearer, tenant_state
from wg_api.identity.keys import SigningKeys
from wg_api.platform.database import Database
from wg_api.settings import Settings

NEW_CLIENT = {"name": "intruder", "role": "admin"}


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def segments(token: str) -> tuple[dict[str, Any], dict[str, Any], str]:
    header, payload, signature = token.split(".")

    def decode(segment: str) -> dict[str, Any]:
        decoded: dict[str, Any] = json.loads(
            base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4))
        )
        return decoded

    return decode(header), decode(payload), signature


def unsigned(header: dict[str, Any], payload: dict[str, Any]) -> str:
    return f"{b64(json.dumps(header).encode())}.{b64(json.dumps(payload).encode())}"


@pytest.fixture(scope="module")
def service_keys(settings: Settings) -> SigningKeys:
    return SigningKeys.load_or_create(settings.key_file)


async def attempt(
    client: httpx.AsyncClient,
    database: Database,
    tenant: Any,
    headers: dict[str, Any],
    url: str = "/v1/api-clients",
) -> dict[str, Any]:
    before = await tenant_state(database, tenant.id)
    response = await client.post(url, json=NEW_CLIENT, headers=headers)
    body = assert_unauthorized(response)
    assert await tenant_state(database, tenant.id) == before
    return body


async def real_token(tenant: Any) -> tuple[str, dict[str, Any], dict[str, Any]]:
    token = await tenant.token()
    header, claims, _ = segments(token)
    return token, header, claims


def signed_by_service(
    service_keys: SigningKeys, header: dict[str, Any], claims: dict[str, Any]
) -> str:
    return jwt.encode(header, claims, service_keys.key_set, algorithms=["RS256"])


async def test_a_valid_token_works(client, make_tenant):
    """The control: the same request with the tenant's real token creates the client."""
    tenant = await make_tenant()
    response = await client.post("/v1/api-clients", json=NEW_CLIENT, headers=await tenant.headers())
    assert response.status_code == 201


async def test_no_token(client, make_tenant, database):
    tenant = await make_tenant()
    body = await attempt(client, database, tenant, {})
    assert body["title"] == "Unauthorized"
    await attempt(client, database, tenant, {"Authorization": "Basic dXNlcjpwYXNz"})
    await attempt(client, database, tenant, {"Authorization": "Bearer "})


async def test_alg_none(client, make_tenant, database):
    tenant = await make_tenant()
    _, header, claims = await real_token(tenant)
    for alg in ("none", "None", "NONE"):
        forged = unsigned({**header, "alg": alg}, claims)
        await attempt(client, database, tenant, bearer(forged + "."))
        await attempt(client, database, tenant, bearer(forged + ".c2lnbmF0dXJl"))


async def test_hs256_signed_with_the_public_key(client, make_tenant, database, service_keys):
    """Algorithm confusion: the public key (PEM or JWK) used as an HMAC secret."""
    tenant = await make_tenant()
    _, header, claims = await real_token(tenant)
    public_jwk = next(
        k for k in service_keys.public_jwks()["keys"] if k["kid"] == service_keys.active_kid
    )
    pem = RSAKey.import_key(public_jwk).as_pem(private=False)
    for secret in (pem, pem.strip(), json.dumps(public_jwk).encode()):
        signing_input = unsigned({**header, "alg": "HS256"}, claims)
        mac = hmac.new(secret, signing_input.encode(), hashlib.sha256).digest()
        await attempt(client, database, tenant, bearer(f"{signing_input}.{b64(mac)}"))


async def test_tampered_payload(client, make_tenant, database):
    viewer = await make_tenant(role="viewer")
    other = await make_tenant()
    token, header, claims = await real_token(viewer)
    signature = token.split(".")[2]
    for change in (
        {"role": "admin", "scope": "admin"},
        {"tenant_id": str(other.id)},
        {"exp": claims["exp"] + 3600},
    ):
        forged = f"{unsigned(header, {**claims, **change})}.{signature}"
        await attempt(client, database, viewer, bearer(forged))
    before_other = await tenant_state(database, other.id)
    assert await tenant_state(database, other.id) == before_other


async def test_expired(client, make_tenant, database, service_keys):
    tenant = await make_tenant()
    _, header, claims = await real_token(tenant)
    now = int(time.time())
    forged = signed_by_service(
        service_keys, header, {**claims, "iat": now - 3600, "nbf": now - 3600, "exp": now - 60}
    )
    body = await attempt(client, database, tenant, bearer(forged))
    assert "not valid" in body["detail"]
    no_exp = {k: v for k, v in claims.items() if k != "exp"}
    await attempt(client, database, tenant, bearer(signed_by_service(service_keys, header, no_exp)))


async def test_not_yet_valid(client, make_tenant, database, service_keys):
    tenant = await make_tenant()
    _, header, claims = await real_token(tenant)
    now = int(time.time())
    for future in ({"nbf": now + 300}, {"iat": now + 300, "nbf": now + 300}):
        forged = signed_by_service(service_keys, header, {**claims, **future})
        await attempt(client, database, tenant, bearer(forged))


async def test_wrong_issuer(client, make_tenant, database, service_keys, settings):
    tenant = await make_tenant()
    _, header, claims = await real_token(tenant)
    for issuer in ("https://evil.example", settings.public_url + "/", "", None):
        forged = signed_by_service(service_keys, header, {**claims, "iss": issuer})
        await attempt(client, database, tenant, bearer(forged))


async def test_wrong_audience(client, make_tenant, database, service_keys, settings):
    tenant = await make_tenant()
    _, header, claims = await real_token(tenant)
    for audience in ("https://other.example", [], ["https://other.example"], None):
        forged = signed_by_service(service_keys, header, {**claims, "aud": audience})
        await attempt(client, database, tenant, bearer(forged))


async def test_unknown_kid(client, make_tenant, database, service_keys):
    tenant = await make_tenant()
    _, header, claims = await real_token(tenant)
    stranger = RSAKey.generate_key(2048, parameters={"kid": "not-ours"}, private=True)
    # A key we never published, under its own kid and under ours.
    for kid in ("not-ours", service_keys.active_kid):
        forged = jwt.encode({**header, "kid": kid}, claims, stranger, algorithms=["RS256"])
        await attempt(client, database, tenant, bearer(forged))
    # Our own key, but a kid that is not in our key set.
    forged = jwt.encode({**header, "kid": "rotated-away"}, claims, service_keys.active)
    body = await attempt(client, database, tenant, bearer(forged))
    assert "unknown key" in body["detail"]


async def test_token_of_a_revoked_client(client, make_tenant, database):
    tenant = await make_tenant()
    admin = await tenant.headers()
    made = (await client.post("/v1/api-clients", json=NEW_CLIENT, headers=admin)).json()
    basic = base64.b64encode(f"{made['client_id']}:{made['client_secret']}".encode()).decode()
    token = (
        await client.post(
            "/oauth/token",
            data={"grant_type": "client_credentials"},
            headers={"Authorization": f"Basic {basic}"},
        )
    ).json()["access_token"]
    assert (await client.delete(f"/v1/api-clients/{made['id']}", headers=admin)).status_code == 204
    body = await attempt(client, database, tenant, bearer(token))
    assert "revoked" in body["detail"]


async def test_token_in_the_query_string(client, make_tenant, database):
    tenant = await make_tenant()
    token = await tenant.token()
    body = await attempt(client, database, tenant, {}, url=f"/v1/api-clients?access_token={token}")
    assert "header" in body["detail"]
    # Even beside a good header: a token in a URL leaks into logs, so the request is refused.
    await attempt(
        client, database, tenant, bearer(token), url=f"/v1/api-clients?access_token={token}"
    )
    read = await client.get(f"/v1/me?access_token={token}")
    assert_unauthorized(read)
    # The name spelled with escapes, or after another parameter, is the same parameter.
    for query in (f"acc%65ss_token={token}", f"limit=5&access%5Ftoken={token}"):
        body = await attempt(
            client, database, tenant, bearer(token), url=f"/v1/api-clients?{query}"
        )
        assert "header" in body["detail"]


async def test_garbage_tokens(client, make_tenant, database):
    tenant = await make_tenant()
    for garbage in ("x", "a.b", "a.b.c", "....", "e30.e30.", "W10.W10.c2ln", "e30.e30.e30"):
        await attempt(client, database, tenant, bearer(garbage))
    await attempt(client, database, tenant, {"Authorization": b"Bearer \xe9.\xe9.\xe9"})


async def test_a_valid_token_without_the_scope_is_403(client, make_tenant, database):
    tenant = await make_tenant()
    before = await tenant_state(database, tenant.id)
    response = await client.post(
        "/v1/api-clients", json=NEW_CLIENT, headers=await tenant.headers("findings:read")
    )
    body = assert_problem(response, 403)
    assert "`admin` scope" in body["detail"]
    assert await tenant_state(database, tenant.id) == before


async def test_a_viewer_calling_an_admin_endpoint_is_403(client, make_tenant, database):
    viewer = await make_tenant(role="viewer")
    before = await tenant_state(database, viewer.id)
    headers = await viewer.headers()
    assert_problem(await client.post("/v1/api-clients", json=NEW_CLIENT, headers=headers), 403)
    assert_problem(await client.get("/v1/audit-log", headers=headers), 403)
    assert await tenant_state(database, viewer.id) == before
    # A viewer cannot even ask the token endpoint for the admin scope.
    basic = base64.b64encode(f"{viewer.client_id}:{viewer.client_secret}".encode()).decode()
    token = await client.post(
        "/oauth/token",
        data={"grant_type": "client_credentials", "scope": "admin"},
        headers={"Authorization": f"Basic {basic}"},
    )
    assert token.status_code == 400
    assert token.json()["error"] == "invalid_scope"
