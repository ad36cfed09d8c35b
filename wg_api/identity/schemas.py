"""msgspec Structs in and out of the identity endpoints."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Any, Literal

import msgspec
from msgspec import UNSET, Meta, UnsetType


class TenantOut(msgspec.Struct):
    id: uuid.UUID
    slug: str
    name: str
    kind: Literal["brand", "facilitator"]


Weekday = Literal["mon", "tue", "wed", "thu", "fri", "sat", "sun"]


class WorkingHours(msgspec.Struct, forbid_unknown_fields=True):
    """When the tenant's people work, in its own time zone: times on the quarter hour, `end`
    after `start` on the same day, at least one day."""

    start: Annotated[str, Meta(examples=["09:00"], description="HH:MM, on the quarter hour")]
    end: Annotated[str, Meta(examples=["18:00"], description="HH:MM, after `start`")]
    days: Annotated[
        list[str],
        Meta(
            examples=[["mon", "tue", "wed", "thu", "fri"]],
            description="Working days among mon, tue, wed, thu, fri, sat, sun; no repeats.",
        ),
    ]


class TenantProfile(msgspec.Struct):
    """The caller's own tenant, with what only it (and the services that need it) read."""

    id: uuid.UUID
    slug: str
    name: str
    kind: Literal["brand", "facilitator"]
    timezone: str
    country: Annotated[str | None, Meta(description="ISO 3166-1 alpha-2; null: no holidays")]
    working_hours: WorkingHours
    aliases: Annotated[
        list[str],
        Meta(
            description="Other names the tenant goes by, scrubbed from the shared text of every "
            "group it is in.",
            examples=[["KAL", "凯斯特服装", "Kestrel Kids"]],
        ),
    ]


class TenantProfilePatch(msgspec.Struct, forbid_unknown_fields=True):
    """Only the fields sent change; `"country": null` clears the country. `aliases` and
    `working_hours` are replaced whole."""

    timezone: Annotated[str, Meta(examples=["Europe/Stockholm"])] | UnsetType = UNSET
    country: Annotated[str, Meta(examples=["SE"])] | UnsetType | None = UNSET
    working_hours: WorkingHours | UnsetType = UNSET
    aliases: list[str] | UnsetType = UNSET


class PrincipalOut(msgspec.Struct):
    type: Literal["client", "user"]
    id: uuid.UUID
    name: str


class MeOut(msgspec.Struct):
    tenant: TenantOut
    principal: PrincipalOut
    scopes: list[str]
    role: str


class TokenOut(msgspec.Struct):
    access_token: str
    token_type: str
    expires_in: int
    scope: str


class OAuthErrorOut(msgspec.Struct, omit_defaults=True):
    error: str
    error_description: str | None = None


class ApiClientCreate(msgspec.Struct, forbid_unknown_fields=True):
    name: str
    role: Literal["admin", "editor", "viewer"] = "viewer"
    scopes: list[str] | None = None


class ApiClientOut(msgspec.Struct):
    """An API client as listed: never its secret."""

    id: uuid.UUID
    client_id: str
    name: str
    role: str
    scopes: list[str]
    created_at: datetime
    secret_rotated_at: datetime | None
    revoked_at: datetime | None


class ApiClientWithSecret(msgspec.Struct):
    """An API client with its secret, answered once: at creation or rotation."""

    id: uuid.UUID
    client_id: str
    client_secret: str
    name: str
    role: str
    scopes: list[str]
    created_at: datetime
    secret_rotated_at: datetime | None
    revoked_at: datetime | None
    token_url: str


class IdentityProviderCreate(msgspec.Struct, forbid_unknown_fields=True):
    issuer: str
    audience: str
    default_role: Literal["admin", "editor", "viewer"]
    proof_token: str
    jwks_uri: str | None = None
    role_claim: str | None = None


class IdentityProviderOut(msgspec.Struct):
    id: uuid.UUID
    issuer: str
    audience: str
    jwks_uri: str | None
    role_claim: str | None
    default_role: str
    created_at: datetime


class AuditActorOut(msgspec.Struct):
    type: str
    id: uuid.UUID | None
    name: str


class AuditTargetOut(msgspec.Struct):
    type: str
    id: uuid.UUID | None


class AuditEntryOut(msgspec.Struct):
    id: uuid.UUID
    occurred_at: datetime
    action: str
    actor: AuditActorOut
    target: AuditTargetOut
    details: dict[str, Any]
