"""Sharing rules: who may share where, the anonymised projection, withdrawal, reading, insights."""

from __future__ import annotations

import re
import uuid
from collections.abc import Awaitable, Callable, Mapping
from typing import Any, cast, get_args

import msgspec
from sqlalchemy.ext.asyncio import AsyncConnection

from wg_api.findings import service as findings
from wg_api.findings.schemas import AREAS, Finding, Kind, Severity
from wg_api.identity import service as identity
from wg_api.platform.database import row_mapping
from wg_api.platform.errors import (
    FieldError,
    Forbidden,
    NotFound,
    ProblemError,
    ValidationFailed,
)
from wg_api.platform.events import record_event
from wg_api.platform.models import Record
from wg_api.platform.pagination import identifier, keyset, paginate, text
from wg_api.sharing import repository
from wg_api.sharing.anonymise import anonymise_report
from wg_api.sharing.repository import SharedFilters
from wg_api.sharing.schemas import (
    DIMENSIONS,
    ChildLabourCounts,
    InsightCell,
    Insights,
    Redaction,
    RedactionField,
    RedactionKind,
    Share,
    SharedFinding,
    SharedFindingPage,
    ShareIn,
    SharePreview,
)
from wg_api.sharing.scrub import (
    ScrubTerms,
    names_in,
    organisation_terms,
    redact_organisations,
)
from wg_api.suppliers import service as suppliers
from wg_api.suppliers.schemas import Supplier
from wg_api.working_groups import service as groups

ROUNDING_BASE = 5
# Observers read but never contribute, so they neither share nor count toward the threshold.
SHARING_ROLES = ("member", "facilitator")
PERIOD = re.compile(r"^[0-9]{4}-Q[1-4]$")
COUNTRY = re.compile(r"^[A-Z]{2}$")
SEVERITIES: tuple[str, ...] = get_args(Severity)
KINDS: tuple[str, ...] = get_args(Kind)
SHARE_NOT_FOUND = "No such share."
SHARED_NOT_FOUND = "No such shared finding."


class GroupTooSmall(ProblemError):
    status = 409
    kind = "group-below-anonymity-threshold"
    title = "Group below its anonymity threshold"
    description = (
        "The working group has fewer member tenants that can share (members and facilitators; "
        "observers do not count) than its anonymity threshold; with so few a shared finding "
        "would point at its contributor. Invite more members first."
    )


class AlreadyShared(ProblemError):
    status = 409
    kind = "already-shared"
    title = "Already shared"
    description = "This finding already has an active share in that working group."


class LinkableShare(ProblemError):
    status = 409
    kind = "linkable-share"
    title = "Share would link two groups"
    description = (
        "The finding is already shared into another working group, and the two groups have fewer "
        "than k + 1 member tenants in common (k the larger of their anonymity thresholds; "
        "observers do not count; with several other groups, the tenants in all of them). A "
        "tenant in both groups would see the same record in each and could narrow its "
        "contributor down to the few tenants in both. Withdraw the other share, or share into a "
        "group with more members in common."
    )


# Another domain may act on a record just shared or changed (co-sourcing: zero-tolerance
# alerts); it registers here, in the contributor's transaction, so sharing imports none of them.
SharedHook = Callable[[AsyncConnection, uuid.UUID, uuid.UUID, SharedFinding], Awaitable[None]]
_on_shared: list[SharedHook] = []


def on_shared(hook: SharedHook) -> None:
    """Call `hook(session, contributor, group_id, shared)` after a record is published to a
    group or changed there (`shared` as the group's other members read it). Registering twice is
    registering once."""
    if hook not in _on_shared:
        _on_shared.append(hook)


async def _announce_shared(
    session: AsyncConnection, tenant_id: uuid.UUID, group_id: uuid.UUID, shared: SharedFinding
) -> None:
    for hook in _on_shared:
        await hook(session, tenant_id, group_id, shared)


def share_out(row: Record) -> Share:
    return Share(
        id=row.id,
        finding_id=row.finding_id,
        working_group_id=row.group_id,
        shared_finding_id=row.shared_finding_id,
        status=row.status,
        include_description=row.include_description,
        created_at=row.created_at,
        withdrawn_at=row.withdrawn_at,
    )


# The shared record's free text, where member names are redacted once more when read.
TEXT_COLUMNS = ("title", "description")


def shared_out(row: Record | Mapping[str, Any], names: ScrubTerms | None = None) -> SharedFinding:
    """The API shape of a shared record (a SQLAlchemy row or, on the list's driver path, an
    asyncpg Record); with `names`, member names are redacted once more."""
    m = row_mapping(row)
    case = m["child_labour_case"]
    return SharedFinding(
        id=m["id"],
        supplier=Supplier(
            id=m["supplier_id"],
            name=m["supplier_name"],
            local_name=m["supplier_local_name"],
            address=m["supplier_address"],
            country=m["supplier_country"],
            province=m["supplier_province"],
            city=m["supplier_city"],
            sector=m["supplier_sector"],
            os_id=m["supplier_os_id"],
        ),
        kind=m["kind"],
        area=m["area"],
        severity=m["severity"],
        basis=m["basis"],
        status=m["status"],
        observed_period=m["observed_period"],
        title=str(redact_organisations(m["title"], names)),
        description=redact_organisations(m["description"], names),
        affected_workers_band=m["affected_workers_band"],
        source_scheme=m["source_scheme"],
        child_labour_case=msgspec.convert(case, ChildLabourCounts) if case is not None else None,
        is_own=bool(m["is_own"]),
    )


# A row of the list (repository.LIST_FIELDS): the shared record's fields in SharedFinding's order
# with its `group_id` second, then the supplier's as `supplier_<field>`, then `is_own`. The
# positional builder below relies on it, so it is checked here, at import.
_OWN = SharedFinding.__struct_fields__
_LAYOUT = (
    "id",
    "group_id",
    *(f for f in _OWN[1:-1] if f != "supplier"),
    *(f"supplier_{f}" for f in Supplier.__struct_fields__),
    "is_own",
)
if repository.LIST_FIELDS != _LAYOUT:
    raise RuntimeError(f"the shared findings list's columns changed: {repository.LIST_FIELDS}")
_TITLE_AT = repository.LIST_FIELDS.index("title")
_SUPPLIER_AT = repository.LIST_FIELDS.index("supplier_id")


def shared_from_record(record: Any, names: ScrubTerms | None) -> SharedFinding:
    """`shared_out` for a row of the list (`repository.LIST_FIELDS`, in order), taken by
    position: a page's rows several times faster than by name."""
    title, description, band, scheme, case = record[_TITLE_AT:_SUPPLIER_AT]
    return SharedFinding(  # type: ignore[call-arg]  # a slice's length is not typed
        record[0],
        Supplier(*record[_SUPPLIER_AT:-1]),
        *record[2:_TITLE_AT],
        str(redact_organisations(title, names)),
        redact_organisations(description, names),
        band,
        scheme,
        msgspec.convert(case, ChildLabourCounts) if case is not None else None,
        bool(record[-1]),
    )


async def _scrub_terms(
    session: AsyncConnection, tenant_id: uuid.UUID, group_id: uuid.UUID, finding: Finding
) -> ScrubTerms:
    organisations: list[str] = []
    for name, slug in await repository.scrub_names(session, group_id):
        organisations += [name, slug]
    own_names, people = await identity.names_to_scrub(session, tenant_id)
    organisations += own_names
    if finding.cap is not None and finding.cap.contact:
        people.append(finding.cap.contact)
    references = [finding.external_id, finding.source.reference]
    try:
        link = await suppliers.get_visible(session, tenant_id, finding.supplier_id)
        references.append(link.internal_code)
    except NotFound:  # unlinked since: the code is gone with the link
        pass
    return ScrubTerms(
        organisations=tuple(organisations),
        people=tuple(people),
        references=tuple(r for r in references if r),
    )


async def _projection(
    session: AsyncConnection,
    tenant_id: uuid.UUID,
    group_id: uuid.UUID,
    finding: Finding,
    include_description: bool,
) -> tuple[dict[str, Any], list[tuple[str, str]], Supplier]:
    """The shared record's columns, the (kind, field) of what scrubbing removed, and the
    supplier's canonical record."""
    supplier = await suppliers.get_canonical(session, finding.supplier_id)
    if supplier is None:  # a finding always references a registry row (FK)
        raise NotFound(SHARED_NOT_FOUND)
    terms = await _scrub_terms(session, tenant_id, group_id, finding)
    values, redactions = anonymise_report(
        finding, supplier=supplier, include_description=include_description, terms=terms
    )
    return values, redactions, supplier


async def _published(
    session: AsyncConnection, tenant_id: uuid.UUID, group_id: uuid.UUID, shared_id: uuid.UUID
) -> SharedFinding:
    row = await repository.shared_one(session, tenant_id, group_id, shared_id)
    assert row is not None
    return shared_out(row)


async def _tell_others(
    session: AsyncConnection, group_id: uuid.UUID, event_type: str, shared: SharedFinding
) -> None:
    """The anonymised record, as any other member reads it, to the group's other members."""
    shared.is_own = False
    data = {"working_group_id": str(group_id), **msgspec.to_builtins(shared)}
    await repository.publish_to_group(session, shared.id, event_type, data)


async def _may_share(
    session: AsyncConnection,
    tenant_id: uuid.UUID,
    finding_id: uuid.UUID,
    data: ShareIn,
    *,
    preview: bool,
) -> Finding:
    """The finding, once every rule of sharing it into the group holds (a preview skips only
    the already-shared one: it shows what that share's record is)."""
    finding = await (findings.get if preview else findings.get_for_update)(
        session, tenant_id, finding_id
    )
    membership = await groups.membership(session, data.working_group_id, tenant_id)
    if membership is None:
        raise ValidationFailed(
            "You can only share into a working group your tenant is a member of.",
            errors=[FieldError("working_group_id", "is not a working group you belong to")],
        )
    if membership.role not in SHARING_ROLES:
        raise Forbidden("Observers cannot share findings into a working group.")
    members = await groups.active_member_count(session, data.working_group_id, SHARING_ROLES)
    threshold = membership.anonymity_threshold
    if members < threshold:
        raise GroupTooSmall(
            f"The group has {members} member tenants that can share (observers do not count) "
            f"and its anonymity threshold is {threshold}."
        )
    if not preview:
        existing = await repository.active_share(
            session, tenant_id, finding_id, data.working_group_id
        )
        if existing is not None:
            raise AlreadyShared(f"Share {existing.id} is active; withdraw it to share again.")
    linked = await repository.linkable_groups(session, finding_id, data.working_group_id)
    if linked:
        raise LinkableShare(
            f"The finding is actively shared into working group{'s' if len(linked) > 1 else ''} "
            f"{', '.join(str(group) for group in linked)}; too few member tenants are in every "
            "one of them and in this group."
        )
    return finding


async def preview(
    session: AsyncConnection, tenant_id: uuid.UUID, finding_id: uuid.UUID, data: ShareIn
) -> SharePreview:
    """Exactly the record sharing would publish, as the contributor would read it, with the kinds
    of what scrubbing removed; nothing is written."""
    finding = await _may_share(session, tenant_id, finding_id, data, preview=True)
    values, redactions, supplier = await _projection(
        session, tenant_id, data.working_group_id, finding, data.include_description
    )
    shared = shared_out(
        {
            **values,
            "id": None,
            "is_own": True,
            **{f"supplier_{name}": getattr(supplier, name) for name in Supplier.__struct_fields__},
        }
    )
    fields = msgspec.structs.asdict(shared)
    return SharePreview(
        **fields,
        redactions=[
            Redaction(kind=cast(RedactionKind, kind), field=cast(RedactionField, field))
            for kind, field in redactions
        ],
    )


async def share(
    session: AsyncConnection, tenant_id: uuid.UUID, finding_id: uuid.UUID, data: ShareIn
) -> Share:
    finding = await _may_share(session, tenant_id, finding_id, data, preview=False)
    values, _, _ = await _projection(
        session, tenant_id, data.working_group_id, finding, data.include_description
    )
    shared_id = await repository.insert_shared_finding(
        session, data.working_group_id, tenant_id, values
    )
    row = await repository.insert_share(
        session,
        tenant_id=tenant_id,
        finding_id=finding_id,
        group_id=data.working_group_id,
        shared_finding_id=shared_id,
        include_description=data.include_description,
    )
    result = share_out(row)
    await record_event(session, tenant_id, "share.created", result)
    published = await _published(session, tenant_id, data.working_group_id, shared_id)
    await _tell_others(session, data.working_group_id, "shared_finding.published", published)
    await _announce_shared(session, tenant_id, data.working_group_id, published)
    return result


async def list_shares(
    session: AsyncConnection, tenant_id: uuid.UUID, finding_id: uuid.UUID
) -> list[Share]:
    await findings.get(session, tenant_id, finding_id)
    return [share_out(r) for r in await repository.shares_of(session, tenant_id, finding_id)]


async def _withdraw(session: AsyncConnection, tenant_id: uuid.UUID, row: Record) -> Share:
    shared_id = row.shared_finding_id
    if shared_id is not None:
        # Announced while the record still exists: the database checks who contributed it.
        await repository.publish_to_group(
            session,
            shared_id,
            "shared_finding.withdrawn",
            {"working_group_id": str(row.group_id), "id": str(shared_id)},
        )
        await repository.delete_shared_finding(session, shared_id)
    withdrawn = share_out(await repository.mark_withdrawn(session, tenant_id, row.id))
    await record_event(session, tenant_id, "share.withdrawn", withdrawn)
    return withdrawn


async def withdraw(
    session: AsyncConnection, tenant_id: uuid.UUID, finding_id: uuid.UUID, share_id: uuid.UUID
) -> Share:
    """Works after the tenant left the group too: what it shared stays its own to withdraw."""
    row = await repository.share_by_id(session, tenant_id, finding_id, share_id)
    if row is None:
        raise NotFound(SHARE_NOT_FOUND)
    if row.status != "active":
        return share_out(row)
    return await _withdraw(session, tenant_id, row)


async def withdraw_all(
    session: AsyncConnection, tenant_id: uuid.UUID, finding_id: uuid.UUID
) -> None:
    """Before a finding is deleted: every active share disappears for everyone."""
    for row in await repository.shares_of(
        session, tenant_id, finding_id, active_only=True, for_update=True
    ):
        await _withdraw(session, tenant_id, row)


async def refresh(session: AsyncConnection, tenant_id: uuid.UUID, finding: Finding) -> None:
    """After the source finding changed: rebuild (and scrub again) every active share."""
    for row in await repository.shares_of(
        session, tenant_id, finding.id, active_only=True, for_update=True
    ):
        if row.shared_finding_id is None:
            continue
        before = await repository.shared_one(
            session, tenant_id, row.group_id, row.shared_finding_id
        )
        values, _, _ = await _projection(
            session, tenant_id, row.group_id, finding, row.include_description
        )
        await repository.update_shared_finding(session, row.shared_finding_id, values)
        after = await _published(session, tenant_id, row.group_id, row.shared_finding_id)
        if before is not None and shared_out(before) == after:
            continue
        # A group below its threshold shows nothing, so it is told nothing either; its members
        # read the current record when enough members are back.
        if await repository.below_threshold(session, row.group_id):
            continue
        await _tell_others(session, row.group_id, "shared_finding.updated", after)
        await _announce_shared(session, tenant_id, row.group_id, after)


def _one_of(values: tuple[str, ...]) -> str:
    return "must be one of " + ", ".join(values)


def _filter_errors(
    area: str | None,
    severity: str | None,
    country: str | None,
    period: str | None,
    kind: str | None,
) -> list[FieldError]:
    errors = []
    if area is not None and area not in AREAS:
        errors.append(FieldError("area", _one_of(AREAS)))
    if severity is not None and severity not in SEVERITIES:
        errors.append(FieldError("severity", _one_of(SEVERITIES)))
    if kind is not None and kind not in KINDS:
        errors.append(FieldError("kind", _one_of(KINDS)))
    if country is not None and not COUNTRY.match(country):
        errors.append(FieldError("country", "must be an ISO 3166-1 alpha-2 code such as CN"))
    if period is not None and not PERIOD.match(period):
        errors.append(FieldError("period", "must be a quarter such as 2026-Q3"))
    return errors


def shared_filters(
    *,
    supplier_id: uuid.UUID | None,
    area: str | None,
    severity: str | None,
    country: str | None,
    period: str | None,
    kind: str | None,
) -> SharedFilters:
    """The filters of the shared-findings list; a value outside its vocabulary is a 422 naming
    every such parameter."""
    errors = _filter_errors(area, severity, country, period, kind)
    if errors:
        raise ValidationFailed("Some filters are not valid.", errors=errors)
    return SharedFilters(
        supplier_id=supplier_id,
        area=area,
        severity=severity,
        country=country,
        period=period,
        kind=kind,
    )


def insight_query(
    group_by: str | None,
    *,
    supplier_id: uuid.UUID | None,
    area: str | None,
    severity: str | None,
    country: str | None,
    period: str | None,
    kind: str | None,
) -> tuple[list[str], SharedFilters]:
    """The dimensions and filters of an insights query, every bad value named in one 422."""
    dims = [d.strip() for d in group_by.split(",")] if group_by and group_by.strip() else []
    errors = []
    unknown = [d for d in dims if d not in DIMENSIONS]
    if unknown or len(set(dims)) != len(dims):
        message = f"must be distinct values among {', '.join(DIMENSIONS)}"
        if unknown:
            message += f"; unknown: {', '.join(unknown)}"
        errors.append(FieldError("group_by", message))
    errors += _filter_errors(area, severity, country, period, kind)
    if errors:
        raise ValidationFailed("Some query parameters are not valid.", errors=errors)
    filters = SharedFilters(
        supplier_id=supplier_id,
        area=area,
        severity=severity,
        country=country,
        period=period,
        kind=kind,
    )
    return dims, filters


def _terms_of_row(row: repository.ReaderRow | None) -> ScrubTerms | None:
    """The names to redact from what an active member reads in the group (its reader row), or
    None while the group is below its anonymity threshold (it shows nothing then); NotFound (as
    for a group that does not exist) for anyone but an active member (no row)."""
    if row is None:
        raise NotFound(groups.GROUP_NOT_FOUND)
    if row.below_threshold:
        return None
    return organisation_terms(tuple(sorted(set(row.names))))


# The names to redact in each group this server has listed, with the version of the group's
# reader row they were read from (0021). A page whose reader row has that version or an older one
# redacts with them; a newer version (the group's members, invitations or their names changed)
# reads the row again. Only a page or a shared finding that row-level security let the caller
# read looks here.
_GROUP_TERMS: dict[uuid.UUID, tuple[int, ScrubTerms]] = {}
_GROUP_TERMS_KEPT = 1024


async def _page_terms(
    session: AsyncConnection, group_id: uuid.UUID, version: int
) -> ScrubTerms | None:
    kept = _GROUP_TERMS.get(group_id)
    if kept is not None and kept[0] >= version:
        return kept[1]
    row = await repository.reader_row(session, group_id)
    terms = _terms_of_row(row)
    if row is not None and terms is not None:
        if len(_GROUP_TERMS) >= _GROUP_TERMS_KEPT:
            _GROUP_TERMS.clear()
        _GROUP_TERMS[group_id] = (row.version, terms)
    return terms


# Positions in a row of the list (repository.LIST_FIELDS).
_TEXTS_AT = tuple(repository.LIST_FIELDS.index(column) for column in TEXT_COLUMNS)
_SUPPLIER_NAME_AT = repository.LIST_FIELDS.index("supplier_name")


async def list_shared(
    session: AsyncConnection,
    tenant_id: uuid.UUID,
    group_id: uuid.UUID,
    filters: SharedFilters,
    *,
    after: tuple[Any, ...] | None,
    limit: int,
) -> SharedFindingPage:
    position = keyset(after, text, identifier, text, identifier)
    version, rows = await repository.shared_page(
        session, tenant_id, group_id, filters, after=position, limit=limit
    )
    if version is None:  # no rows: an empty page, a group below its threshold or no member
        below = _terms_of_row(await repository.reader_row(session, group_id)) is None
        return SharedFindingPage(items=[], next_cursor=None, group_below_threshold=below)
    names = await _page_terms(session, group_id, version)
    if names is None:  # fell below its threshold since the page was read
        return SharedFindingPage(items=[], next_cursor=None, group_below_threshold=True)
    page_names = names_in((row[at] for row in rows for at in _TEXTS_AT), names)
    items = [(row[_SUPPLIER_NAME_AT], shared_from_record(row, page_names)) for row in rows]
    page = paginate(
        items,
        limit,
        lambda item: [item[0], str(item[1].supplier.id), item[1].observed_period, str(item[1].id)],
    )
    return SharedFindingPage(
        items=[shared for _, shared in page.items],
        next_cursor=page.next_cursor,
        group_below_threshold=False,
    )


async def get_shared(
    session: AsyncConnection, tenant_id: uuid.UUID, group_id: uuid.UUID, shared_id: uuid.UUID
) -> SharedFinding:
    found = await repository.shared_read(session, tenant_id, group_id, shared_id)
    if found is None:  # no such id in the group, a group below its threshold, or no member
        _terms_of_row(await repository.reader_row(session, group_id))  # 404s a non-member
        raise NotFound(SHARED_NOT_FOUND)
    version, row = found
    names = await _page_terms(session, group_id, version)
    if names is None:  # fell below its threshold since the row was read
        raise NotFound(SHARED_NOT_FOUND)
    return shared_from_record(row, names_in((row[at] for at in _TEXTS_AT), names))


async def insights(
    session: AsyncConnection,
    tenant_id: uuid.UUID,
    group_id: uuid.UUID,
    dimensions: list[str],
    filters: SharedFilters,
) -> Insights:
    membership = await groups.require_member(session, group_id, tenant_id)
    threshold = max(3, membership.anonymity_threshold)
    if await repository.below_threshold(session, group_id):
        return Insights(
            group_by=dimensions,
            threshold=threshold,
            rounding_base=ROUNDING_BASE,
            cells=[],
            suppressed_cells=0,
            group_below_threshold=True,
        )
    rows = await repository.insight_cells(session, group_id, dimensions, filters, ROUNDING_BASE)
    cells = [
        InsightCell(
            key={d: row.cell.get(d) for d in dimensions},
            findings=row.findings,
            suppliers=row.suppliers,
            contributors=row.contributors,
        )
        for row in rows
        if row.findings is not None
    ]
    cells.sort(key=lambda c: tuple((c.key[d] or "") for d in dimensions))
    return Insights(
        group_by=dimensions,
        threshold=threshold,
        rounding_base=ROUNDING_BASE,
        cells=cells,
        suppressed_cells=sum(1 for row in rows if row.findings is None),
        group_below_threshold=False,
    )


async def supplier_visible_in_shares(session: AsyncConnection, supplier_id: uuid.UUID) -> bool:
    return await repository.supplier_in_visible_share(session, supplier_id)


# Sharing keeps anonymised copies of findings and makes their suppliers readable to members.
findings.subscribe(changed=refresh, deleting=withdraw_all)
suppliers.also_visible_when(supplier_visible_in_shares)
