"""/v1/webhook-endpoints: endpoints, their deliveries, redelivery and replay."""

from __future__ import annotations

import uuid
from typing import Annotated, Any, Literal

from litestar import Controller, Request, Response, delete, get, patch, post
from litestar.params import FromPath, JSONBody, QueryParameter

from wg_api.identity.access import requires
from wg_api.identity.keys import SigningKeys
from wg_api.identity.principal import Principal
from wg_api.integrations.webhooks import service
from wg_api.integrations.webhooks.schemas import (
    ReplayOut,
    ReplayRequest,
    WebhookDeliveryOut,
    WebhookEndpointCreate,
    WebhookEndpointOut,
    WebhookEndpointPatch,
    WebhookEndpointWithSecret,
)
from wg_api.integrations.webhooks.secrets import SecretBox
from wg_api.platform.http import Body, check_if_match, etag_of
from wg_api.platform.outbound import OUTBOUND_STATE_KEY, OutboundClient
from wg_api.platform.pagination import Page, Pagination, page_response
from wg_api.platform.transaction import DbSession
from wg_api.settings import Settings

MANAGE = requires("webhooks:manage", role="admin")
SECRET_BOX_STATE_KEY = "webhook_secret_box"  # noqa: S105 (a state key)
NO_STORE = {"Cache-Control": "no-store"}


def _box(request: Request[Any, Any, Any]) -> SecretBox:
    state = request.app.state
    box: SecretBox | None = state.get(SECRET_BOX_STATE_KEY)
    if box is None:
        keys: SigningKeys = state["signing_keys"]
        box = state[SECRET_BOX_STATE_KEY] = SecretBox(keys.secrets())
    return box


def _outbound(request: Request[Any, Any, Any]) -> OutboundClient:
    outbound: OutboundClient = request.app.state[OUTBOUND_STATE_KEY]
    return outbound


class WebhookEndpointsController(Controller):
    """Where the tenant's events are pushed, signed per Standard Webhooks."""

    path = "/webhook-endpoints"
    tags = ["Webhooks"]

    @post(
        summary="Register a webhook endpoint",
        status_code=201,
        data_dto=Body[WebhookEndpointCreate],
        **MANAGE,
    )
    async def create(
        self,
        request: Request[Principal, Any, Any],
        db_session: DbSession,
        data: JSONBody[WebhookEndpointCreate],
    ) -> Response[WebhookEndpointWithSecret]:
        """Events of the tenant's feed from now on are POSTed to `url` (https; http only to
        loopback when `WG_OUTBOUND_ALLOW_LOOPBACK` is on), those of `event_types` only when
        given. The answer carries `secret` (`whsec_...`), shown this once: verify each delivery's
        `webhook-signature` with it. `ordered: true` delivers one event at a time in feed order,
        a failing event holding back the later ones.

        A URL that is not https, carries credentials or reaches an address the service does not
        call (private, loopback, link-local, metadata...): 422 naming `url`.
        """
        made = await service.create_endpoint(
            db_session, _outbound(request), _box(request), request.user.tenant_id, data
        )
        return Response(
            made,
            status_code=201,
            headers={**NO_STORE, "Location": f"/v1/webhook-endpoints/{made.id}"},
        )

    @get(summary="List webhook endpoints", **MANAGE)
    async def list_endpoints(
        self, request: Request[Principal, Any, Any], db_session: DbSession, page: Pagination
    ) -> Response[Page[WebhookEndpointOut]]:
        """The tenant's endpoints, oldest first. Never their secrets."""
        result = await service.list_endpoints(
            db_session, request.user.tenant_id, limit=page.limit, after=page.after
        )
        return page_response(request, result)

    @get("/{endpoint_id:uuid}", summary="Read a webhook endpoint", **MANAGE)
    async def read(
        self,
        request: Request[Principal, Any, Any],
        db_session: DbSession,
        endpoint_id: FromPath[uuid.UUID],
    ) -> Response[WebhookEndpointOut]:
        endpoint = await service.get_endpoint(db_session, request.user.tenant_id, endpoint_id)
        return Response(endpoint, headers={"ETag": etag_of(endpoint)})

    @patch(
        "/{endpoint_id:uuid}",
        summary="Change a webhook endpoint",
        data_dto=Body[WebhookEndpointPatch],
        **MANAGE,
    )
    async def change(
        self,
        request: Request[Principal, Any, Any],
        db_session: DbSession,
        endpoint_id: FromPath[uuid.UUID],
        data: JSONBody[WebhookEndpointPatch],
    ) -> Response[WebhookEndpointOut]:
        """Change `url`, `event_types`, `description`, `ordered` or `status`. An endpoint the
        service disabled (it answered 410, or failed everything for 5 days) is enabled again with
        `"status": "enabled"`; it then gets the events from that moment on (replay the gap with
        `POST .../replay`). Honours `If-Match`."""
        tenant_id = request.user.tenant_id
        current = await service.get_endpoint(db_session, tenant_id, endpoint_id)
        check_if_match(request, etag_of(current))
        changed = await service.change_endpoint(
            db_session, _outbound(request), tenant_id, endpoint_id, data
        )
        return Response(changed, headers={"ETag": etag_of(changed)})

    @delete("/{endpoint_id:uuid}", summary="Remove a webhook endpoint", **MANAGE)
    async def remove(
        self,
        request: Request[Principal, Any, Any],
        db_session: DbSession,
        endpoint_id: FromPath[uuid.UUID],
    ) -> None:
        """Nothing more is sent to it, its deliveries are forgotten. Honours `If-Match`."""
        tenant_id = request.user.tenant_id
        current = await service.get_endpoint(db_session, tenant_id, endpoint_id)
        check_if_match(request, etag_of(current))
        await service.delete_endpoint(db_session, tenant_id, endpoint_id)

    @post(
        "/{endpoint_id:uuid}/rotate-secret",
        summary="Give a webhook endpoint a new secret",
        status_code=200,
        **MANAGE,
    )
    async def rotate_secret(
        self,
        request: Request[Principal, Any, Any],
        db_session: DbSession,
        endpoint_id: FromPath[uuid.UUID],
    ) -> Response[WebhookEndpointWithSecret]:
        """A new `secret`, shown this once. For 24 hours (`previous_secret_expires_at`) every
        delivery carries two signatures in `webhook-signature`, one per secret, so the receiver
        can switch secrets at its own pace."""
        rotated = await service.rotate_secret(
            db_session, _box(request), request.user.tenant_id, endpoint_id
        )
        return Response(rotated, headers=NO_STORE)

    @get("/{endpoint_id:uuid}/deliveries", summary="List an endpoint's deliveries", **MANAGE)
    async def deliveries(
        self,
        request: Request[Principal, Any, Any],
        db_session: DbSession,
        endpoint_id: FromPath[uuid.UUID],
        page: Pagination,
        status: Annotated[
            Literal["pending", "succeeded", "failed"] | None,
            QueryParameter(name="status", description="Only attempts with this status."),
        ] = None,
    ) -> Response[Page[WebhookDeliveryOut]]:
        """One item per attempt, newest first. A retry not yet made is an item with
        `status: "pending"` and its `next_attempt_at`; every attempt of an event carries the
        same `event_id`, sent as `webhook-id`."""
        result = await service.list_deliveries(
            db_session,
            request.user.tenant_id,
            endpoint_id,
            status=status,
            limit=page.limit,
            after=page.after,
        )
        return page_response(request, result)

    @post(
        "/{endpoint_id:uuid}/deliveries/{delivery_id:uuid}/redeliver",
        summary="Send a delivery's event again",
        status_code=202,
        **MANAGE,
    )
    async def redeliver(
        self,
        request: Request[Principal, Any, Any],
        db_session: DbSession,
        endpoint_id: FromPath[uuid.UUID],
        delivery_id: FromPath[uuid.UUID],
    ) -> WebhookDeliveryOut:
        """Schedules the event of that delivery now, as a new attempt with its own retries and
        the same `webhook-id`. Answers the pending attempt."""
        return await service.redeliver(db_session, request.user.tenant_id, endpoint_id, delivery_id)

    @post(
        "/{endpoint_id:uuid}/replay",
        summary="Send every event since a time again",
        status_code=202,
        data_dto=Body[ReplayRequest],
        **MANAGE,
    )
    async def replay(
        self,
        request: Request[Principal, Any, Any],
        db_session: DbSession,
        endpoint_id: FromPath[uuid.UUID],
        data: JSONBody[ReplayRequest],
    ) -> ReplayOut:
        """Every event of the feed that occurred at or after `since` (within the feed's
        retention) and that the endpoint's `event_types` take, in feed order; answers how many
        were scheduled."""
        settings: Settings = request.app.state["settings"]
        return await service.replay(
            db_session,
            request.user.tenant_id,
            endpoint_id,
            data.since,
            settings.event_retention_days,
        )
