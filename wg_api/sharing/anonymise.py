"""The one pipeline every share goes through: a private finding in, an anonymised record out.

No contributor (tenant, user, client), no external id, internal code, source reference or CAP
contact; the quarter instead of the date; a band instead of a head count; child-labour cases as
counts only; scrubbed text. Pure: everything it needs is passed in.
"""

from __future__ import annotations

from datetime import date
from typing import Any

from wg_api.sharing.scrub import ScrubTerms, scrub_report

WORKER_BANDS: tuple[tuple[int, int | None, str], ...] = (
    (0, 0, "0"),
    (1, 10, "1-10"),
    (11, 50, "11-50"),
    (51, 200, "51-200"),
    (201, 1000, "201-1000"),
    (1001, None, "1001+"),
)
CHILD_CASE_COUNTS = (
    "confirmed_under_min_age",
    "young_workers_in_hazardous_work",
    "age_unconfirmed",
)


def quarter(day: date) -> str:
    return f"{day.year}-Q{(day.month - 1) // 3 + 1}"


def workers_band(count: int | None) -> str | None:
    if count is None:
        return None
    for low, high, label in WORKER_BANDS:
        if count >= low and (high is None or count <= high):
            return label
    raise ValueError(f"negative head count {count}")


def child_case_counts(case: Any) -> dict[str, int] | None:
    if case is None:
        return None
    return {name: int(getattr(case, name)) for name in CHILD_CASE_COUNTS}


def _scrub_kinds(text: str, terms: ScrubTerms) -> tuple[str, list[str]]:
    """`text` scrubbed, and each kind of what was removed once (never the removed text)."""
    scrubbed, kinds = scrub_report(text, terms)
    return scrubbed, sorted(set(kinds))


def anonymise_report(
    finding: Any, *, supplier: Any, include_description: bool, terms: ScrubTerms
) -> tuple[dict[str, Any], list[tuple[str, str]]]:
    """The columns of a shared finding, built from a private finding (schemas.Finding) and its
    supplier's canonical record (suppliers.schemas.Supplier), and the (kind, field) of every kind
    of text scrubbing removed from its title and description."""
    title, title_kinds = _scrub_kinds(finding.title, terms)
    description, description_kinds = (
        _scrub_kinds(finding.description, terms) if include_description else (None, [])
    )
    redactions = [(kind, "title") for kind in title_kinds]
    redactions += [(kind, "description") for kind in description_kinds]
    values = {
        "supplier_id": finding.supplier_id,
        "supplier_name": supplier.name,
        "country": supplier.country,
        "kind": finding.kind,
        "area": finding.area,
        "severity": finding.severity,
        "basis": finding.basis,
        "status": finding.status,
        "observed_period": quarter(finding.observed_on),
        "title": title,
        "description": description,
        "affected_workers_band": workers_band(finding.affected_workers),
        "source_scheme": finding.source.scheme,
        "child_labour_case": child_case_counts(finding.child_labour_case),
    }
    return values, redactions


def anonymise(
    finding: Any, *, supplier: Any, include_description: bool, terms: ScrubTerms
) -> dict[str, Any]:
    """The columns of a shared finding (see anonymise_report)."""
    values, _ = anonymise_report(
        finding, supplier=supplier, include_description=include_description, terms=terms
    )
    return values
