"""Supplier rules: matching, linking the caller to the registry, reading what it may see."""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from typing import Any, Literal

from sqlalchemy.ext.asyncio import AsyncConnection

from wg_api.platform.database import row_mapping
from wg_api.platform.errors import Conflict, FieldError, NotFound, ValidationFailed
from wg_api.platform.events import record_event
from wg_api.platform.models import Record
from wg_api.platform.pagination import Page, identifier, keyset, paginate, text
from wg_api.suppliers import repository
from wg_api.suppliers.matching import (
    match_key,
    normalise_address,
    normalise_local_name,
    normalise_name,
)
from wg_api.suppliers.schemas import (
    Candidate,
    MatchResult,
    MySupplier,
    Supplier,
    SupplierIn,
    SupplierLinkOut,
    SupplierMatchIn,
    SupplierMatchOut,
)

MAX_CANDIDATES = 5
Reason = Literal["os_id", "exact", "similar_name", "similar_local_name"]
NOT_FOUND = "No such supplier."


def supplier_out(row: Record) -> Supplier:
    return Supplier(
        id=row.id,
        name=row.name,
        local_name=row.local_name,
        address=row.address,
        country=row.country,
        province=row.province,
        city=row.city,
        sector=row.sector,
        os_id=row.os_id,
    )


def my_supplier_out(row: Any) -> MySupplier:
    """From an asyncpg Record (the list's driver path) or a SQLAlchemy row."""
    m = row_mapping(row)
    return MySupplier(
        id=m["id"],
        name=m["name"],
        local_name=m["local_name"],
        address=m["address"],
        country=m["country"],
        province=m["province"],
        city=m["city"],
        sector=m["sector"],
        os_id=m["os_id"],
        internal_code=m["internal_code"],
        linked_at=m["created_at"],
    )


def _address_similarity(a: str, b: str) -> float:
    left, right = set(normalise_address(a).split()), set(normalise_address(b).split())
    if not left or not right:
        return 0.0
    return len(left & right) / len(left | right)


async def match(session: AsyncConnection, query: SupplierMatchIn) -> SupplierMatchOut:
    """Ranked candidates from the registry; creates nothing."""
    candidates: dict[uuid.UUID, Candidate] = {}
    if query.os_id and (row := await repository.by_os_id(session, query.os_id)):
        candidates[row.id] = Candidate(supplier_out(row), 1.0, "os_id")
    key = match_key(query.name, query.address, query.country)
    if (row := await repository.by_match_key(session, key)) and row.id not in candidates:
        candidates[row.id] = Candidate(supplier_out(row), 1.0, "exact")
    rows = await repository.similar(
        session,
        match_name=normalise_name(query.name),
        local_name=normalise_local_name(query.local_name) if query.local_name else None,
        country=query.country,
        limit=MAX_CANDIDATES * 2,
    )
    for row in rows:
        if row.id in candidates:
            continue
        by_local = float(row.local_similarity) > float(row.name_similarity)
        name_score = max(float(row.name_similarity), float(row.local_similarity))
        confidence = round(
            0.75 * name_score + 0.25 * _address_similarity(query.address, row.address), 3
        )
        reason: Reason = "similar_local_name" if by_local else "similar_name"
        candidates[row.id] = Candidate(supplier_out(row), min(confidence, 0.99), reason)
    ranked = sorted(candidates.values(), key=lambda c: (-c.confidence, str(c.supplier.id)))
    return SupplierMatchOut(candidates=ranked[:MAX_CANDIDATES])


def _missing_for_create(data: SupplierIn) -> list[FieldError]:
    return [
        FieldError(name, "is required to create a supplier")
        for name in ("name", "address", "country")
        if getattr(data, name) is None
    ]


async def link_or_create(
    session: AsyncConnection, tenant_id: uuid.UUID, data: SupplierIn
) -> tuple[SupplierLinkOut, bool]:
    """Link the tenant to an existing supplier or create one. Answers (result, created)."""
    row: Record | None = None
    method = "new"
    status = "created"
    if data.supplier_id is not None:
        row = await repository.by_id(session, data.supplier_id)
        if row is None:
            raise ValidationFailed(
                "The supplier does not exist.",
                errors=[FieldError("supplier_id", "no supplier with this id in the registry")],
            )
        method, status = "supplier_id", "linked"
    elif data.os_id is not None and (row := await repository.by_os_id(session, data.os_id)):
        method, status = "os_id", "linked"
    else:
        if errors := _missing_for_create(data):
            raise ValidationFailed("Name, address and country are needed.", errors=errors)
        assert data.name is not None
        assert data.address is not None
        assert data.country is not None
        key = match_key(data.name, data.address, data.country)
        row = await repository.by_match_key(session, key)
        if row is not None:
            method, status = "name_address", "exact"
        else:
            row = await repository.insert_supplier(
                session,
                {
                    "name": data.name.strip(),
                    "local_name": data.local_name,
                    "address": data.address.strip(),
                    "country": data.country,
                    "province": data.province,
                    "city": data.city,
                    "sector": data.sector,
                    "os_id": data.os_id,
                    "match_key": key,
                    "match_name": normalise_name(data.name),
                },
            )
            if row is None:  # created concurrently by someone else: link to theirs
                row = await repository.by_match_key(session, key)
                if row is None:
                    raise Conflict("The supplier was created concurrently; retry the request.")
                method, status = "name_address", "exact"
    assert row is not None
    code_taken = Conflict(
        "You already use this internal_code for another of your suppliers.",
        errors=[FieldError("internal_code", "already used for another supplier")],
    )
    if data.internal_code is not None:
        owner = await repository.internal_code_owner(session, tenant_id, data.internal_code)
        if owner is not None and owner != row.id:
            raise code_taken
    link = await repository.link(session, tenant_id, row.id, data.internal_code)
    if link is None:
        raise code_taken
    result = SupplierLinkOut(
        supplier=supplier_out(row),
        match=MatchResult(status=status, method=method),  # type: ignore[arg-type]
        internal_code=link.internal_code,
    )
    await record_event(session, tenant_id, "supplier.linked", result)
    return result, status == "created"


async def list_mine(
    session: AsyncConnection,
    tenant_id: uuid.UUID,
    *,
    q: str | None,
    country: str | None,
    after: tuple[Any, ...] | None,
    limit: int,
) -> Page[MySupplier]:
    rows = await repository.list_linked(
        session, tenant_id, q=q, country=country, after=keyset(after, text, identifier), limit=limit
    )
    return paginate([my_supplier_out(r) for r in rows], limit, lambda s: [s.name, str(s.id)])


async def search_registry(
    session: AsyncConnection,
    *,
    q: str | None,
    country: str | None,
    after: tuple[Any, ...] | None,
    limit: int,
) -> Page[Supplier]:
    rows = await repository.search_registry(
        session, q=q, country=country, after=keyset(after, text, identifier), limit=limit
    )
    return paginate([supplier_out(r) for r in rows], limit, lambda s: [s.name, str(s.id)])


async def get_visible(
    session: AsyncConnection, tenant_id: uuid.UUID, supplier_id: uuid.UUID
) -> MySupplier:
    """A supplier the caller links to."""
    row = await repository.linked(session, tenant_id, supplier_id)
    if row is None:
        raise NotFound(NOT_FOUND)
    return my_supplier_out(row)


async def get_canonical(session: AsyncConnection, supplier_id: uuid.UUID) -> Supplier | None:
    row = await repository.by_id(session, supplier_id)
    return supplier_out(row) if row else None


# Another domain may make a supplier visible to a tenant that does not link to it (sharing: a
# supplier in a shared finding the caller can read); it says so here, so suppliers imports none.
SupplierVisible = Callable[[AsyncConnection, uuid.UUID], Awaitable[bool]]
_visible_elsewhere: list[SupplierVisible] = []


def also_visible_when(check: SupplierVisible) -> None:
    """Register `check(session, supplier_id)`; registering twice is registering once."""
    if check not in _visible_elsewhere:
        _visible_elsewhere.append(check)


async def get_for_reader(
    session: AsyncConnection, tenant_id: uuid.UUID, supplier_id: uuid.UUID
) -> MySupplier | Supplier:
    """A supplier the caller links to (with its code), or else one another domain lets it see
    (canonical fields only); NotFound for any other, as for a random id."""
    try:
        return await get_visible(session, tenant_id, supplier_id)
    except NotFound:
        canonical = await get_canonical(session, supplier_id)
        if canonical is not None:
            for check in _visible_elsewhere:
                if await check(session, supplier_id):
                    return canonical
        raise


async def unlink(session: AsyncConnection, tenant_id: uuid.UUID, supplier_id: uuid.UUID) -> None:
    if not await repository.unlink(session, tenant_id, supplier_id):
        raise NotFound(NOT_FOUND)
    await record_event(session, tenant_id, "supplier.unlinked", {"supplier_id": str(supplier_id)})


async def is_linked(session: AsyncConnection, tenant_id: uuid.UUID, supplier_id: uuid.UUID) -> bool:
    return await repository.is_linked(session, tenant_id, supplier_id)
