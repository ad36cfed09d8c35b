"""Authentication middleware and the guards that gate every /v1 route by scope and role."""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from typing import Any

import httpx
from joserfc.jwk import KeySet
from litestar.connection import ASGIConnection
from litestar.handlers.base import BaseRouteHandler

from wg_api.identity import repository
from wg_api.identity.keys import SigningKeys
from wg_api.identity.principal import Principal
from wg_api.identity.scopes import ROLE_RANK, ROLE_SCOPES, TENANT_ROLES
from wg_api.identity.tokens import (
    PROVIDER_ALGORITHMS,
    scopes_for,
    unverified_parts,
    verify_jwt,
    verify_service_token,
)
from wg_api.platform.asgi import ASGIApp, Receive, Scope, Send, send_problem
from wg_api.platform.database import Database
from wg_api.platform.errors import Forbidden, ProblemError, Unauthorized
from wg_api.settings import Settings

log = logging.getLogger("wg_api.auth")

JWKS_REFETCH_SECONDS = 60.0
PROVIDER_CACHE_SECONDS = 60.0
USER_TOUCH_SECONDS = 300.0


class JWKSCache:
    """Identity providers' key sets: fetched on first use, refetched at most once a minute."""

    def __init__(self, client: httpx.AsyncClient | None = None) -> None:
        self._client = client
        self._sets: dict[str, tuple[KeySet, float]] = {}
        self._locks: dict[str, asyncio.Lock] = {}

    async def _http(self) -> httpx.AsyncClient:
        if self._client is None:
            self._client = httpx.AsyncClient(timeout=5.0, follow_redirects=False)
        return self._client

    async def _fetch(self, uri: str) -> KeySet:
        response = await (await self._http()).get(uri)
        response.raise_for_status()
        return KeySet.import_key_set(response.json())

    async def jwks_uri_for(self, issuer: str, configured: str | None) -> str:
        if configured:
            return configured
        discovery = issuer.rstrip("/") + "/.well-known/openid-configuration"
        response = await (await self._http()).get(discovery)
        response.raise_for_status()
        uri = response.json().get("jwks_uri")
        if not isinstance(uri, str):
            raise ValueError("discovery document has no jwks_uri")
        return uri

    async def key_set(self, uri: str, kid: str | None) -> KeySet:
        if self._usable(uri, kid):
            return self._sets[uri][0]
        async with self._locks.setdefault(uri, asyncio.Lock()):
            if self._usable(uri, kid):
                return self._sets[uri][0]
            key_set = await self._fetch(uri)
            self._sets[uri] = (key_set, time.monotonic())
            return key_set

    def _usable(self, uri: str, kid: str | None) -> bool:
        """A cached set serves if it has the kid, or if it was fetched under a minute ago."""
        cached = self._sets.get(uri)
        if cached is None:
            return False
        if kid is None or _has_kid(cached[0], kid):
            return True
        return time.monotonic() - cached[1] < JWKS_REFETCH_SECONDS

    async def aclose(self) -> None:
        if self._client is not None:
            await self._client.aclose()


def _has_kid(key_set: KeySet, kid: str) -> bool:
    return any(key.kid == kid for key in key_set.keys)


class Authenticator:
    """Turns a bearer token into a Principal, or raises Unauthorized."""

    def __init__(
        self,
        settings: Settings,
        database: Database,
        keys: SigningKeys,
        jwks: JWKSCache | None = None,
    ) -> None:
        self.settings = settings
        self.database = database
        self.keys = keys
        self.jwks = jwks or JWKSCache()
        self._client_status: dict[uuid.UUID, tuple[bool, float]] = {}
        self._providers: dict[str, tuple[repository.ProviderRecord | None, float]] = {}
        self._users: dict[tuple[uuid.UUID, str, str, str], tuple[uuid.UUID, float]] = {}

    async def authenticate(self, token: str) -> Principal:
        _, claims = unverified_parts(token)
        issuer = claims.get("iss")
        if not isinstance(issuer, str):
            raise Unauthorized("The token has no issuer.")
        if issuer == self.settings.public_url:
            return await self._service_principal(token)
        return await self._person_principal(token, issuer)

    async def _service_principal(self, token: str) -> Principal:
        claims = verify_service_token(token, self.keys, self.settings)
        try:
            tenant_id = uuid.UUID(claims["tenant_id"])
            client_uuid = uuid.UUID(claims["wg_client"])
            role = str(claims["role"])
        except (KeyError, ValueError, TypeError) as exc:
            raise Unauthorized("The token is not valid.") from exc
        if role not in TENANT_ROLES or not await self._client_active(tenant_id, client_uuid):
            raise Unauthorized("The client of this token is revoked.")
        return Principal(
            tenant_id=tenant_id,
            type="client",
            id=client_uuid,
            name=str(claims.get("client_id", "")),
            role=role,
            scopes=scopes_for(role, claims.get("scope")),
            token_id=str(claims.get("jti", "")),
        )

    async def _client_active(self, tenant_id: uuid.UUID, client_uuid: uuid.UUID) -> bool:
        now = time.monotonic()
        cached = self._client_status.get(client_uuid)
        if cached is not None and now - cached[1] < self.settings.revocation_cache_seconds:
            return cached[0]
        async with self.database.transaction(tenant_id) as session:
            active = await repository.client_is_active(session, client_uuid)
        self._client_status[client_uuid] = (active, now)
        return active

    async def _provider(self, issuer: str) -> repository.ProviderRecord | None:
        now = time.monotonic()
        cached = self._providers.get(issuer)
        if cached is not None and now - cached[1] < PROVIDER_CACHE_SECONDS:
            return cached[0]
        async with self.database.transaction() as session:
            provider = await repository.provider_for_issuer(session, issuer)
        self._providers[issuer] = (provider, now)
        return provider

    def forget_provider(self, issuer: str) -> None:
        self._providers.pop(issuer, None)

    async def _person_principal(self, token: str, issuer: str) -> Principal:
        provider = await self._provider(issuer)
        if provider is None:
            raise Unauthorized("The token's issuer is not registered with any tenant.")
        header, _ = unverified_parts(token)
        if header.get("alg") not in PROVIDER_ALGORITHMS:
            raise Unauthorized("The token's algorithm is not accepted.")
        kid = header.get("kid") if isinstance(header.get("kid"), str) else None
        try:
            uri = await self.jwks.jwks_uri_for(provider.issuer, provider.jwks_uri)
            key_set = await self.jwks.key_set(uri, kid)
        except (httpx.HTTPError, ValueError) as exc:
            log.warning("identity provider keys unavailable", extra={"issuer": issuer})
            raise Unauthorized("The identity provider's keys could not be fetched.") from exc
        if kid is not None and not _has_kid(key_set, kid):
            raise Unauthorized("The token is signed by an unknown key.")
        claims = verify_jwt(
            token,
            key_set,
            algorithms=PROVIDER_ALGORITHMS,
            issuer=provider.issuer,
            audience=provider.audience,
        )
        subject = claims.get("sub")
        if not isinstance(subject, str) or not subject:
            raise Unauthorized("The token has no subject.")
        role = provider.default_role
        if provider.role_claim:
            claimed = claims.get(provider.role_claim)
            if isinstance(claimed, str) and claimed in TENANT_ROLES:
                role = claimed
        name = str(claims.get("name") or claims.get("preferred_username") or subject)[:200]
        email = claims.get("email") if isinstance(claims.get("email"), str) else None
        user_id = await self._user_id(provider, subject, name, email, role)
        return Principal(
            tenant_id=provider.tenant_id,
            type="user",
            id=user_id,
            name=name,
            role=role,
            scopes=ROLE_SCOPES[role],
            token_id=str(claims.get("jti", "")),
        )

    async def _user_id(
        self,
        provider: repository.ProviderRecord,
        subject: str,
        name: str,
        email: str | None,
        role: str,
    ) -> uuid.UUID:
        cache_key = (provider.id, subject, name, role)
        now = time.monotonic()
        cached = self._users.get(cache_key)
        if cached is not None and now - cached[1] < USER_TOUCH_SECONDS:
            return cached[0]
        async with self.database.transaction(provider.tenant_id) as session:
            user_id = await repository.record_user_seen(
                session,
                tenant_id=provider.tenant_id,
                provider_id=provider.id,
                subject=subject,
                name=name,
                email=email,
                role=role,
            )
        self._users[cache_key] = (user_id, now)
        return user_id


AUTHENTICATOR_STATE_KEY = "authenticator"


def bearer_token(scope: Scope) -> str:
    if b"access_token=" in scope.get("query_string", b""):
        raise Unauthorized("Send the token in the Authorization header, never in the URL.")
    header: str | None = None
    for name, value in scope["headers"]:
        if name == b"authorization":
            header = value.decode("latin-1")
            break
    if header is None:
        raise Unauthorized("A bearer token is required.", error="invalid_request")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise Unauthorized("Use the Bearer scheme.", error="invalid_request")
    return token.strip()


class AuthMiddleware:
    """Every /v1 request must carry a valid bearer token; the principal goes to scope['user']."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        authenticator: Authenticator = scope["litestar_app"].state[AUTHENTICATOR_STATE_KEY]
        try:
            principal = await authenticator.authenticate(bearer_token(scope))
        except ProblemError as error:
            await send_problem(send, error)
            return
        scope["user"] = principal
        await self.app(scope, receive, send)


# ---- guards --------------------------------------------------------------------------------


def _principal(connection: ASGIConnection[Any, Any, Any, Any]) -> Principal:
    user = connection.scope.get("user")
    if not isinstance(user, Principal):
        raise Unauthorized()
    return user


def requires(scope: str | None, *, role: str | None = None) -> dict[str, Any]:
    """Route decorator arguments: the guard, its OpenAPI security entry and metadata for tests.

    `scope=None` means any authenticated caller (e.g. GET /v1/me).
    """

    def guard(connection: ASGIConnection[Any, Any, Any, Any], _: BaseRouteHandler) -> None:
        principal = _principal(connection)
        if scope is not None and not principal.has_scope(scope):
            raise Forbidden(f"This operation needs the `{scope}` scope.")
        if role is not None and ROLE_RANK.get(principal.role, -1) < ROLE_RANK[role]:
            raise Forbidden(f"This operation needs the `{role}` role in your tenant.")

    return {
        "guards": [guard],
        "security": [{"bearerAuth": [scope] if scope else []}],
        "opt": {"access": {"scope": scope, "role": role}},
    }


def access_of(handler: BaseRouteHandler) -> dict[str, Any] | None:
    access: dict[str, Any] | None = handler.opt.get("access")
    return access
