"""msgspec Structs in and out of sharing and insights."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Literal

import msgspec

from wg_api.findings.schemas import Area, Basis, Kind, Scheme, Severity, Status
from wg_api.platform.pagination import Page
from wg_api.suppliers.schemas import Supplier

Dimension = Literal["area", "country", "period", "severity", "kind"]
DIMENSIONS: tuple[str, ...] = ("area", "country", "period", "severity", "kind")


class ShareIn(msgspec.Struct, forbid_unknown_fields=True):
    working_group_id: uuid.UUID
    include_description: bool = True


RedactionKind = Literal[
    "email",
    "url",
    "phone",
    "id_number",
    "messaging_id",
    "credential",
    "date",
    "age",
    "person",
    "organisation",
    "reference",
    "number",
]

RedactionField = Literal["title", "description"]


class Redaction(msgspec.Struct):
    """One kind of thing scrubbing removed from one field: never the removed text itself."""

    kind: RedactionKind
    field: RedactionField


class Share(msgspec.Struct):
    """The owner's view of one share of one of its findings."""

    id: uuid.UUID
    finding_id: uuid.UUID
    working_group_id: uuid.UUID
    shared_finding_id: uuid.UUID | None
    status: Literal["active", "withdrawn"]
    include_description: bool
    created_at: datetime
    withdrawn_at: datetime | None


class ChildLabourCounts(msgspec.Struct):
    confirmed_under_min_age: int
    young_workers_in_hazardous_work: int
    age_unconfirmed: int


class SharedFinding(msgspec.Struct):
    """A finding as a working group sees it: nothing says who contributed it."""

    id: uuid.UUID
    supplier: Supplier
    kind: Kind
    area: Area
    severity: Severity | None
    basis: Basis | None
    status: Status
    observed_period: str
    title: str
    description: str | None
    affected_workers_band: str | None
    source_scheme: Scheme
    child_labour_case: ChildLabourCounts | None
    is_own: bool


class SharePreview(msgspec.Struct):
    """Exactly the shared finding the group would see (`id` null: nothing is created, `is_own`
    true as in the contributor's own view), and what scrubbing removed."""

    id: None
    supplier: Supplier
    kind: Kind
    area: Area
    severity: Severity | None
    basis: Basis | None
    status: Status
    observed_period: str
    title: str
    description: str | None
    affected_workers_band: str | None
    source_scheme: Scheme
    child_labour_case: ChildLabourCounts | None
    is_own: bool
    redactions: list[Redaction]


class SharedFindingPage(Page[SharedFinding]):
    """A page of a group's shared findings; `group_below_threshold` true (and no items) while the
    group has fewer member tenants that can share than its anonymity threshold."""

    items: list[SharedFinding]  # declared again so the OpenAPI document names the item type
    next_cursor: str | None
    group_below_threshold: bool


class InsightCell(msgspec.Struct):
    key: dict[str, str | None]
    findings: int
    suppliers: int
    contributors: Literal["3+", "5+", "10+"]


class Insights(msgspec.Struct):
    group_by: list[str]
    threshold: int
    rounding_base: int
    cells: list[InsightCell]
    suppressed_cells: int
    group_below_threshold: bool
