"""msgspec Structs in and out of the identity endpoints."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any, Literal

import msgspec


class TenantOut(msgspec.Struct):
    id: uuid.UUID
    slug: str
    name: str
    kind: Literal["brand", "facilitator"]


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
