"""Helpers of the identity tests: problem assertions, a local OIDC identity provider, extra apps."""

from __future__ import annotations

import json
import threading
import time
import uuid
from collections import Counter
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from dataclasses import replace
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx
import pytest
import sqlalchemy as sa
from joserfc import jwt
from joserfc.jwk import KeySet, RSAKey

from tests.conftest import serve_in_loop, superuser_transaction
from wg_api.app import asgi_app
from wg_api.platform.database import Database
from wg_api.settings import Settings


def assert_problem(response: httpx.Response, status: int) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    body: dict[str, Any] = response.json()
    assert body["status"] == status
    assert body["type"].startswith("/problems/")
    return body


def assert_unauthorized(response: httpx.Response) -> dict[str, Any]:
    body = assert_problem(response, 401)
    assert response.headers["www-authenticate"].startswith("Bearer")
    return body


def field_names(body: dict[str, Any]) -> set[str]:
    return {error["field"] for error in body.get("errors") or []}


async def tenant_state(database: Database, tenant_id: uuid.UUID) -> dict[str, Any]:
    """Everything an identity request could change for a tenant, to prove nothing did."""
    async with superuser_transaction(database) as session:
        clients = (
            await session.execute(
                sa.text(
                    "SELECT id, name, secret_hash, revoked_at, secret_rotated_at "
                    "FROM api_clients WHERE tenant_id = :t ORDER BY id"
                ),
                {"t": tenant_id},
            )
        ).all()
        providers = (
            await session.execute(
                sa.text("SELECT id FROM identity_providers WHERE tenant_id = :t ORDER BY id"),
                {"t": tenant_id},
            )
        ).all()
        audit = await session.scalar(
            sa.text("SELECT count(*) FROM audit_log WHERE tenant_id = :t"), {"t": tenant_id}
        )
    return {
        "clients": [tuple(row) for row in clients],
        "providers": [tuple(row) for row in providers],
        "audit": audit,
    }


async def audit_actions(database: Database, tenant_id: uuid.UUID) -> list[str]:
    async with superuser_transaction(database) as session:
        rows = await session.scalars(
            sa.text("SELECT action FROM audit_log WHERE tenant_id = :t ORDER BY seq"),
            {"t": tenant_id},
        )
        return list(rows)


class LocalIdentityProvider:
    """A real OIDC issuer on 127.0.0.1: its own key pairs, a JWKS document and discovery.

    `published` lists the kids the JWKS document serves; `fetches` counts requests per path.
    """

    def __init__(self) -> None:
        self.keys: dict[str, RSAKey] = {}
        self.published: list[str] = []
        self.fetches: Counter[str] = Counter()
        self.down = False
        self.delay = 0.0
        idp = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                idp.fetches[self.path] += 1
                time.sleep(idp.delay)
                document = idp.document(self.path)
                if idp.down or document is None:
                    self.send_response(503 if idp.down else 404)
                    self.end_headers()
                    return
                body = json.dumps(document).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: Any) -> None:
                """Quiet."""

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        port = self.server.server_address[1]
        self.base = f"http://127.0.0.1:{port}"
        self.tag = uuid.uuid4().hex[:12]
        self.issuer = f"{self.base}/{self.tag}"
        self.jwks_path = f"/{self.tag}/jwks.json"
        self.jwks_uri = f"{self.base}{self.jwks_path}"
        self.discovery_path = f"/{self.tag}/.well-known/openid-configuration"
        self.thread = threading.Thread(
            target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self.thread.start()
        self.add_key()

    def document(self, path: str) -> dict[str, Any] | None:
        if path == self.jwks_path:
            published = [self.keys[kid] for kid in self.published]
            return dict(KeySet(published).as_dict(private=False))  # type: ignore[arg-type]
        if path == self.discovery_path:
            return {"issuer": self.issuer, "jwks_uri": self.jwks_uri}
        return None

    def add_key(self, *, publish: bool = True) -> str:
        kid = f"k-{uuid.uuid4().hex[:8]}"
        self.keys[kid] = RSAKey.generate_key(2048, parameters={"kid": kid}, private=True)
        if publish:
            self.published.append(kid)
        return kid

    def token(
        self,
        *,
        subject: str = "person-1",
        audience: str = "wg-api",
        kid: str | None = None,
        issuer: str | None = None,
        header: dict[str, Any] | None = None,
        **claims: Any,
    ) -> str:
        kid = kid or self.published[0]
        now = int(time.time())
        payload = {
            "iss": issuer or self.issuer,
            "sub": subject,
            "aud": audience,
            "iat": now,
            "exp": now + 300,
            **claims,
        }
        return jwt.encode({"alg": "RS256", "kid": kid, **(header or {})}, payload, self.keys[kid])

    def provider_body(self, **overrides: Any) -> dict[str, Any]:
        """A registration body with a fresh proof of control for its issuer and audience."""
        body = {
            "issuer": self.issuer,
            "audience": "wg-api",
            "jwks_uri": self.jwks_uri,
            "role_claim": "wg_role",
            "default_role": "viewer",
            **overrides,
        }
        if "proof_token" not in overrides:
            audience = body["audience"] if isinstance(body["audience"], str) else "wg-api"
            body["proof_token"] = self.token(subject="registration", audience=audience)
        return body

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def local_idp() -> Iterator[Any]:
    made: list[LocalIdentityProvider] = []

    def make() -> LocalIdentityProvider:
        made.append(LocalIdentityProvider())
        return made[-1]

    yield make
    for idp in made:
        idp.close()


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


@asynccontextmanager
async def another_app(
    settings: Settings, database: Database, **overrides: Any
) -> AsyncIterator[tuple[httpx.AsyncClient, Any]]:
    """A second app instance (a replica) on the same database: its HTTP client and Litestar app."""
    served = asgi_app(replace(settings, **overrides), database)
    async with serve_in_loop(served) as http:
        yield http, served.app
