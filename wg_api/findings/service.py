"""Findings rules: validation across fields, create/replace/change/delete, events."""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable, Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

import msgspec
from sqlalchemy.ext.asyncio import AsyncConnection

from wg_api.findings import repository
from wg_api.findings.schemas import (
    CHILD_AREAS,
    Cap,
    ChildLabourCase,
    Finding,
    FindingFields,
    FindingFilters,
    FindingIn,
    FindingPatch,
    Source,
)
from wg_api.platform.database import row_mapping
from wg_api.platform.errors import Conflict, FieldError, NotFound, ValidationFailed
from wg_api.platform.events import record_event
from wg_api.platform.models import Record
from wg_api.platform.pagination import Page, day, identifier, keyset, paginate
from wg_api.suppliers import service as suppliers

NOT_FOUND = "No such finding."
SUPPLIER_NOT_YOURS = "is not one of your suppliers; link it with POST /v1/suppliers"

# Other domains that keep something derived from a finding (sharing keeps its anonymised copies)
# subscribe here, so a finding's routes call one service and findings depends on none of them.
FindingChanged = Callable[[AsyncConnection, uuid.UUID, Finding], Awaitable[None]]
FindingDeleting = Callable[[AsyncConnection, uuid.UUID, uuid.UUID], Awaitable[None]]
_changed: list[FindingChanged] = []
_deleting: list[FindingDeleting] = []


def subscribe(*, changed: FindingChanged, deleting: FindingDeleting) -> None:
    """Call `changed` after a finding changed and `deleting` before one is deleted, in the
    same transaction. Subscribing twice is subscribing once."""
    if changed not in _changed:
        _changed.append(changed)
    if deleting not in _deleting:
        _deleting.append(deleting)


async def _announce_change(
    session: AsyncConnection, tenant_id: uuid.UUID, finding: Finding
) -> None:
    for subscriber in _changed:
        await subscriber(session, tenant_id, finding)


# The latest calendar date anywhere on Earth (UTC+14): "not in the future" for every tenant.
EARLIEST_ZONE = timedelta(hours=14)


def finding_out(row: Record | Mapping[str, Any]) -> Finding:
    """A Finding from a SQLAlchemy row or an asyncpg Record (the list's driver path)."""
    m = row_mapping(row)
    cap = m["cap"]
    case = m["child_labour_case"]
    return Finding(
        id=m["id"],
        supplier_id=m["supplier_id"],
        external_id=m["external_id"],
        kind=m["kind"],
        area=m["area"],
        severity=m["severity"],
        basis=m["basis"],
        title=m["title"],
        description=m["description"],
        observed_on=m["observed_on"],
        source=Source(scheme=m["source_scheme"], reference=m["source_reference"]),
        status=m["status"],
        affected_workers=m["affected_workers"],
        cap=Cap(**cap) if cap is not None else None,
        child_labour_case=ChildLabourCase(**case) if case is not None else None,
        created_at=m["created_at"],
        updated_at=m["updated_at"],
    )


# A row of the list holds Finding's fields in its own order, `source` as its two columns: the
# positional builder below relies on it, so it is checked here, at import.
_SOURCE_AT = Finding.__struct_fields__.index("source")
_EXPECTED = (
    *Finding.__struct_fields__[:_SOURCE_AT],
    "source_scheme",
    "source_reference",
    *Finding.__struct_fields__[_SOURCE_AT + 1 :],
)
if repository.LIST_FIELDS != _EXPECTED:
    raise RuntimeError(f"the findings list's columns changed: {repository.LIST_FIELDS}")


def finding_from_record(record: Any) -> Finding:
    """`finding_out` for a row of the list (the columns of `repository.LIST_FIELDS`, in order),
    taken by position: five times faster over a page than by name."""
    scheme, reference, status, affected_workers, cap, case, created_at, updated_at = record[
        _SOURCE_AT:
    ]
    return Finding(  # type: ignore[call-arg]  # a slice's length is not typed
        *record[:_SOURCE_AT],
        Source(scheme, reference),
        status,
        affected_workers,
        Cap(**cap) if cap is not None else None,
        ChildLabourCase(**case) if case is not None else None,
        created_at,
        updated_at,
    )


def _rule_errors(fields: FindingFields) -> list[FieldError]:
    errors: list[FieldError] = []
    if fields.kind == "non_compliance" and fields.severity is None:
        errors.append(FieldError("severity", "is required for a non_compliance finding"))
    if fields.kind != "non_compliance" and fields.severity is not None:
        errors.append(FieldError("severity", "is only for non_compliance findings"))
    if fields.child_labour_case is not None and fields.area not in CHILD_AREAS:
        errors.append(
            FieldError("child_labour_case", "is only for child_labour or young_workers findings")
        )
    latest_today = (datetime.now(UTC) + EARLIEST_ZONE).date()
    if fields.observed_on > latest_today:
        errors.append(FieldError("observed_on", "cannot be in the future"))
    if fields.cap is not None and fields.cap.due_on <= fields.observed_on:
        errors.append(FieldError("cap.due_on", "must be after observed_on"))
    if not fields.title.strip():
        errors.append(FieldError("title", "must not be blank"))
    return errors


async def _validate(
    session: AsyncConnection,
    tenant_id: uuid.UUID,
    fields: FindingFields,
    current_supplier_id: uuid.UUID | None = None,
) -> None:
    """The rules, and the supplier link; a finding may stay on a supplier the tenant has since
    unlinked (its history), but may only be put on one the tenant links to."""
    errors = _rule_errors(fields)
    if fields.supplier_id != current_supplier_id and not await suppliers.is_linked(
        session, tenant_id, fields.supplier_id
    ):
        errors.append(FieldError("supplier_id", SUPPLIER_NOT_YOURS))
    if errors:
        raise ValidationFailed("The finding is not valid.", errors=errors)


def _columns(fields: FindingFields, external_id: str | None) -> dict[str, Any]:
    return {
        "supplier_id": fields.supplier_id,
        "external_id": external_id,
        "kind": fields.kind,
        "area": fields.area,
        "severity": fields.severity,
        "basis": fields.basis,
        "title": fields.title.strip(),
        "description": fields.description,
        "observed_on": fields.observed_on,
        "source_scheme": fields.source.scheme,
        "source_reference": fields.source.reference,
        "status": fields.status,
        "affected_workers": fields.affected_workers,
        "cap": msgspec.to_builtins(fields.cap) if fields.cap is not None else None,
        "child_labour_case": (
            msgspec.to_builtins(fields.child_labour_case)
            if fields.child_labour_case is not None
            else None
        ),
    }


async def create(session: AsyncConnection, tenant_id: uuid.UUID, data: FindingIn) -> Finding:
    await _validate(session, tenant_id, data)
    if data.external_id is not None and await repository.external_id_taken(
        session, tenant_id, data.external_id, None
    ):
        raise _external_id_conflict()
    if data.external_id is None:
        row = await repository.insert(session, tenant_id, _columns(data, None))
    else:
        inserted = await repository.insert_unless_external_id_taken(
            session, tenant_id, _columns(data, data.external_id)
        )
        if inserted is None:
            raise _external_id_conflict()
        row = inserted
    finding = finding_out(row)
    await record_event(session, tenant_id, "finding.created", finding)
    return finding


def _external_id_conflict() -> Conflict:
    return Conflict(
        "You already have a finding with this external_id; "
        "use PUT /v1/findings/by-external-id/{external_id} to replace it.",
        errors=[FieldError("external_id", "already used")],
    )


async def put_by_external_id(
    session: AsyncConnection, tenant_id: uuid.UUID, external_id: str, data: FindingFields
) -> tuple[Finding, bool]:
    """Create or replace by the integrator's key; the id stays. Answers (finding, created)."""
    if isinstance(data, FindingIn) and data.external_id not in (None, external_id):
        raise ValidationFailed(
            "The body's external_id differs from the path's.",
            errors=[FieldError("external_id", "must match the path or be left out")],
        )
    existing = await repository.get_by_external_id(session, tenant_id, external_id, for_update=True)
    await _validate(session, tenant_id, data, existing.supplier_id if existing else None)
    if existing is None:
        row = await repository.insert_unless_external_id_taken(
            session, tenant_id, _columns(data, external_id)
        )
        if row is not None:
            finding = finding_out(row)
            await record_event(session, tenant_id, "finding.created", finding)
            return finding, True
        # A concurrent request with the same key inserted it first: replace that one.
        existing = await repository.get_by_external_id(
            session, tenant_id, external_id, for_update=True
        )
        if existing is None:
            raise Conflict("The finding changed concurrently; retry the request.")
        await _validate(session, tenant_id, data, existing.supplier_id)
    row = await repository.update(session, tenant_id, existing.id, _columns(data, external_id))
    finding = finding_out(row)
    await record_event(session, tenant_id, "finding.updated", finding)
    await _announce_change(session, tenant_id, finding)
    return finding, False


async def get(session: AsyncConnection, tenant_id: uuid.UUID, finding_id: uuid.UUID) -> Finding:
    record = await repository.read_one(session, tenant_id, finding_id)
    if record is None:
        raise NotFound(NOT_FOUND)
    return finding_from_record(record)


async def get_many(
    session: AsyncConnection, tenant_id: uuid.UUID, finding_ids: list[uuid.UUID]
) -> list[Finding]:
    """The tenant's findings among `finding_ids` (others' and unknown ids are left out)."""
    return [finding_out(row) for row in await repository.get_many(session, tenant_id, finding_ids)]


async def get_for_update(
    session: AsyncConnection, tenant_id: uuid.UUID, finding_id: uuid.UUID
) -> Finding:
    row = await repository.get_for_update(session, tenant_id, finding_id)
    if row is None:
        raise NotFound(NOT_FOUND)
    return finding_out(row)


async def change(
    session: AsyncConnection, tenant_id: uuid.UUID, current: Finding, patch: FindingPatch
) -> Finding:
    changes = {
        name: getattr(patch, name)
        for name in patch.__struct_fields__
        if getattr(patch, name) is not msgspec.UNSET
    }
    if not changes:
        await _announce_change(session, tenant_id, current)
        return current
    merged_fields = {
        name: changes.get(name, getattr(current, name)) for name in FindingIn.__struct_fields__
    }
    try:
        merged = msgspec.convert(msgspec.to_builtins(merged_fields), FindingIn, strict=False)
    except msgspec.ValidationError as exc:
        raise ValidationFailed(str(exc)) from exc
    await _validate(session, tenant_id, merged, current.supplier_id)
    if merged.external_id is not None and await repository.external_id_taken(
        session, tenant_id, merged.external_id, current.id
    ):
        raise Conflict(
            "You already have another finding with this external_id.",
            errors=[FieldError("external_id", "already used")],
        )
    row = await repository.update(
        session, tenant_id, current.id, _columns(merged, merged.external_id)
    )
    finding = finding_out(row)
    await record_event(
        session,
        tenant_id,
        "finding.updated",
        {**msgspec.to_builtins(finding), "changed": sorted(changes)},
    )
    await _announce_change(session, tenant_id, finding)
    return finding


async def delete(session: AsyncConnection, tenant_id: uuid.UUID, current: Finding) -> None:
    for subscriber in _deleting:
        await subscriber(session, tenant_id, current.id)
    await repository.delete(session, tenant_id, current.id)
    await record_event(
        session,
        tenant_id,
        "finding.deleted",
        {"id": str(current.id), "external_id": current.external_id},
    )


def check_filters(filters: FindingFilters) -> None:
    """The list's and the export's filters."""
    if filters.updated_since is not None and filters.updated_since.utcoffset() is None:
        # Without an offset the moment is ambiguous (UTC? the tenant's zone?): refuse to guess.
        raise ValidationFailed(
            "updated_since needs a time zone offset.",
            errors=[FieldError("updated_since", "must be RFC 3339 with Z or an offset")],
        )


async def list_page(
    session: AsyncConnection,
    tenant_id: uuid.UUID,
    filters: FindingFilters,
    *,
    after: tuple[Any, ...] | None,
    limit: int,
) -> Page[Finding]:
    check_filters(filters)
    rows = await repository.list_page(
        session, tenant_id, filters, after=keyset(after, day, identifier), limit=limit
    )
    return paginate(
        [finding_from_record(r) for r in rows],
        limit,
        lambda f: [f.observed_on.isoformat(), str(f.id)],
    )


# For the bulk import (import_.py): the same rules, columns and subscribers as single writes.
def rule_errors(fields: FindingFields) -> list[FieldError]:
    """The checks of a finding that need no database, as a single write reports them."""
    return _rule_errors(fields)


def columns_of(fields: FindingFields, external_id: str | None) -> dict[str, Any]:
    return _columns(fields, external_id)


async def announce_changes(
    session: AsyncConnection, tenant_id: uuid.UUID, changed: list[Finding]
) -> None:
    """Tell the subscribers (sharing refreshes active shares) about findings changed in bulk."""
    for finding in changed:
        await _announce_change(session, tenant_id, finding)
