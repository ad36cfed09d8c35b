"""POST /oauth/token, /.well-known/jwks.json and the RFC 8414 metadata."""

from __future__ import annotations

import base64
import json
import time

from joserfc import jwt
from joserfc.jwk import KeySet

FORM = {"grant_type": "client_credentials"}


def basic(client_id: str, secret: str) -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(f"{client_id}:{secret}".encode()).decode()}


async def test_basic_and_form_authentication_issue_rfc9068_tokens(client, make_tenant, settings):
    tenant = await make_tenant(role="editor")
    by_basic = await client.post(
        "/oauth/token", data=FORM, headers=basic(tenant.client_id, tenant.client_secret)
    )
    by_form = await client.post(
        "/oauth/token",
        data={**FORM, "client_id": tenant.client_id, "client_secret": tenant.client_secret},
    )
    keys = KeySet.import_key_set((await client.get("/.well-known/jwks.json")).json())
    for response in (by_basic, by_form):
        assert response.status_code == 200, response.text
        assert response.headers["cache-control"] == "no-store"
        body = response.json()
        assert body["token_type"] == "Bearer"
        assert body["expires_in"] == settings.token_ttl_seconds
        token = jwt.decode(body["access_token"], keys, algorithms=["RS256"])
        assert token.header["typ"] == "at+jwt"
        claims = token.claims
        assert claims["iss"] == claims["aud"] == settings.public_url
        assert claims["sub"] == claims["client_id"] == tenant.client_id
        assert claims["tenant_id"] == str(tenant.id)
        assert claims["scope"] == body["scope"]
        assert abs(claims["iat"] - time.time()) < 60
        assert claims["exp"] - claims["iat"] == settings.token_ttl_seconds
        assert len(claims["jti"]) >= 16
    assert by_basic.json()["access_token"] != by_form.json()["access_token"]


async def test_a_narrower_scope_can_be_asked_for(client, make_tenant):
    tenant = await make_tenant()
    response = await client.post(
        "/oauth/token",
        data={**FORM, "scope": "findings:read events:read"},
        headers=basic(tenant.client_id, tenant.client_secret),
    )
    assert response.json()["scope"] == "events:read findings:read"
    me = await client.get(
        "/v1/me", headers={"Authorization": f"Bearer {response.json()['access_token']}"}
    )
    assert me.json()["scopes"] == ["events:read", "findings:read"]


async def test_errors_follow_rfc6749(client, make_tenant):
    tenant = await make_tenant(role="viewer")
    wrong_secret = await client.post(
        "/oauth/token", data=FORM, headers=basic(tenant.client_id, "wgs_wrong")
    )
    assert wrong_secret.status_code == 401
    assert wrong_secret.json()["error"] == "invalid_client"
    assert "access_token" not in wrong_secret.text
    assert wrong_secret.headers["www-authenticate"].startswith("Basic")
    unknown = await client.post("/oauth/token", data=FORM, headers=basic("wgc_nobody", "wgs_x"))
    assert unknown.status_code == 401
    assert unknown.json() == wrong_secret.json()  # no hint whether the client exists

    cases = [
        ({"grant_type": "password"}, "unsupported_grant_type"),
        ({}, "invalid_request"),
        ({**FORM, "scope": "admin"}, "invalid_scope"),  # beyond a viewer
        ({**FORM, "scope": "findings:read nonsense"}, "invalid_scope"),
    ]
    for form, error in cases:
        response = await client.post(
            "/oauth/token", data=form, headers=basic(tenant.client_id, tenant.client_secret)
        )
        assert response.status_code == 400, (form, response.text)
        assert response.json()["error"] == error, form

    as_json = await client.post(
        "/oauth/token",
        content=json.dumps({**FORM, "client_id": tenant.client_id}),
        headers={"Content-Type": "application/json"},
    )
    assert as_json.status_code == 400
    assert as_json.json()["error"] == "invalid_request"


async def test_jwks_publishes_public_keys_only(client):
    jwks = (await client.get("/.well-known/jwks.json")).json()
    assert jwks["keys"]
    for key in jwks["keys"]:
        assert key["kty"] == "RSA"
        assert key["kid"]
        assert not {"d", "p", "q", "dp", "dq", "qi"} & set(key)


async def test_authorization_server_metadata(client, settings):
    metadata = (await client.get("/.well-known/oauth-authorization-server")).json()
    assert metadata["issuer"] == settings.public_url
    assert metadata["token_endpoint"] == f"{settings.public_url}/oauth/token"
    assert metadata["jwks_uri"] == f"{settings.public_url}/.well-known/jwks.json"
    assert metadata["grant_types_supported"] == ["client_credentials"]
    assert set(metadata["token_endpoint_auth_methods_supported"]) == {
        "client_secret_basic",
        "client_secret_post",
    }
    assert "admin" in metadata["scopes_supported"]
