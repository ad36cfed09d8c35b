"""Authentication middleware and the guards that gate every /v1 route by scope and role."""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Generic, TypeVar
from urllib.parse import parse_qsl

from wg_api.identity import repository, service
from wg_api.identity.keys import SigningKeys
from wg_api.identity.principal import Principal
from wg_api.identity.provider_keys import (
    KEY_ERRORS,
    JWKSCache,
    has_kid,
)
from wg_api.identity.rate_limit import (
    UnauthenticatedGate,
    client_address,
    too_many_unauthenticated,
)
from wg_api.identity.scopes import ROLE_RANK, ROLE_SCOPES, TENANT_ROLES
from wg_api.identity.tokens import (
    LEEWAY_SECONDS,
    PROVIDER_ALGORITHMS,
    scopes_for,
    unverified_parts,
    verify_jwt,
    verify_service_token,
)
from wg_api.platform.asgi import ASGIApp, Receive, Scope, Send, send_problem
from wg_api.platform.database import Database
from wg_api.platform.errors import ProblemError, Unauthorized
from wg_api.platform.outbound import OutboundClient
from wg_api.settings import Settings

log = logging.getLogger("wg_api.auth")

PROVIDER_CACHE_SECONDS = 60.0
VERIFIED_TOKEN_SECONDS = 60.0
USER_TOUCH_SECONDS = 300.0
CACHE_MAX_ENTRIES = 10_000
MAX_ISSUER_LENGTH = 2000  # as registration allows; longer ones would only bloat the caches

Clock = Callable[[], float]
K = TypeVar("K")
V = TypeVar("V")


class ExpiringCache(Generic[K, V]):
    """A small in-process cache whose entries expire, bounded so forged tokens cannot grow it."""

    def __init__(self, ttl: float, clock: Clock, max_entries: int = CACHE_MAX_ENTRIES) -> None:
        self.ttl = ttl
        self.clock = clock
        self.max_entries = max_entries
        self._entries: dict[K, tuple[V, float]] = {}

    def get(self, key: K) -> tuple[bool, V | None]:
        entry = self._entries.get(key)
        if entry is None or self.clock() - entry[1] >= self.ttl:
            return False, None
        return True, entry[0]

    def put(self, key: K, value: V) -> None:
        if self.ttl <= 0:
            return
        if len(self._entries) >= self.max_entries and key not in self._entries:
            now = self.clock()
            self._entries = {k: e for k, e in self._entries.items() if now - e[1] < self.ttl}
            if len(self._entries) >= self.max_entries:
                # Still full of live entries: drop the older half (dicts keep insertion order).
                keep = list(self._entries.items())[self.max_entries // 2 :]
                self._entries = dict(keep)
        self._entries[key] = (value, self.clock())

    def pop(self, key: K) -> None:
        self._entries.pop(key, None)


def role_from_claim(claimed: object, default_role: str) -> str:
    """The role a person's token claims (a string or a list of them), else the default."""
    values = [claimed] if isinstance(claimed, str) else claimed
    if not isinstance(values, list):
        return default_role
    roles = [value for value in values if isinstance(value, str) and value in TENANT_ROLES]
    return max(roles, key=lambda role: ROLE_RANK[role]) if roles else default_role


@dataclass(frozen=True, slots=True)
class VerifiedServiceToken:
    """What a service token whose signature was checked says, read once."""

    expires: int
    tenant_id: uuid.UUID
    client_id: uuid.UUID
    role: str
    scopes: frozenset[str]
    token_id: str


def _verified_service_token(claims: dict[str, Any]) -> VerifiedServiceToken:
    try:
        expires = claims["exp"]
        if not isinstance(expires, int):
            raise TypeError("exp")
        role = str(claims["role"])
        return VerifiedServiceToken(
            expires=expires,
            tenant_id=uuid.UUID(claims["tenant_id"]),
            client_id=uuid.UUID(claims["wg_client"]),
            role=role,
            scopes=scopes_for(role, claims.get("scope")),
            token_id=str(claims.get("jti", "")),
        )
    except (KeyError, ValueError, TypeError, AttributeError) as exc:
        raise Unauthorized("The token is not valid.") from exc


class Authenticator:
    """Turns a bearer token into a Principal, or raises Unauthorized.

    Each replica caches what it learns from the database (a client's revocation for
    `revocation_cache_seconds`, an issuer's provider for a minute); `forget_client` and
    `forget_provider` drop an entry at once in this process after a change.
    """

    def __init__(
        self,
        settings: Settings,
        database: Database,
        keys: SigningKeys,
        jwks: JWKSCache | None = None,
        clock: Clock = time.monotonic,
        gate: UnauthenticatedGate | None = None,
    ) -> None:
        self.settings = settings
        self.database = database
        self.keys = keys
        self.gate = gate or UnauthenticatedGate(settings)
        self.jwks = jwks or JWKSCache(
            OutboundClient(allow_loopback=settings.outbound_allow_loopback), clock=clock
        )
        # A live client's name (None: revoked or unknown).
        self._client_names: ExpiringCache[uuid.UUID, str | None] = ExpiringCache(
            settings.revocation_cache_seconds, clock
        )
        self._providers: ExpiringCache[str, repository.ProviderRecord | None] = ExpiringCache(
            PROVIDER_CACHE_SECONDS, clock
        )
        self._users: ExpiringCache[tuple[uuid.UUID, str], tuple[uuid.UUID, str, str]] = (
            ExpiringCache(USER_TOUCH_SECONDS, clock)
        )
        # Service tokens whose signature was checked, read once, keyed by the exact token text;
        # expiry and revocation are still checked on every request.
        self._verified: ExpiringCache[str, VerifiedServiceToken] = ExpiringCache(
            VERIFIED_TOKEN_SECONDS, clock
        )

    async def authenticate(self, token: str, address: str = "unknown") -> Principal:
        """The principal of `token`; `address` (the caller's, see `client_address`) pays for any
        database lookup made before the caller is known."""
        if self._verified.get(token)[0]:
            return await self._service_principal(token)
        _, claims = unverified_parts(token)
        issuer = claims.get("iss")
        if not isinstance(issuer, str) or not 1 <= len(issuer) <= MAX_ISSUER_LENGTH:
            raise Unauthorized("The token has no usable issuer.")
        if issuer == self.settings.public_url:
            return await self._service_principal(token)
        return await self._person_principal(token, issuer, address)

    async def _service_principal(self, token: str) -> Principal:
        found, verified = self._verified.get(token)
        if found and verified is not None:
            if verified.expires + LEEWAY_SECONDS <= time.time():
                self._verified.pop(token)
                raise Unauthorized("The token is not valid.")
        else:
            verified = _verified_service_token(
                verify_service_token(token, self.keys, self.settings)
            )
            self._verified.put(token, verified)
        name = (
            await self._active_client_name(verified.tenant_id, verified.client_id)
            if verified.role in TENANT_ROLES
            else None
        )
        if name is None:
            raise Unauthorized("The client of this token is revoked.")
        return Principal(
            tenant_id=verified.tenant_id,
            type="client",
            id=verified.client_id,
            name=name,
            role=verified.role,
            scopes=verified.scopes,
            token_id=verified.token_id,
        )

    async def _active_client_name(self, tenant_id: uuid.UUID, client_uuid: uuid.UUID) -> str | None:
        found, name = self._client_names.get(client_uuid)
        if found:
            return name
        async with self.database.transaction(tenant_id) as session:
            name = await repository.active_client_name(session, client_uuid)
        self._client_names.put(client_uuid, name)
        return name

    def forget_client(self, client_uuid: uuid.UUID) -> None:
        self._client_names.pop(client_uuid)

    async def _provider(
        self, issuer: str, address: str
    ) -> tuple[repository.ProviderRecord | None, bool]:
        """The issuer's registration, and whether the caller's address paid for looking it up."""
        found, provider = self._providers.get(issuer)
        if found:
            return provider, False
        self.gate.spend(address)
        async with self.gate.db_slot(), self.database.transaction() as session:
            provider = await repository.provider_for_issuer(session, issuer)
        self._providers.put(issuer, provider)
        return provider, True

    def forget_provider(self, issuer: str) -> None:
        self._providers.pop(issuer)

    async def _person_principal(self, token: str, issuer: str, address: str) -> Principal:
        header, _ = unverified_parts(token)
        if header.get("alg") not in PROVIDER_ALGORITHMS:
            raise Unauthorized("The token's algorithm is not accepted.")
        provider, paid = await self._provider(issuer, address)
        if provider is None:
            raise Unauthorized("The token's issuer is not registered with any tenant.")
        kid = header.get("kid") if isinstance(header.get("kid"), str) else None
        try:
            uri = await self.jwks.jwks_uri_for(provider.issuer, provider.jwks_uri)
            key_set = await self.jwks.key_set(uri, kid)
        except KEY_ERRORS as exc:
            log.warning("identity provider keys unavailable for %s: %s", issuer, exc)
            raise Unauthorized("The identity provider's keys could not be fetched.") from exc
        if kid is not None and not has_kid(key_set, kid):
            raise Unauthorized("The token is signed by an unknown key.")
        claims = verify_jwt(
            token,
            key_set,
            algorithms=PROVIDER_ALGORITHMS,
            issuer=provider.issuer,
            audience=provider.audience,
        )
        subject = claims.get("sub")
        if not isinstance(subject, str) or not 1 <= len(subject) <= 255:
            raise Unauthorized("The token has no usable subject.")
        role = provider.default_role
        if provider.role_claim:
            role = role_from_claim(claims.get(provider.role_claim), provider.default_role)
        name = str(claims.get("name") or claims.get("preferred_username") or subject)[:200]
        email = claims.get("email") if isinstance(claims.get("email"), str) else None
        user_id = await self._user_id(provider, subject, name, email, role)
        if paid:
            self.gate.addresses.give_back(address)
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
        """The person's user id; the database is written on first sight, when their name or
        role changed, and every few minutes otherwise (their last-seen time)."""
        found, cached = self._users.get((provider.id, subject))
        if found and cached is not None and cached[1:] == (name, role):
            return cached[0]
        async with self.database.transaction(provider.tenant_id) as session:
            user_id = await service.record_person_seen(
                session,
                provider,
                subject=subject,
                name=name,
                email=email[:320] if email else None,
                role=role,
            )
        self._users.put((provider.id, subject), (user_id, name, role))
        return user_id


AUTHENTICATOR_STATE_KEY = "authenticator"


def bearer_token(scope: Scope) -> str:
    raw: bytes = scope.get("query_string", b"")
    # Only a query with the name as it is or with a percent escape can name the parameter.
    query = raw.decode("latin-1") if b"access_token" in raw or b"%" in raw else ""
    if any(name == "access_token" for name, _ in parse_qsl(query, keep_blank_values=True)):
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
        address = client_address(scope)
        try:
            principal = await authenticator.authenticate(bearer_token(scope), address)
        except Unauthorized as error:
            # Every failure costs the address a token; with none left it hears 429, not 401.
            wait = authenticator.gate.addresses.take(address)
            await send_problem(send, too_many_unauthenticated(wait) if wait else error)
            return
        except ProblemError as error:
            await send_problem(send, error)
            return
        scope["user"] = principal
        await self.app(scope, receive, send)
