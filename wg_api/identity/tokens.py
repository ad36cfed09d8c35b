"""Issuing and checking bearer tokens.

The token endpoint is authlib's AuthorizationServer with the client-credentials grant; it signs
RFC 9068 JWT access tokens with the service's key. Checking a token accepts exactly two kinds: the
service's own (RS256, our issuer and audience) and a person's token from an identity provider a
tenant registered (fixed algorithm list, the provider's JWKS, its audience). Anything else is 401.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import secrets
import time
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from authlib.oauth2.rfc6749 import (
    AuthorizationServer,
    ClientMixin,
    OAuth2Request,
)
from authlib.oauth2.rfc6749.errors import InsecureTransportError, InvalidScopeError
from authlib.oauth2.rfc6749.grants import ClientCredentialsGrant
from authlib.oauth2.rfc6749.requests import BasicOAuth2Payload
from authlib.oauth2.rfc6750 import BearerTokenGenerator
from joserfc import jwt
from joserfc.errors import JoseError
from joserfc.jwk import KeySet

from wg_api.identity.keys import SIGNING_ALGORITHM, SigningKeys
from wg_api.identity.scopes import ROLE_SCOPES, SCOPES, parse_scopes
from wg_api.platform.errors import Unauthorized
from wg_api.settings import Settings

CLIENT_ID_PREFIX = "wgc_"
CLIENT_SECRET_PREFIX = "wgs_"  # noqa: S105
# Algorithms accepted from identity providers; never `none`, never HMAC (no shared secrets).
PROVIDER_ALGORITHMS = (
    "RS256",
    "RS384",
    "RS512",
    "PS256",
    "PS384",
    "PS512",
    "ES256",
    "ES384",
    "EdDSA",
)
LEEWAY_SECONDS = 10


def new_client_id() -> str:
    return CLIENT_ID_PREFIX + secrets.token_hex(12)


def new_client_secret() -> str:
    return CLIENT_SECRET_PREFIX + secrets.token_urlsafe(32)


def hash_secret(secret: str) -> bytes:
    # Secrets carry 256 random bits, so a fast hash cannot be brute-forced; no salt needed.
    return hashlib.sha256(secret.encode()).digest()


@dataclass
class ClientRecord(ClientMixin):  # type: ignore[misc]
    id: uuid.UUID
    tenant_id: uuid.UUID
    client_id: str
    name: str
    role: str
    scopes: list[str]
    secret_hash: bytes
    revoked: bool

    def get_client_id(self) -> str:
        return self.client_id

    def get_default_redirect_uri(self) -> None:
        return None

    def get_allowed_scope(self, scope: str | None) -> str:
        requested = parse_scopes(scope)
        if not requested:
            return " ".join(sorted(self.scopes))
        if not set(requested) <= set(self.scopes):
            raise InvalidScopeError(description="The client may not request some of these scopes.")
        return " ".join(requested)

    def check_redirect_uri(self, redirect_uri: str) -> bool:
        return False

    def check_client_secret(self, client_secret: str) -> bool:
        return not self.revoked and hmac.compare_digest(
            hash_secret(client_secret), self.secret_hash
        )

    def check_endpoint_auth_method(self, method: str, endpoint: str) -> bool:
        return endpoint == "token" and method in ("client_secret_basic", "client_secret_post")

    def check_response_type(self, response_type: str) -> bool:
        return False

    def check_grant_type(self, grant_type: str) -> bool:
        return grant_type == "client_credentials" and not self.revoked


class _ClientCredentials(ClientCredentialsGrant):  # type: ignore[misc]
    TOKEN_ENDPOINT_AUTH_METHODS = ["client_secret_basic", "client_secret_post"]


class _TokenRequest(OAuth2Request):  # type: ignore[misc]
    def __init__(self, uri: str, headers: Mapping[str, str], form: dict[str, str]) -> None:
        super().__init__("POST", uri, headers=headers)
        self._form = form
        self.payload = BasicOAuth2Payload(form)

    @property
    def args(self) -> dict[str, str]:
        return {}

    @property
    def form(self) -> dict[str, str]:
        return self._form


@dataclass(frozen=True)
class TokenAnswer:
    status: int
    body: dict[str, Any]
    headers: list[tuple[str, str]]


class TokenServer(AuthorizationServer):  # type: ignore[misc]
    """authlib's authorization server, fed with a client prefetched from the database."""

    def __init__(self, settings: Settings, keys: SigningKeys) -> None:
        super().__init__(scopes_supported=list(SCOPES))
        self.settings = settings
        self.keys = keys
        self._client: ClientRecord | None = None
        self.register_grant(_ClientCredentials)
        self.register_token_generator(
            "default",
            BearerTokenGenerator(
                access_token_generator=self._access_token,
                expires_generator=lambda client, grant_type: settings.token_ttl_seconds,
            ),
        )

    def _access_token(self, client: ClientRecord, grant_type: str, user: Any, scope: str) -> str:
        now = int(time.time())
        claims = {
            "iss": self.settings.public_url,
            "sub": client.client_id,
            "aud": self.settings.public_url,
            "exp": now + self.settings.token_ttl_seconds,
            "iat": now,
            "nbf": now,
            "jti": uuid.uuid4().hex,
            "client_id": client.client_id,
            "scope": scope,
            "tenant_id": str(client.tenant_id),
            "wg_client": str(client.id),
            "role": client.role,
        }
        header = {"alg": SIGNING_ALGORITHM, "typ": "at+jwt", "kid": self.keys.active_kid}
        return jwt.encode(header, claims, self.keys.key_set, algorithms=[SIGNING_ALGORITHM])

    def query_client(self, client_id: str) -> ClientRecord | None:
        client = self._client
        return client if client is not None and client.client_id == client_id else None

    def save_token(self, token: dict[str, Any], request: OAuth2Request) -> None:
        """JWTs are self-contained; nothing to store."""

    def send_signal(self, name: str, *args: Any, **kwargs: Any) -> None:
        """No signal system."""

    def create_oauth2_request(self, request: _TokenRequest) -> _TokenRequest:
        return request

    def handle_response(
        self, status: int, body: dict[str, Any], headers: list[tuple[str, str]]
    ) -> TokenAnswer:
        return TokenAnswer(status=status, body=body, headers=list(headers))

    def answer(
        self, client: ClientRecord | None, headers: Mapping[str, str], form: dict[str, str]
    ) -> TokenAnswer:
        # Synchronous from here to the end: no other request can swap the prefetched client.
        self._client = client
        try:
            request = _TokenRequest(f"{self.settings.public_url}/oauth/token", headers, form)
        except InsecureTransportError:
            return TokenAnswer(
                400,
                {"error": "invalid_request", "error_description": "WG_PUBLIC_URL must be https."},
                [],
            )
        try:
            answer: TokenAnswer = self.create_token_response(request)
        finally:
            self._client = None
        if answer.body.get("error") == "invalid_client":
            # One answer for an unknown client, a wrong secret and a revoked client alike.
            answer.body["error_description"] = "Client authentication failed."
        return answer


def client_id_from_request(headers: dict[str, str], form: dict[str, str]) -> str | None:
    """The client id a token request names, by HTTP Basic or form field, to prefetch the client."""
    auth = headers.get("authorization", "")
    if auth[:6].lower() == "basic ":
        try:
            decoded = base64.b64decode(auth[6:].strip(), validate=True).decode()
        except (binascii.Error, UnicodeDecodeError):
            return None
        from urllib.parse import unquote

        return unquote(decoded.split(":", 1)[0]) if ":" in decoded else None
    return form.get("client_id")


# ---- checking tokens -------------------------------------------------------------------------


def _b64json(segment: str) -> dict[str, Any]:
    try:
        value = json.loads(base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4)))
    except (binascii.Error, ValueError, UnicodeDecodeError) as exc:
        raise Unauthorized("The token is malformed.") from exc
    if not isinstance(value, dict):
        raise Unauthorized("The token is malformed.")
    return value


def unverified_parts(token: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """Header and claims, read only to choose which keys verify the token."""
    parts = token.split(".")
    if len(parts) != 3 or not all(parts):
        raise Unauthorized("The token is malformed.")
    return _b64json(parts[0]), _b64json(parts[1])


def verify_jwt(
    token: str,
    key_set: KeySet,
    *,
    algorithms: tuple[str, ...],
    issuer: str,
    audience: str,
) -> dict[str, Any]:
    try:
        decoded = jwt.decode(token, key_set, algorithms=list(algorithms))
        registry = jwt.JWTClaimsRegistry(
            leeway=LEEWAY_SECONDS,
            iss={"essential": True, "value": issuer},
            aud={"essential": True, "value": audience},
            exp={"essential": True},
        )
        registry.validate(decoded.claims)
    except (JoseError, ValueError, TypeError, KeyError) as exc:
        raise Unauthorized("The token is not valid.") from exc
    claims: dict[str, Any] = decoded.claims
    return claims


def verify_service_token(token: str, keys: SigningKeys, settings: Settings) -> dict[str, Any]:
    header, _ = unverified_parts(token)
    if header.get("alg") != SIGNING_ALGORITHM or header.get("typ") != "at+jwt":
        raise Unauthorized("The token is not valid.")
    if not _has_kid(keys, header):
        raise Unauthorized("The token is signed by an unknown key.")
    return verify_jwt(
        token,
        keys.key_set,
        algorithms=(SIGNING_ALGORITHM,),
        issuer=settings.public_url,
        audience=settings.public_url,
    )


def _has_kid(keys: SigningKeys, header: dict[str, Any]) -> bool:
    kid = header.get("kid")
    return isinstance(kid, str) and any(key.kid == kid for key in keys.key_set.keys)


def scopes_for(role: str, claimed: str | None) -> frozenset[str]:
    allowed = ROLE_SCOPES.get(role, frozenset())
    return frozenset(parse_scopes(claimed)) & allowed
