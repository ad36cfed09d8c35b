"""Webhook endpoints and deliveries, in and out."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Literal

import msgspec
from msgspec import UNSET, Meta, UnsetType

Url = Annotated[str, Meta(min_length=1, max_length=2048, examples=["https://example.com/hooks"])]
EventType = Annotated[str, Meta(min_length=1, max_length=100, examples=["finding.created"])]
EventTypes = Annotated[list[EventType], Meta(max_length=100)]
Description = Annotated[str, Meta(max_length=500)]
EndpointStatus = Literal["enabled", "disabled"]
DeliveryStatus = Literal["pending", "succeeded", "failed"]


class WebhookEndpointCreate(msgspec.Struct, forbid_unknown_fields=True):
    """`event_types` absent or null: every type, including ones added later."""

    url: Url
    event_types: EventTypes | None = None
    description: Description | None = None
    ordered: bool = False


class WebhookEndpointPatch(msgspec.Struct, forbid_unknown_fields=True):
    """Only the fields sent change; `"event_types": null` means every type again."""

    url: Url | UnsetType = UNSET
    event_types: EventTypes | UnsetType | None = UNSET
    description: Description | UnsetType | None = UNSET
    status: EndpointStatus | UnsetType = UNSET
    ordered: bool | UnsetType = UNSET


class WebhookEndpointOut(msgspec.Struct):
    id: uuid.UUID
    url: str
    description: str | None
    event_types: list[str] | None
    ordered: bool
    status: EndpointStatus
    # Why it is disabled: `manual` (PATCH), `gone` (it answered 410) or `failing` (5 days).
    disabled_reason: str | None
    created_at: datetime
    updated_at: datetime
    secret_rotated_at: datetime | None


class WebhookEndpointWithSecret(msgspec.Struct):
    """An endpoint with its signing secret: shown at creation and rotation only."""

    id: uuid.UUID
    url: str
    description: str | None
    event_types: list[str] | None
    ordered: bool
    status: EndpointStatus
    disabled_reason: str | None
    created_at: datetime
    updated_at: datetime
    secret_rotated_at: datetime | None
    secret: str
    # During a rotation: until when the previous secret still signs every delivery too.
    previous_secret_expires_at: datetime | None = None


class WebhookDeliveryOut(msgspec.Struct):
    id: uuid.UUID
    event_id: uuid.UUID
    event_type: str
    attempt: int
    status: DeliveryStatus
    response_status: int | None
    duration_ms: int | None
    error: str | None
    attempted_at: datetime | None
    next_attempt_at: datetime | None


class ReplayRequest(msgspec.Struct, forbid_unknown_fields=True):
    since: Annotated[datetime, Meta(tz=True, examples=["2026-11-24T08:00:00Z"])]


class ReplayOut(msgspec.Struct):
    """How many events were scheduled to be sent again."""

    scheduled: int
