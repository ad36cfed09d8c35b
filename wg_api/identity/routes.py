"""Identity endpoints: the OAuth token endpoint, key and metadata documents, /v1/me, /v1/tenants."""

from __future__ import annotations

import uuid
from typing import Annotated, Any

import msgspec
import sqlalchemy as sa
from litestar import Controller, Request, Response, get, post
from litestar.params import QueryParameter

from wg_api.identity import repository
from wg_api.identity.auth import requires
from wg_api.identity.keys import SIGNING_ALGORITHM, SigningKeys
from wg_api.identity.models import tenants
from wg_api.identity.principal import Principal
from wg_api.identity.rate_limit import LIMITER_STATE_KEY, RateLimiter, rate_limit_headers
from wg_api.identity.schemas import MeOut, OAuthErrorOut, PrincipalOut, TenantOut, TokenOut
from wg_api.identity.scopes import SCOPES
from wg_api.identity.tokens import TokenServer, client_id_from_request
from wg_api.platform.database import Database
from wg_api.platform.errors import NotFound
from wg_api.platform.pagination import Page, Pagination, page_response, paginate
from wg_api.platform.transaction import DbSession
from wg_api.settings import Settings

TOKEN_FORM_TYPES = ("application/x-www-form-urlencoded", "multipart/form-data")


def _oauth_error(
    status: int, error: str, description: str, headers: dict[str, str] | None = None
) -> Response[bytes]:
    return Response(
        msgspec.json.encode(OAuthErrorOut(error=error, error_description=description)),
        status_code=status,
        media_type="application/json",
        headers={"Cache-Control": "no-store", "Pragma": "no-cache", **(headers or {})},
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
        limiter: RateLimiter = request.app.state[LIMITER_STATE_KEY]
        bucket = f"token:{client_id or (request.client.host if request.client else 'unknown')}"
        decision = limiter.hit(bucket, settings.token_rate_limit_per_minute)
        if not decision.allowed:
            return _oauth_error(
                429,
                "slow_down",
                "Too many token requests; reuse tokens until they expire.",
                {k.decode(): v.decode() for k, v in rate_limit_headers(decision)},
            )
        database: Database = request.app.state["database"]
        client = None
        if client_id:
            async with database.transaction() as session:
                client = await repository.client_for_token(session, client_id)
        server: TokenServer = request.app.state["token_server"]
        answer = server.answer(client, request.headers, form)
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


def _tenant_out(row: Any) -> TenantOut:
    return TenantOut(id=row.id, slug=row.slug, name=row.name, kind=row.kind)


class IdentityController(Controller):
    tags = ["Identity"]

    @get("/me", summary="Who am I", **requires(None))
    async def me(self, request: Request[Principal, Any, Any], db_session: DbSession) -> MeOut:
        """The caller's tenant, principal, effective scopes and role."""
        principal = request.user
        row = (
            await db_session.execute(sa.select(tenants).where(tenants.c.id == principal.tenant_id))
        ).one_or_none()
        if row is None:
            raise NotFound("No such tenant.")
        return MeOut(
            tenant=_tenant_out(row),
            principal=PrincipalOut(type=principal.type, id=principal.id, name=principal.name),
            scopes=sorted(principal.scopes),
            role=principal.role,
        )

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
        statement = sa.select(tenants.c.id, tenants.c.slug, tenants.c.name, tenants.c.kind)
        if q:
            pattern = (
                "%" + q.lower().replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
            )
            statement = statement.where(
                sa.or_(sa.func.lower(tenants.c.name).like(pattern), tenants.c.slug.like(pattern))
            )
        if page.after:
            statement = statement.where(tenants.c.slug > str(page.after[0]))
        rows = (
            await db_session.execute(statement.order_by(tenants.c.slug).limit(page.limit + 1))
        ).all()
        result = paginate([_tenant_out(r) for r in rows], page.limit, lambda t: [t.slug])
        return page_response(request, result)


__all__ = ["IdentityController", "OAuthController", "TokenOut", "uuid"]
