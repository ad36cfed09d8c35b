"""msgspec Structs in and out of the working-group endpoints."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Literal

import msgspec
from msgspec import UNSET, Meta, UnsetType

GroupRole = Literal["facilitator", "member", "observer"]
GROUP_ROLES: tuple[str, ...] = GroupRole.__args__  # type: ignore[attr-defined]
InvitationStatus = Literal["pending", "accepted", "declined", "revoked"]

DEFAULT_TIMEZONE = "Asia/Hong_Kong"
MIN_ANONYMITY_THRESHOLD = 3
MAX_ANONYMITY_THRESHOLD = 1000

Name = Annotated[str, Meta(min_length=1, max_length=200)]
Description = Annotated[str, Meta(max_length=5000)]
Timezone = Annotated[str, Meta(min_length=1, max_length=64, examples=["Asia/Hong_Kong"])]
AnonymityThreshold = Annotated[
    int,
    Meta(
        ge=MIN_ANONYMITY_THRESHOLD,
        le=MAX_ANONYMITY_THRESHOLD,
        description="How many distinct member tenants must stand behind anything shared.",
    ),
]
TenantSlug = Annotated[str, Meta(min_length=1, max_length=64)]


class WorkingGroupIn(msgspec.Struct, forbid_unknown_fields=True):
    name: Name
    description: Description | None = None
    timezone: Timezone = DEFAULT_TIMEZONE
    anonymity_threshold: AnonymityThreshold = MIN_ANONYMITY_THRESHOLD


class WorkingGroupPatch(msgspec.Struct, forbid_unknown_fields=True):
    """Only the fields sent change; `"description": null` clears the description."""

    name: Name | UnsetType = UNSET
    description: Description | UnsetType | None = UNSET
    timezone: Timezone | UnsetType = UNSET
    anonymity_threshold: AnonymityThreshold | UnsetType = UNSET


class WorkingGroup(msgspec.Struct):
    id: uuid.UUID
    name: str
    description: str | None
    timezone: str
    anonymity_threshold: int
    member_count: int
    my_role: GroupRole
    created_at: datetime
    updated_at: datetime


class WorkingGroupRef(msgspec.Struct):
    id: uuid.UUID
    name: str


class TenantRef(msgspec.Struct):
    id: uuid.UUID
    slug: str
    name: str


class Member(msgspec.Struct):
    tenant: TenantRef
    role: GroupRole
    joined_at: datetime


class MemberPatch(msgspec.Struct, forbid_unknown_fields=True):
    role: GroupRole


class InvitationIn(msgspec.Struct, forbid_unknown_fields=True):
    tenant_slug: TenantSlug
    role: GroupRole


class Invitation(msgspec.Struct):
    id: uuid.UUID
    working_group: WorkingGroupRef
    tenant: TenantRef
    role: GroupRole
    status: InvitationStatus
    created_at: datetime
    responded_at: datetime | None
