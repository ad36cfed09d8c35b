"""create_app(): the one place where everything is wired."""

from __future__ import annotations

import asyncio
import gc
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from typing import Any, cast

from litestar import Litestar, Router
from litestar.di import Provide
from litestar.exceptions import HTTPException
from litestar.middleware import DefineMiddleware
from litestar.openapi.config import OpenAPIConfig
from litestar.openapi.plugins import ScalarRenderPlugin
from litestar.openapi.spec import Components, OAuthFlow, OAuthFlows, SecurityScheme, Tag
from litestar.types import ControllerRouterHandler

from wg_api import __version__
from wg_api.cosourcing.routes import CONTROLLERS as COSOURCING_CONTROLLERS
from wg_api.findings.routes import FindingsController
from wg_api.funding.routes import (
    ExpensesController,
    GroupInitiativesController,
    IndicatorsController,
    InitiativesController,
    PledgesController,
)
from wg_api.identity.auth import AUTHENTICATOR_STATE_KEY, Authenticator, AuthMiddleware
from wg_api.identity.keys import SigningKeys
from wg_api.identity.provider_keys import JWKSCache
from wg_api.identity.rate_limit import (
    LIMITER_STATE_KEY,
    UNAUTHENTICATED_STATE_KEY,
    RateLimiter,
    TenantRateLimitMiddleware,
    UnauthenticatedGate,
)
from wg_api.identity.routes import (
    ALIAS_POLICY_STATE_KEY,
    ApiClientsController,
    AuditLogController,
    IdentityController,
    IdentityProvidersController,
    OAuthController,
    TenantController,
)
from wg_api.identity.scopes import SCOPES
from wg_api.identity.tokens import TokenServer
from wg_api.integrations.routes import EventsController
from wg_api.integrations.webhooks.routes import WebhookEndpointsController
from wg_api.meetings.calendar_routes import CONTROLLERS as CALENDAR_CONTROLLERS
from wg_api.meetings.calendar_routes import PublicFeedController
from wg_api.meetings.routes import CONTROLLERS as MEETING_CONTROLLERS
from wg_api.meetings.slots_routes import MeetingSlotsController
from wg_api.platform.asgi import ASGIApp, BodyDeadline
from wg_api.platform.database import Database, resolve_admin_url
from wg_api.platform.errors import handle_exception
from wg_api.platform.http import StorableTextMiddleware, fix_options_allow, strict_bodies
from wg_api.platform.migrate import head_revision
from wg_api.platform.observability import ObservabilityMiddleware, configure_logging
from wg_api.platform.openapi import refine_openapi
from wg_api.platform.outbound import OUTBOUND_STATE_KEY, OutboundClient
from wg_api.platform.pagination import CURSOR_CIPHER_STATE_KEY, CursorCipher, provide_page_params
from wg_api.platform.roles import check_logins
from wg_api.platform.routes import PlatformController
from wg_api.platform.transaction import (
    TransactionMiddleware,
    provide_db_session,
    replay_idempotent,
)
from wg_api.settings import Settings, get_settings
from wg_api.sharing import scrub
from wg_api.sharing.aliases import ALIAS_POLICY
from wg_api.sharing.routes import SharedFindingsController, SharesController
from wg_api.suppliers.routes import SupplierRegistryController, SuppliersController
from wg_api.working_groups.routes import InvitationsController, WorkingGroupsController

API_DESCRIPTION = """\
wg-api lets competing brands work together on child rights in their supply chains: they share
anonymised audit findings in working groups, meet, and co-fund programmes.

Authenticate with `Authorization: Bearer <token>`; get a token from `POST /oauth/token` with the
client-credentials grant. Errors are RFC 9457 problem details; lists are keyset-paginated.
"""


def v1_route_handlers() -> list[ControllerRouterHandler]:
    """Every /v1 controller. Domain issues add theirs here."""
    return [
        IdentityController,
        TenantController,
        ApiClientsController,
        IdentityProvidersController,
        AuditLogController,
        EventsController,
        WebhookEndpointsController,
        SuppliersController,
        SupplierRegistryController,
        FindingsController,
        WorkingGroupsController,
        InvitationsController,
        SharesController,
        SharedFindingsController,
        GroupInitiativesController,
        InitiativesController,
        PledgesController,
        ExpensesController,
        IndicatorsController,
        *MEETING_CONTROLLERS,
        MeetingSlotsController,
        *CALENDAR_CONTROLLERS,
        *COSOURCING_CONTROLLERS,
    ]


def openapi_config() -> OpenAPIConfig:
    return OpenAPIConfig(
        title="wg-api",
        version=__version__,
        description=API_DESCRIPTION,
        path="/schema",
        render_plugins=[ScalarRenderPlugin()],
        components=Components(
            security_schemes={
                "bearerAuth": SecurityScheme(
                    type="oauth2",
                    description="RFC 9068 JWT access tokens, or a person's token from the "
                    "identity provider their tenant registered.",
                    flows=OAuthFlows(
                        client_credentials=OAuthFlow(
                            token_url="/oauth/token",  # noqa: S106
                            scopes={scope: scope for scope in SCOPES},
                        )
                    ),
                )
            }
        ),
        security=[{"bearerAuth": []}],
        tags=[
            Tag(name="Platform", description="Health, readiness, metrics and problem types."),
            Tag(name="OAuth", description="Tokens and keys."),
            Tag(name="Identity", description="Who is calling; the tenant directory."),
            Tag(name="Events", description="The change feed."),
            Tag(
                name="Webhooks",
                description="Endpoints that receive the feed's events, signed per Standard "
                "Webhooks; their deliveries, redelivery and replay.",
            ),
            Tag(name="Suppliers", description="The common registry and your private links."),
            Tag(name="Findings", description="What audits found at your suppliers; private."),
            Tag(
                name="Sharing",
                description="Anonymised findings shared into working groups, and insights.",
            ),
            Tag(
                name="Working groups",
                description="Groups, their members, and invitations from both sides.",
            ),
            Tag(
                name="Funding",
                description="Initiatives funded together: pledges, payments, expenses, the "
                "ledger's statement, cost splits and outcome indicators.",
            ),
            Tag(
                name="Meetings",
                description="Meetings and series in local time, RSVPs, agenda, minutes, "
                "action items and attendance; calendars and secret calendar feed URLs.",
            ),
            Tag(
                name="Co-sourcing",
                description="Zero-tolerance alerts to the brands linked to a supplier, "
                "remediation rooms and joint audits by double opt-in, planned audits; nobody "
                "learns who else sources there unless both choose to tell.",
            ),
        ],
        use_handler_docstrings=True,
    )


def create_app(
    settings: Settings | None = None,
    database: Database | None = None,
    extra_v1_handlers: Sequence[ControllerRouterHandler] = (),
    *,
    freeze_after_startup: bool = False,
) -> Litestar:
    """The app. `freeze_after_startup` (served processes, `wg-api serve`): see `freeze_heap`."""
    settings = settings or get_settings()

    @asynccontextmanager
    async def lifespan(app: Litestar) -> AsyncIterator[None]:
        owned = database is None
        db = database or Database.connect(resolve_admin_url(settings), settings)
        try:
            await check_logins(db.app_engine, db.system_engine, settings.owner_role)
        except BaseException:
            if owned:
                await db.dispose()
            raise
        keys = SigningKeys.load_or_create(settings.key_file)
        limiter = RateLimiter(db)
        outbound = OutboundClient(allow_loopback=settings.outbound_allow_loopback)
        gate = UnauthenticatedGate(settings)
        authenticator = Authenticator(settings, db, keys, jwks=JWKSCache(outbound), gate=gate)
        app.state.update(
            {
                "database": db,
                OUTBOUND_STATE_KEY: outbound,
                UNAUTHENTICATED_STATE_KEY: gate,
                "signing_keys": keys,
                CURSOR_CIPHER_STATE_KEY: CursorCipher(keys.secrets()),
                "token_server": TokenServer(settings, keys),
                AUTHENTICATOR_STATE_KEY: authenticator,
                LIMITER_STATE_KEY: limiter,
            }
        )
        limiter.start()
        # The Chinese dictionary (about 1 s) loads in a thread now, not in the first Chinese share.
        asyncio.get_running_loop().run_in_executor(None, scrub.warm_up)
        if freeze_after_startup:
            freeze_heap()
        try:
            yield
        finally:
            await limiter.stop()
            await outbound.aclose()
            if owned:
                await db.dispose()

    # Outermost first: who is calling, is the tenant over its budget, then the transaction.
    v1_middleware: list[Any] = [
        AuthMiddleware,
        TenantRateLimitMiddleware,
        TransactionMiddleware,
    ]
    v1 = Router(
        path="/v1",
        route_handlers=strict_bodies([*v1_route_handlers(), *extra_v1_handlers]),
        middleware=v1_middleware,
        # After the guards, before the handler: a caller who may not make the request never
        # gets a stored answer. No /v1 handler may set its own before_request.
        before_request=replay_idempotent,
        dependencies={
            "db_session": Provide(provide_db_session),
            "page": Provide(provide_page_params, sync_to_thread=False),
        },
    )
    exception_handlers: Any = {Exception: handle_exception, HTTPException: handle_exception}
    app = Litestar(
        route_handlers=[PlatformController, OAuthController, PublicFeedController, v1],
        lifespan=[lifespan],
        exception_handlers=exception_handlers,
        openapi_config=openapi_config(),
        request_max_body_size=settings.max_body_bytes,
        middleware=[
            # Outside every route's own middleware: a body that never arrives answers 408.
            DefineMiddleware(cast(Any, BodyDeadline), seconds=settings.body_timeout_seconds),
            # After routing, before anything reads a value: text PostgreSQL cannot store is a 400.
            cast(Any, StorableTextMiddleware),
        ],
        state=_initial_state(settings),
        debug=False,
        # Logging is ours (JSON, configured in asgi_app); Litestar must not replace it.
        logging_config=None,
    )
    # Built once, now that every route is registered, and refined in place: `/schema` and
    # `wg-api openapi export` serve this same document.
    refine_openapi(app, app.openapi_schema)
    fix_options_allow(app)
    return app


def freeze_heap() -> None:
    """Move every object made so far out of the garbage collector's sight (`gc.freeze`): what
    import and start-up made lives as long as the process, and each full collection walked all
    of it, about 200,000 objects: pauses of 85 to 110 ms, several a minute under load, which
    were the whole tail of the p99 latency (bench/README.md). Served processes only: the tests
    make and drop many apps, and frozen objects are never collected."""
    gc.collect()
    gc.freeze()


def _initial_state(settings: Settings) -> Any:
    from litestar.datastructures import State

    return State(
        {
            "settings": settings,
            "migration_head": head_revision(settings),
            ALIAS_POLICY_STATE_KEY: ALIAS_POLICY,
        }
    )


def asgi_app(
    settings: Settings | None = None,
    database: Database | None = None,
    extra_v1_handlers: Sequence[ControllerRouterHandler] = (),
    *,
    freeze_after_startup: bool = False,
) -> Any:
    """The served ASGI callable: the Litestar app inside the request-id/metrics/log wrapper."""
    settings = settings or get_settings()
    configure_logging(settings.log_level)
    app = create_app(
        settings, database, extra_v1_handlers, freeze_after_startup=freeze_after_startup
    )
    return ObservabilityMiddleware(cast(ASGIApp, app))
