"""Identity providers' keys, fetched through the outbound client, and the proof of control that
registering an issuer requires."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from typing import Any, cast
from urllib.parse import urlsplit

from joserfc import jwt
from joserfc.errors import JoseError
from joserfc.jwk import KeySet, KeySetSerialization

from wg_api.identity.tokens import LEEWAY_SECONDS, PROVIDER_ALGORITHMS, unverified_parts
from wg_api.platform.errors import FieldError, ProblemError, ValidationFailed
from wg_api.platform.outbound import OutboundClient, OutboundError

log = logging.getLogger("wg_api.auth")

JWKS_REFETCH_SECONDS = 60.0
JWKS_MAX_AGE_SECONDS = 3600.0
JWKS_MAX_BYTES = 512 * 1024
FETCH_TIMEOUT_SECONDS = 5.0
PROOF_MAX_AGE_SECONDS = 600

Clock = Callable[[], float]
# What a failed fetch or a bad document raises; callers catch exactly these.
KEY_ERRORS = (OutboundError, ValueError, JoseError)


async def fetch_json(outbound: OutboundClient, uri: str) -> Any:
    answer = await outbound.get(uri, max_bytes=JWKS_MAX_BYTES, timeout=FETCH_TIMEOUT_SECONDS)
    if answer.status != 200:
        raise ValueError(f"{uri} answered {answer.status}")
    return answer.json()


async def fetch_key_set(outbound: OutboundClient, uri: str) -> KeySet:
    document = await fetch_json(outbound, uri)
    if not isinstance(document, dict) or not isinstance(document.get("keys"), list):
        raise ValueError(f"{uri} is not a JWK set")
    return KeySet.import_key_set(cast(KeySetSerialization, document))


async def discover_jwks_uri(outbound: OutboundClient, issuer: str) -> str:
    """The `jwks_uri` of the issuer's OpenID Connect discovery document (which must name it)."""
    document = await fetch_json(outbound, issuer.rstrip("/") + "/.well-known/openid-configuration")
    if not isinstance(document, dict) or document.get("issuer") != issuer:
        raise ValueError("the discovery document names another issuer")
    uri = document.get("jwks_uri")
    if not isinstance(uri, str):
        raise ValueError("the discovery document has no jwks_uri")
    return uri


class JWKSCache:
    """Identity providers' key sets.

    Fetched on first use and kept for an hour; a token signed by a key the cached set lacks
    triggers a refetch, at most once a minute per set. When the provider cannot be reached, the
    last good set keeps serving.
    """

    def __init__(self, outbound: OutboundClient, clock: Clock = time.monotonic) -> None:
        self.outbound = outbound
        self.clock = clock
        self._sets: dict[str, tuple[KeySet, float]] = {}
        self._attempted: dict[str, float] = {}
        self._discovered: dict[str, tuple[str, float]] = {}
        self._locks: dict[str, asyncio.Lock] = {}

    async def jwks_uri_for(self, issuer: str, configured: str | None) -> str:
        """The configured JWKS URI, or the one OpenID Connect discovery names (cached)."""
        if configured:
            return configured
        now = self.clock()
        cached = self._discovered.get(issuer)
        if cached is not None and now - cached[1] < JWKS_MAX_AGE_SECONDS:
            return cached[0]
        uri = await discover_jwks_uri(self.outbound, issuer)
        self._discovered[issuer] = (uri, now)
        return uri

    def _cached(self, uri: str, kid: str | None) -> KeySet | None:
        """The cached set if it may serve this kid without asking the provider again."""
        cached = self._sets.get(uri)
        if cached is None:
            return None
        key_set, fetched_at = cached
        now = self.clock()
        if now - self._attempted.get(uri, fetched_at) < JWKS_REFETCH_SECONDS:
            return key_set
        fresh = now - fetched_at < JWKS_MAX_AGE_SECONDS
        return key_set if fresh and (kid is None or has_kid(key_set, kid)) else None

    async def key_set(self, uri: str, kid: str | None) -> KeySet:
        if (key_set := self._cached(uri, kid)) is not None:
            return key_set
        async with self._locks.setdefault(uri, asyncio.Lock()):
            if (key_set := self._cached(uri, kid)) is not None:
                return key_set
            self._attempted[uri] = self.clock()
            try:
                key_set = await fetch_key_set(self.outbound, uri)
            except KEY_ERRORS as exc:
                stale = self._sets.get(uri)
                if stale is None:
                    raise
                log.warning("identity provider keys unavailable, using the last good set: %s", exc)
                return stale[0]
            self._sets[uri] = (key_set, self.clock())
            return key_set


def has_kid(key_set: KeySet, kid: str) -> bool:
    return any(key.kid == kid for key in key_set.keys)


def lies_under(issuer: str, uri: str) -> bool:
    """Whether `uri` is on the issuer's origin, at or below the issuer's path."""
    a, b = urlsplit(issuer), urlsplit(uri)
    if (a.scheme, a.hostname, a.port) != (b.scheme, b.hostname, b.port):
        return False
    return (b.path.rstrip("/") + "/").startswith(a.path.rstrip("/") + "/")


def _refused(field: str, message: str) -> ValidationFailed:
    return ValidationFailed(
        "The identity provider is not valid.", errors=[FieldError(field, message)]
    )


async def check_issuer_proof(
    outbound: OutboundClient,
    *,
    issuer: str,
    audience: str,
    jwks_uri: str | None,
    proof_token: str,
    now: float | None = None,
) -> None:
    """Refuse (422 naming `proof_token` or `jwks_uri`) unless `proof_token` is a fresh token the
    issuer signed for `audience`.

    The keys must be the issuer's own: a configured `jwks_uri` counts only when it lies under the
    issuer's URL or is the one the issuer's discovery document names; otherwise a registrant could
    name another company's issuer beside a key set of its own.
    """
    try:
        header, _ = unverified_parts(proof_token)
    except ProblemError as exc:
        raise _refused("proof_token", "must be a signed JWT (JWS compact form)") from exc
    if header.get("alg") not in PROVIDER_ALGORITHMS:
        raise _refused(
            "proof_token", f"must be signed with one of {', '.join(PROVIDER_ALGORITHMS)}"
        )
    try:
        if jwks_uri is not None and lies_under(issuer, jwks_uri):
            keys_uri = jwks_uri
        else:
            keys_uri = await discover_jwks_uri(outbound, issuer)
            if jwks_uri is not None and jwks_uri != keys_uri:
                raise _refused(
                    "jwks_uri",
                    "must lie under the issuer's URL or be the jwks_uri of its discovery document",
                )
        key_set = await fetch_key_set(outbound, keys_uri)
    except KEY_ERRORS as exc:
        raise _refused(
            "proof_token", f"could not be checked: the issuer's keys were not available ({exc})"
        ) from exc
    try:
        decoded = jwt.decode(proof_token, key_set, algorithms=list(PROVIDER_ALGORITHMS))
        jwt.JWTClaimsRegistry(
            now=int(now) if now is not None else None,
            leeway=LEEWAY_SECONDS,
            iss={"essential": True, "value": issuer},
            aud={"essential": True, "value": audience},
            iat={"essential": True},
        ).validate(decoded.claims)
    except (JoseError, ValueError, TypeError, KeyError) as exc:
        raise _refused(
            "proof_token",
            "must be signed by the issuer's keys, with `iss` the issuer and `aud` the audience",
        ) from exc
    issued_at = decoded.claims.get("iat")
    current = time.time() if now is None else now
    if (
        not isinstance(issued_at, int)
        or not -LEEWAY_SECONDS <= current - issued_at < PROOF_MAX_AGE_SECONDS
    ):
        raise _refused("proof_token", "must have been issued (`iat`) within the last 10 minutes")
