"""msgspec Structs in and out of the findings endpoints, with the contract's vocabularies."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import date, datetime
from typing import Annotated, Literal

import msgspec
from msgspec import UNSET, Meta, UnsetType

from wg_api.platform.errors import FieldError

Kind = Literal["non_compliance", "observation", "good_practice"]
Area = Literal[
    "management_system",
    "worker_involvement",
    "freedom_of_association",
    "non_discrimination",
    "fair_remuneration",
    "working_hours",
    "health_and_safety",
    "child_labour",
    "young_workers",
    "precarious_employment",
    "bonded_labour",
    "environment",
    "ethical_business",
    "migrant_parent_workers",
]
Severity = Literal["zero_tolerance", "critical", "major", "minor"]
Basis = Literal["legal", "code"]
Scheme = Literal["smeta", "amfori_bsci", "slcp", "rba_vap", "internal", "other"]
Status = Literal["open", "remediation_in_progress", "resolved", "verified", "disputed"]
Remediation = Literal["school", "vocational", "training", "other"]

AREAS: tuple[str, ...] = Area.__args__  # type: ignore[attr-defined]
CHILD_AREAS = ("child_labour", "young_workers")

Title = Annotated[str, Meta(min_length=1, max_length=300)]
Description = Annotated[str, Meta(max_length=10000)]
ExternalId = Annotated[str, Meta(min_length=1, max_length=200, pattern=r"^[^/\s][^/]*$")]
Text = Annotated[str, Meta(min_length=1, max_length=5000)]
Count = Annotated[int, Meta(ge=0, le=1_000_000)]


class Source(msgspec.Struct, forbid_unknown_fields=True):
    scheme: Scheme
    reference: Annotated[str, Meta(min_length=1, max_length=200)] | None = None


class Cap(msgspec.Struct, forbid_unknown_fields=True):
    """A corrective action plan."""

    planned_actions: Text
    due_on: date
    root_cause: Text | None = None
    contact: Annotated[str, Meta(min_length=1, max_length=200)] | None = None


class ChildLabourCase(msgspec.Struct, forbid_unknown_fields=True):
    """Counts only: never a child's name, age or any other child-level data."""

    confirmed_under_min_age: Count = 0
    young_workers_in_hazardous_work: Count = 0
    age_unconfirmed: Count = 0
    remediation: Remediation | None = None


class FindingFields(msgspec.Struct, forbid_unknown_fields=True):
    """Every writable field of a finding except `external_id` (PUT takes it from the path)."""

    supplier_id: uuid.UUID
    kind: Kind
    area: Area
    title: Title
    observed_on: date
    source: Source
    description: Description = ""
    severity: Severity | None = None
    basis: Basis | None = None
    status: Status = "open"
    affected_workers: Count | None = None
    cap: Cap | None = None
    child_labour_case: ChildLabourCase | None = None


class FindingIn(FindingFields, forbid_unknown_fields=True):
    external_id: ExternalId | None = None


class FindingPatch(msgspec.Struct, forbid_unknown_fields=True):
    """Only the fields sent change; `null` clears an optional field."""

    supplier_id: uuid.UUID | UnsetType = UNSET
    external_id: ExternalId | UnsetType | None = UNSET
    kind: Kind | UnsetType = UNSET
    area: Area | UnsetType = UNSET
    title: Title | UnsetType = UNSET
    observed_on: date | UnsetType = UNSET
    source: Source | UnsetType = UNSET
    description: Description | UnsetType = UNSET
    severity: Severity | UnsetType | None = UNSET
    basis: Basis | UnsetType | None = UNSET
    status: Status | UnsetType = UNSET
    affected_workers: Count | UnsetType | None = UNSET
    cap: Cap | UnsetType | None = UNSET
    child_labour_case: ChildLabourCase | UnsetType | None = UNSET


class Finding(msgspec.Struct):
    id: uuid.UUID
    supplier_id: uuid.UUID
    external_id: str | None
    kind: Kind
    area: Area
    severity: Severity | None
    basis: Basis | None
    title: str
    description: str
    observed_on: date
    source: Source
    status: Status
    affected_workers: int | None
    cap: Cap | None
    child_labour_case: ChildLabourCase | None
    created_at: datetime
    updated_at: datetime


@dataclass(frozen=True)
class FindingFilters:
    """The list's (and the export's) filters, all optional."""

    supplier_id: uuid.UUID | None = None
    area: str | None = None
    severity: str | None = None
    status: str | None = None
    observed_from: date | None = None
    observed_to: date | None = None
    updated_since: datetime | None = None


class FindingRow(FindingIn, forbid_unknown_fields=True):
    """One row of a bulk import (and of an export): a finding as `PUT` takes it, with its
    `external_id`, or with the `id` of one of the tenant's findings."""

    id: uuid.UUID | None = None


ImportStatus = Literal["created", "updated", "unchanged", "failed", "not_written"]


class ImportRowResult(msgspec.Struct, omit_defaults=True):
    line: int
    external_id: str | None
    status: ImportStatus
    id: uuid.UUID | None = None
    errors: list[FieldError] | None = None


class ImportSummary(msgspec.Struct):
    rows: int
    created: int
    updated: int
    unchanged: int
    failed: int
    not_written: int


class ImportResult(msgspec.Struct):
    """`dry_run`: nothing written, each row says what it would have been. `atomic` with a bad
    row: nothing written, the good rows are `not_written`."""

    summary: ImportSummary
    results: list[ImportRowResult]
    dry_run: bool
    atomic: bool
