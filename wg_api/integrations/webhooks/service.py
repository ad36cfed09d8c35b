"""The rules of webhook endpoints: who may register what, secrets, replays."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import msgspec
from sqlalchemy.ext.asyncio import AsyncConnection

from wg_api.integrations.webhooks import repository
from wg_api.integrations.webhooks.event_types import EVENT_TYPES
from wg_api.integrations.webhooks.schemas import (
    ReplayOut,
    WebhookDeliveryOut,
    WebhookEndpointCreate,
    WebhookEndpointOut,
    WebhookEndpointPatch,
    WebhookEndpointWithSecret,
)
from wg_api.integrations.webhooks.secrets import SecretBox, new_secret
from wg_api.platform.errors import FieldError, NotFound, ValidationFailed
from wg_api.platform.events import record_event
from wg_api.platform.models import Record
from wg_api.platform.outbound import OutboundClient, OutboundError, RefusedAddress
from wg_api.platform.pagination import Page, identifier, keyset, moment, paginate

# For this long after a rotation, every delivery carries a signature with each secret.
ROTATION_OVERLAP = timedelta(hours=24)
ENDPOINT_NOT_FOUND = "No such webhook endpoint."
DELIVERY_NOT_FOUND = "No such delivery."


def endpoint_out(row: Record) -> WebhookEndpointOut:
    return WebhookEndpointOut(
        id=row.id,
        url=row.url,
        description=row.description,
        event_types=list(row.event_types) if row.event_types is not None else None,
        ordered=row.ordered,
        status=row.status,
        disabled_reason=row.disabled_reason,
        created_at=row.created_at,
        updated_at=row.updated_at,
        secret_rotated_at=row.secret_rotated_at,
    )


def _with_secret(row: Record, secret: str) -> WebhookEndpointWithSecret:
    return WebhookEndpointWithSecret(
        **msgspec.structs.asdict(endpoint_out(row)),
        secret=secret,
        previous_secret_expires_at=row.previous_secret_expires_at,
    )


def delivery_out(row: Record) -> WebhookDeliveryOut:
    return WebhookDeliveryOut(
        id=row.id,
        event_id=row.event_id,
        event_type=row.event_type,
        attempt=row.attempt,
        status=row.status,
        response_status=row.response_status,
        duration_ms=row.duration_ms,
        error=row.error,
        attempted_at=row.attempted_at,
        next_attempt_at=row.next_attempt_at,
    )


def _event_data(row: Record) -> dict[str, Any]:
    """What the feed says about an endpoint: never its secret."""
    return msgspec.to_builtins(endpoint_out(row))  # type: ignore[no-any-return]


async def url_errors(outbound: OutboundClient, url: str, field: str = "url") -> list[FieldError]:
    """Why the service would not deliver to `url`: not https (http only to loopback when the
    setting allows it), credentials in it, or an address the service does not call."""
    try:
        target = httpx.URL(url)
    except httpx.InvalidURL:
        return [FieldError(field, "is not a URL")]
    if target.scheme not in ("https", "http") or not target.host:
        return [FieldError(field, "must be an https URL")]
    if target.userinfo:
        return [FieldError(field, "must not carry credentials; authenticate with the signature")]
    if target.fragment:
        return [FieldError(field, "must not have a fragment")]
    try:
        address = await outbound.address_for(target)
    except RefusedAddress as refused:
        return [FieldError(field, f"is at an address this service does not call: {refused.reason}")]
    except OutboundError:
        return [FieldError(field, "has a host that could not be resolved")]
    if target.scheme == "http" and not (outbound.allow_loopback and address.is_loopback):
        return [FieldError(field, "must be an https URL (http only to loopback in development)")]
    return []


def event_type_errors(event_types: list[str] | None) -> list[FieldError]:
    if event_types is None:
        return []
    if not event_types:
        return [FieldError("event_types", "must name at least one type; omit it for every type")]
    unknown = sorted({t for t in event_types if t not in EVENT_TYPES})
    if unknown:
        return [FieldError("event_types", f"names unknown event types: {', '.join(unknown)}")]
    return []


def _distinct(event_types: list[str] | None) -> list[str] | None:
    return sorted(set(event_types)) if event_types is not None else None


async def create_endpoint(
    session: AsyncConnection,
    outbound: OutboundClient,
    box: SecretBox,
    tenant_id: uuid.UUID,
    data: WebhookEndpointCreate,
) -> WebhookEndpointWithSecret:
    errors = event_type_errors(data.event_types) + await url_errors(outbound, data.url)
    if errors:
        raise ValidationFailed("The webhook endpoint is not valid.", errors=errors)
    endpoint_id = uuid.uuid4()
    secret = new_secret()
    row = await repository.create_endpoint(
        session,
        tenant_id=tenant_id,
        endpoint_id=endpoint_id,
        url=data.url,
        description=data.description,
        event_types=_distinct(data.event_types),
        ordered=data.ordered,
        sealed_secret=box.seal(secret, tenant_id, endpoint_id),
        feed_position=0,
    )
    await record_event(session, tenant_id, "webhook_endpoint.created", _event_data(row))
    # The endpoint gets the events positioned after its own creation.
    head = await repository.feed_head(session, tenant_id)
    row = await repository.update_endpoint(
        session, tenant_id, endpoint_id, {"feed_position": head}, touch=False
    )
    return _with_secret(row, secret)


async def _endpoint(
    session: AsyncConnection,
    tenant_id: uuid.UUID,
    endpoint_id: uuid.UUID,
    *,
    for_update: bool = False,
) -> Record:
    row = await repository.get_endpoint(session, tenant_id, endpoint_id, for_update=for_update)
    if row is None:
        raise NotFound(ENDPOINT_NOT_FOUND)
    return row


async def get_endpoint(
    session: AsyncConnection, tenant_id: uuid.UUID, endpoint_id: uuid.UUID
) -> WebhookEndpointOut:
    return endpoint_out(await _endpoint(session, tenant_id, endpoint_id))


async def list_endpoints(
    session: AsyncConnection, tenant_id: uuid.UUID, *, limit: int, after: tuple[Any, ...] | None
) -> Page[WebhookEndpointOut]:
    rows = await repository.list_endpoints(
        session, tenant_id, limit=limit, after=keyset(after, moment, identifier)
    )
    page = paginate(rows, limit, lambda r: [r.created_at.isoformat(), str(r.id)])
    return Page(items=[endpoint_out(r) for r in page.items], next_cursor=page.next_cursor)


async def change_endpoint(
    session: AsyncConnection,
    outbound: OutboundClient,
    tenant_id: uuid.UUID,
    endpoint_id: uuid.UUID,
    patch: WebhookEndpointPatch,
) -> WebhookEndpointOut:
    current = await _endpoint(session, tenant_id, endpoint_id, for_update=True)
    errors: list[FieldError] = []
    values: dict[str, Any] = {}
    if patch.url is not msgspec.UNSET:
        errors += await url_errors(outbound, patch.url)
        values["url"] = patch.url
    if patch.event_types is not msgspec.UNSET:
        errors += event_type_errors(patch.event_types)
        values["event_types"] = _distinct(patch.event_types)
    if errors:
        raise ValidationFailed("The webhook endpoint is not valid.", errors=errors)
    if patch.description is not msgspec.UNSET:
        values["description"] = patch.description
    if patch.ordered is not msgspec.UNSET:
        values["ordered"] = patch.ordered
    if patch.status is not msgspec.UNSET and patch.status != current.status:
        values["status"] = patch.status
        if patch.status == "disabled":
            values["disabled_reason"] = "manual"
        else:
            # Back from disabled: deliveries start with the events from now on (replay fills
            # the gap on request), and the 5 days of failures count again from zero.
            values.update(
                disabled_reason=None,
                failing_since=None,
                feed_position=await repository.feed_head(session, tenant_id),
            )
    if not values:
        return endpoint_out(current)
    row = await repository.update_endpoint(session, tenant_id, endpoint_id, values)
    await record_event(session, tenant_id, "webhook_endpoint.updated", _event_data(row))
    return endpoint_out(row)


async def delete_endpoint(
    session: AsyncConnection, tenant_id: uuid.UUID, endpoint_id: uuid.UUID
) -> None:
    row = await _endpoint(session, tenant_id, endpoint_id, for_update=True)
    await repository.delete_endpoint(session, tenant_id, endpoint_id)
    await record_event(session, tenant_id, "webhook_endpoint.deleted", _event_data(row))


async def rotate_secret(
    session: AsyncConnection, box: SecretBox, tenant_id: uuid.UUID, endpoint_id: uuid.UUID
) -> WebhookEndpointWithSecret:
    """A new secret; the one it replaces keeps signing beside it for 24 hours. Rotating again
    within those hours drops the oldest: two secrets at most sign a delivery."""
    await _endpoint(session, tenant_id, endpoint_id, for_update=True)
    sealed_now = await repository.sealed_secret(session, tenant_id, endpoint_id)
    secret = new_secret()
    now = datetime.now(UTC)
    row = await repository.update_endpoint(
        session,
        tenant_id,
        endpoint_id,
        {
            "secret": box.seal(secret, tenant_id, endpoint_id),
            "previous_secret": sealed_now,
            "previous_secret_expires_at": now + ROTATION_OVERLAP,
            "secret_rotated_at": now,
        },
    )
    await record_event(session, tenant_id, "webhook_endpoint.secret_rotated", _event_data(row))
    return _with_secret(row, secret)


async def list_deliveries(
    session: AsyncConnection,
    tenant_id: uuid.UUID,
    endpoint_id: uuid.UUID,
    *,
    status: str | None,
    limit: int,
    after: tuple[Any, ...] | None,
) -> Page[WebhookDeliveryOut]:
    await _endpoint(session, tenant_id, endpoint_id)
    rows = await repository.list_deliveries(
        session,
        tenant_id,
        endpoint_id,
        status=status,
        limit=limit,
        after=keyset(after, moment, identifier),
    )
    page = paginate(rows, limit, lambda r: [r.created_at.isoformat(), str(r.id)])
    return Page(items=[delivery_out(r) for r in page.items], next_cursor=page.next_cursor)


async def redeliver(
    session: AsyncConnection, tenant_id: uuid.UUID, endpoint_id: uuid.UUID, delivery_id: uuid.UUID
) -> WebhookDeliveryOut:
    """The delivery's event again, as a new first try (its own retries), with the same
    `webhook-id`; sent even if the endpoint is ordered and holding later events back."""
    await _endpoint(session, tenant_id, endpoint_id, for_update=True)
    found = await repository.get_delivery(session, tenant_id, endpoint_id, delivery_id)
    if found is None:
        raise NotFound(DELIVERY_NOT_FOUND)
    row = await repository.schedule_again(
        session,
        tenant_id,
        endpoint_id,
        event_id=found.event_id,
        event_type=found.event_type,
        event_position=found.event_position,
    )
    return delivery_out(row)


async def replay(
    session: AsyncConnection,
    tenant_id: uuid.UUID,
    endpoint_id: uuid.UUID,
    since: datetime,
    retention_days: int,
) -> ReplayOut:
    endpoint = await _endpoint(session, tenant_id, endpoint_id, for_update=True)
    now = datetime.now(UTC)
    if since > now:
        raise ValidationFailed(
            "Nothing to replay.", errors=[FieldError("since", "must not be in the future")]
        )
    if since < now - timedelta(days=retention_days):
        raise ValidationFailed(
            "The feed does not reach that far back.",
            errors=[FieldError("since", f"must be within the last {retention_days} days")],
        )
    scheduled = await repository.replay(
        session,
        tenant_id,
        endpoint_id,
        since=since,
        event_types=list(endpoint.event_types) if endpoint.event_types is not None else None,
    )
    return ReplayOut(scheduled=scheduled)
