"""msgspec Structs in and out of the supplier endpoints."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Literal

import msgspec
from msgspec import Meta

Country = Annotated[str, Meta(pattern=r"^[A-Z]{2}$", description="ISO 3166-1 alpha-2, upper case")]
OsId = Annotated[
    str,
    Meta(pattern=r"^[A-Z]{2}[0-9]{7}[A-Z0-9]{6}$", description="Open Supply Hub OS ID"),
]
Name = Annotated[str, Meta(min_length=1, max_length=300)]
Address = Annotated[str, Meta(min_length=1, max_length=500)]
Short = Annotated[str, Meta(min_length=1, max_length=100)]


class Supplier(msgspec.Struct):
    """A supplier's canonical fields: the same for everyone, nothing about who links to it."""

    id: uuid.UUID
    name: str
    local_name: str | None
    address: str
    country: str
    province: str | None
    city: str | None
    sector: str | None
    os_id: str | None


class SupplierMatchIn(msgspec.Struct, forbid_unknown_fields=True):
    name: Name
    address: Address
    country: Country
    local_name: Name | None = None
    os_id: OsId | None = None


class Candidate(msgspec.Struct):
    supplier: Supplier
    confidence: float
    reason: Literal["os_id", "exact", "similar_name", "similar_local_name"]


class SupplierMatchOut(msgspec.Struct):
    candidates: list[Candidate]


class SupplierIn(msgspec.Struct, forbid_unknown_fields=True):
    name: Name | None = None
    address: Address | None = None
    country: Country | None = None
    local_name: Name | None = None
    province: Short | None = None
    city: Short | None = None
    sector: Short | None = None
    os_id: OsId | None = None
    internal_code: Short | None = None
    supplier_id: uuid.UUID | None = None


class MatchResult(msgspec.Struct):
    status: Literal["created", "exact", "linked"]
    method: Literal["new", "supplier_id", "os_id", "name_address"]


class SupplierLinkOut(msgspec.Struct):
    supplier: Supplier
    match: MatchResult
    internal_code: str | None


class MySupplier(msgspec.Struct):
    """One of the caller's suppliers: the canonical fields plus the caller's own code for it."""

    id: uuid.UUID
    name: str
    local_name: str | None
    address: str
    country: str
    province: str | None
    city: str | None
    sector: str | None
    os_id: str | None
    internal_code: str | None
    linked_at: datetime
