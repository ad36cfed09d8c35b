"""Identity endpoints: the OAuth token endpoint, keys and metadata, /v1/me, /v1/tenants,
/v1/tenant, /v1/api-clients, /v1/identity-providers and /v1/audit-log."""

from __future__ import annotations

import uuid
from typing import Annotated, Any, cast

import msgspec
from litestar import Controller, Request, Response, delete, get, patch, post
from litestar.params import FromPath, JSONBody, QueryParameter

from wg_api.identity import service
from wg_api.identity.access import requires
from wg_api.identity.auth import AUTHENTICATOR_STATE_KEY, Authenticator
from wg_api.identity.keys import SIGNING_ALGORITHM, SigningKeys
from wg_api.identity.principal import Principal
from wg_api.identity.rate_limit import (
    LIMITER_STATE_KEY,
    UNAUTHENTICATED_STATE_KEY,
    RateLimiter,
    UnauthenticatedGate,
    client_address,
    rate_limit_headers,
)
from wg_api.identity.schemas import (
    ApiClientCreate,
    ApiClientOut,
    ApiClientWithSecret,
    AuditEntryOut,
    IdentityProviderCreate,
    IdentityProviderOut,
    MeOut,
    OAuthErrorOut,
    PrincipalOut,
    TenantOut,
    TenantProfile,
    TenantProfilePatch,
)
from wg_api.identity.scopes import SCOPES
from wg_api.identity.tokens import TokenServer, client_id_from_request
from wg_api.platform.asgi import Scope
from wg_api.platform.database import Database
from wg_api.platform.errors import NotFound
from wg_api.platform.http import Body, check_if_match, etag_of
from wg_api.platform.outbound import OUTBOUND_STATE_KEY
from wg_api.platform.pagination import Page, Pagination, page_response
from wg_api.platform.transaction import DbSession
from wg_api.settings import Settings

TOKEN_FORM_TYPES = ("application/x-www-form-urlencoded", "multipart/form-data")
MAX_CLIENT_ID_LENGTH = 100


def _oauth_error(
    status: int, error: str, description: str, headers: dict[str, str] | None = None
) -> Response[bytes]:
    return Response(
        msgspec.json.encode(OAuthErrorOut(error=error, error_description=description)),
        status_code=status,
        media_type="application/json",
        headers={"Cache-Control": "no-store", "Pragma": "no-cache", **(headers or {})},
    )


def _slow_down(wait: int) -> Response[bytes]:
    return _oauth_error(
        429,
        "slow_down",
        "Too many failed or unauthenticated requests from this address; try again later.",
        {"Retry-After": str(wait)},
    )


class OAuthController(Controller):
    tags = ["OAuth"]

    @post(
        "/oauth/token",
        summary="Issue an access token (client credentials)",
        responses={},
        status_code=200,
        security=[{}],
        request_max_body_size=16 * 1024,
    )
    async def token(self, request: Request[Any, Any, Any]) -> Response[Any]:
        """OAuth 2.0 token endpoint (RFC 6749 §4.4), `grant_type=client_credentials`.

        Authenticate with HTTP Basic (`client_id:client_secret`) or with `client_id` and
        `client_secret` form fields. Answers an RFC 9068 JWT access token; errors follow RFC 6749
        §5.2 (`invalid_client` is 401).
        """
        settings: Settings = request.app.state["settings"]
        media_type = request.headers.get("content-type", "").split(";", 1)[0].strip().lower()
        if media_type not in TOKEN_FORM_TYPES:
            return _oauth_error(
                400,
                "invalid_request",
                "Send the token request as application/x-www-form-urlencoded.",
            )
        form = {k: str(v) for k, v in (await request.form()).items()}
        headers = {k.lower(): v for k, v in request.headers.items()}
        client_id = client_id_from_request(headers, form)
        gate: UnauthenticatedGate = request.app.state[UNAUTHENTICATED_STATE_KEY]
        address = client_address(cast(Scope, request.scope))
        # The lookup is work for a caller not yet known: its address pays, and is paid back
        # when the secret is right. Failures count per address and client id together, so a
        # stranger's wrong secrets never spend the client's own budget.
        if wait := gate.addresses.take(address):
            return _slow_down(wait)
        failures_key = f"{address} {(client_id or '')[:MAX_CLIENT_ID_LENGTH]}"
        if wait := gate.token_failures.wait(failures_key):
            return _slow_down(wait)
        client = None
        if client_id and len(client_id) <= MAX_CLIENT_ID_LENGTH:
            database: Database = request.app.state["database"]
            async with gate.db_slot(), database.transaction() as session:
                client = await service.client_for_token(session, client_id)
        server: TokenServer = request.app.state["token_server"]
        answer = server.answer(client, request.headers, form)
        if answer.status == 401:
            gate.token_failures.take(failures_key)
        elif answer.status == 200 and client is not None:
            gate.addresses.give_back(address)
            limiter: RateLimiter = request.app.state[LIMITER_STATE_KEY]
            decision = limiter.hit(f"token:{client.id}", settings.token_rate_limit_per_minute)
            if not decision.allowed:
                return _oauth_error(
                    429,
                    "slow_down",
                    "Too many token requests; reuse tokens until they expire.",
                    {k.decode(): v.decode() for k, v in rate_limit_headers(decision)},
                )
        return Response(
            msgspec.json.encode(answer.body),
            status_code=answer.status,
            media_type="application/json",
            headers={"Cache-Control": "no-store", "Pragma": "no-cache", **dict(answer.headers)},
        )

    @get("/.well-known/jwks.json", summary="The service's public signing keys", security=[{}])
    async def jwks(self, request: Request[Any, Any, Any]) -> dict[str, Any]:
        keys: SigningKeys = request.app.state["signing_keys"]
        return keys.public_jwks()

    @get(
        "/.well-known/oauth-authorization-server",
        summary="Authorization server metadata (RFC 8414)",
        security=[{}],
    )
    async def metadata(self, request: Request[Any, Any, Any]) -> dict[str, Any]:
        base = request.app.state["settings"].public_url
        return {
            "issuer": base,
            "token_endpoint": f"{base}/oauth/token",
            "jwks_uri": f"{base}/.well-known/jwks.json",
            "grant_types_supported": ["client_credentials"],
            "token_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post"],
            "scopes_supported": list(SCOPES),
            "response_types_supported": [],
            "token_endpoint_auth_signing_alg_values_supported": [SIGNING_ALGORITHM],
            "service_documentation": f"{base}/schema",
        }


class IdentityController(Controller):
    tags = ["Identity"]

    @get("/me", summary="Who am I", **requires(None))
    async def me(
        self, request: Request[Principal, Any, Any], db_session: DbSession
    ) -> Response[MeOut]:
        """The caller's tenant, principal, effective scopes and role."""
        principal = request.user
        tenant = await service.tenant_by_id(db_session, principal.tenant_id)
        if tenant is None:
            raise NotFound("No such tenant.")
        body = MeOut(
            tenant=tenant,
            principal=PrincipalOut(type=principal.type, id=principal.id, name=principal.name),
            scopes=sorted(principal.scopes),
            role=principal.role,
        )
        return Response(body, headers={"ETag": etag_of(body)})

    @get("/tenants", summary="The directory of tenants", **requires(None))
    async def directory(
        self,
        request: Request[Principal, Any, Any],
        db_session: DbSession,
        page: Pagination,
        q: Annotated[
            str | None,
            QueryParameter(name="q", max_length=100, description="Part of a name or slug."),
        ] = None,
    ) -> Response[Page[TenantOut]]:
        """Every tenant's `id`, `slug`, `name` and `kind`, ordered by slug; nothing else."""
        result = await service.tenant_directory(db_session, q, page)
        return page_response(request, result)


ADMIN = requires("admin", role="admin")
# Where create_app puts the identity.service.AliasPolicy that sharing provides.
ALIAS_POLICY_STATE_KEY = "alias_policy"


class TenantController(Controller):
    """The caller's own tenant: its time zone, country, working hours and aliases."""

    path = "/tenant"
    tags = ["Identity"]

    @get(summary="Your tenant", **requires(None))
    async def read(
        self, request: Request[Principal, Any, Any], db_session: DbSession
    ) -> Response[TenantProfile]:
        """Any principal of the tenant reads it: `timezone` (IANA), `country` (ISO 3166-1
        alpha-2 or null: no public holidays), `working_hours` and `aliases`. With an `ETag`."""
        profile = await service.tenant_profile(db_session, request.user.tenant_id)
        return Response(profile, headers={"ETag": etag_of(profile)})

    @patch(summary="Change your tenant", data_dto=Body[TenantProfilePatch], **ADMIN)
    async def change(
        self,
        request: Request[Principal, Any, Any],
        db_session: DbSession,
        data: JSONBody[TenantProfilePatch],
    ) -> Response[TenantProfile]:
        """Admins change `timezone`, `country` (null clears it), `working_hours` and `aliases`
        (each replaced whole); the slug, name and kind are not theirs to change. Honours
        `If-Match`; audited (`tenant.updated`) and announced in the tenant's feed.

        `working_hours`: `start` and `end` as HH:MM on the quarter hour, `end` after `start` on
        the same day; `days` at least one of mon..sun, no repeats (answered in week order).

        `aliases`: the other names the tenant goes by, scrubbed from every shared text of the
        groups it is in, as its name and slug are. At most 50; each trimmed, NFKC-normalised,
        3 to 100 characters (2 when it holds a Chinese, Japanese or Korean character); repeats
        (in any case) are dropped. Refused (422, naming `aliases[i]`): a common word (or only
        common words and legal forms), and another tenant's name, slug or alias in any case.
        The tenant's own name or slug is accepted. A change re-scrubs every active share of the
        tenant's findings before the answer.
        """
        current = await service.tenant_profile(db_session, request.user.tenant_id, for_update=True)
        check_if_match(request, etag_of(current))
        policy: service.AliasPolicy = request.app.state[ALIAS_POLICY_STATE_KEY]
        changed = await service.change_tenant_profile(
            db_session, request.user, current, data, policy
        )
        return Response(changed, headers={"ETag": etag_of(changed)})


def _authenticator(request: Request[Any, Any, Any]) -> Authenticator:
    authenticator: Authenticator = request.app.state[AUTHENTICATOR_STATE_KEY]
    return authenticator


def _with_secret(client: service.NewClient, token_url: str) -> ApiClientWithSecret:
    return ApiClientWithSecret(
        id=client.id,
        client_id=client.client_id,
        client_secret=client.client_secret,
        name=client.name,
        role=client.role,
        scopes=client.scopes,
        created_at=client.created_at,
        secret_rotated_at=client.secret_rotated_at,
        revoked_at=client.revoked_at,
        token_url=token_url,
    )


class ApiClientsController(Controller):
    """Machine credentials of the caller's tenant, managed by its admins."""

    path = "/api-clients"
    tags = ["Identity"]

    @post(
        summary="Create an API client",
        status_code=201,
        data_dto=Body[ApiClientCreate],
        **ADMIN,
    )
    async def create(
        self,
        request: Request[Principal, Any, Any],
        db_session: DbSession,
        data: JSONBody[ApiClientCreate],
    ) -> Response[ApiClientWithSecret]:
        """Create a client for the client-credentials grant. `role` defaults to `viewer` and
        `scopes` to everything the role may hold; you cannot grant scopes your own token lacks.

        The answer carries `client_secret`, shown this once and stored only as a hash.
        """
        settings: Settings = request.app.state["settings"]
        made = await service.create_client(
            db_session,
            tenant_id=request.user.tenant_id,
            name=data.name,
            role=data.role,
            scopes=data.scopes,
            actor=request.user,
        )
        return Response(
            _with_secret(made, f"{settings.public_url}/oauth/token"),
            status_code=201,
            headers={"Location": f"/v1/api-clients/{made.id}", "Cache-Control": "no-store"},
        )

    @get(summary="List API clients", **ADMIN)
    async def list_clients(
        self, request: Request[Principal, Any, Any], db_session: DbSession, page: Pagination
    ) -> Response[Page[ApiClientOut]]:
        """The tenant's clients, revoked ones included, oldest first. Never their secrets."""
        result = await service.list_clients(
            db_session, request.user.tenant_id, limit=page.limit, after=page.after
        )
        return page_response(request, result)

    @get("/{api_client_id:uuid}", summary="Read an API client", **ADMIN)
    async def read(
        self,
        request: Request[Principal, Any, Any],
        db_session: DbSession,
        api_client_id: FromPath[uuid.UUID],
    ) -> Response[ApiClientOut]:
        client = await service.get_client(db_session, request.user.tenant_id, api_client_id)
        return Response(client, headers={"ETag": etag_of(client)})

    @delete("/{api_client_id:uuid}", summary="Revoke an API client", **ADMIN)
    async def revoke(
        self,
        request: Request[Principal, Any, Any],
        db_session: DbSession,
        api_client_id: FromPath[uuid.UUID],
    ) -> None:
        """Revoke the client: it gets no new token from now on, and the tokens it holds stop
        working within `WG_REVOCATION_CACHE_SECONDS` (30 s by default). Honours `If-Match`.
        """
        current = await service.get_client(db_session, request.user.tenant_id, api_client_id)
        check_if_match(request, etag_of(current))
        await service.revoke_client(db_session, request.user, api_client_id)
        _authenticator(request).forget_client(api_client_id)

    @post(
        "/{api_client_id:uuid}/rotate-secret",
        summary="Give an API client a new secret",
        status_code=200,
        **ADMIN,
    )
    async def rotate_secret(
        self,
        request: Request[Principal, Any, Any],
        db_session: DbSession,
        api_client_id: FromPath[uuid.UUID],
    ) -> Response[ApiClientWithSecret]:
        """A new `client_secret`, shown this once; the old secret stops working at once.
        Tokens issued before keep working until they expire. A revoked client answers 409.
        """
        settings: Settings = request.app.state["settings"]
        rotated = await service.rotate_client_secret(db_session, request.user, api_client_id)
        return Response(
            _with_secret(rotated, f"{settings.public_url}/oauth/token"),
            headers={"Cache-Control": "no-store"},
        )


class IdentityProvidersController(Controller):
    """The OIDC issuers whose people may act for the tenant."""

    path = "/identity-providers"
    tags = ["Identity"]

    @post(
        summary="Register an identity provider",
        status_code=201,
        data_dto=Body[IdentityProviderCreate],
        **ADMIN,
    )
    async def add(
        self,
        request: Request[Principal, Any, Any],
        db_session: DbSession,
        data: JSONBody[IdentityProviderCreate],
    ) -> Response[IdentityProviderOut]:
        """Trust people's tokens from your company's OpenID Connect issuer.

        Tokens must carry `iss` equal to `issuer` and `audience` in `aud`, and be signed by a key
        of `jwks_uri` (or of the `jwks_uri` that the issuer's discovery document names). The role
        comes from the `role_claim` claim when it names a role, else `default_role`.

        `proof_token` proves you control the issuer: a token it signed, with `iss` the issuer,
        `aud` the audience and `iat` under 10 minutes old, checked against the issuer's keys
        (a `jwks_uri` counts only when it lies under the issuer's URL or is the one the issuer's
        discovery document names). Without a valid proof: 422 naming `proof_token`. An `issuer`
        or `jwks_uri` at an address the service does not call (loopback, private, link-local,
        metadata, ...): 422 naming it, before anything is fetched. Only after the proof: an issuer
        belongs to one tenant, so one another tenant registered answers 409.
        """
        settings: Settings = request.app.state["settings"]
        provider = await service.add_identity_provider(
            db_session,
            request.user,
            data,
            own_issuer=settings.public_url,
            outbound=request.app.state[OUTBOUND_STATE_KEY],
        )
        _authenticator(request).forget_provider(provider.issuer)
        return Response(
            provider,
            status_code=201,
            headers={"Location": f"/v1/identity-providers/{provider.id}"},
        )

    @get(summary="List identity providers", **ADMIN)
    async def list_providers(
        self, request: Request[Principal, Any, Any], db_session: DbSession, page: Pagination
    ) -> Response[Page[IdentityProviderOut]]:
        result = await service.list_identity_providers(
            db_session, request.user.tenant_id, limit=page.limit, after=page.after
        )
        return page_response(request, result)

    @get("/{identity_provider_id:uuid}", summary="Read an identity provider", **ADMIN)
    async def read(
        self,
        request: Request[Principal, Any, Any],
        db_session: DbSession,
        identity_provider_id: FromPath[uuid.UUID],
    ) -> Response[IdentityProviderOut]:
        provider = await service.get_identity_provider(
            db_session, request.user.tenant_id, identity_provider_id
        )
        return Response(provider, headers={"ETag": etag_of(provider)})

    @delete("/{identity_provider_id:uuid}", summary="Remove an identity provider", **ADMIN)
    async def remove(
        self,
        request: Request[Principal, Any, Any],
        db_session: DbSession,
        identity_provider_id: FromPath[uuid.UUID],
    ) -> None:
        """Stop trusting the issuer. Its people keep their records and audit trail; their
        tokens stop working (at once on this replica, within a minute on the others).
        Honours `If-Match`.
        """
        current = await service.get_identity_provider(
            db_session, request.user.tenant_id, identity_provider_id
        )
        check_if_match(request, etag_of(current))
        removed = await service.remove_identity_provider(
            db_session, request.user, identity_provider_id
        )
        _authenticator(request).forget_provider(removed.issuer)


class AuditLogController(Controller):
    path = "/audit-log"
    tags = ["Identity"]

    @get(summary="The tenant's audit log", **ADMIN)
    async def entries(
        self, request: Request[Principal, Any, Any], db_session: DbSession, page: Pagination
    ) -> Response[Page[AuditEntryOut]]:
        """Security-relevant actions in the tenant, newest first: API clients created, given a
        new secret or revoked; identity providers added or removed; people's roles changed by
        their identity provider; the tenant's profile changed (`tenant.updated`). Entries are
        never changed or deleted.
        """
        result = await service.read_audit_log(
            db_session, request.user.tenant_id, limit=page.limit, after=page.after
        )
        return page_response(request, result)
