"""msgspec Structs in and out of the identity endpoints."""

from __future__ import annotations

import uuid
from typing import Literal

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
