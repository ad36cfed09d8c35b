"""Bulk import of findings: NDJSON or CSV read from the request as it arrives, each row checked
like `PUT /v1/findings/by-external-id/{id}`, copied into a temporary staging table (COPY) and
written with set-based statements. Only the results stay in memory, never the body.

`stage` reads and checks every row (413 past the limits before anything is written); `apply`
adds the checks that need the database and writes, unless `dry_run`, or `atomic` with a bad row.
"""

from __future__ import annotations

import codecs
import csv
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any, Literal

import msgspec
from sqlalchemy.ext.asyncio import AsyncConnection

from wg_api.findings import repository, service
from wg_api.findings.schemas import (
    FindingRow,
    ImportResult,
    ImportRowResult,
    ImportSummary,
)
from wg_api.platform.errors import FieldError, InvalidRequest, PayloadTooLarge
from wg_api.platform.errors import field_error_from_msgspec as msgspec_error
from wg_api.suppliers import service as suppliers

Format = Literal["ndjson", "csv"]
MEDIA_TYPES: dict[str, Format] = {
    "application/x-ndjson": "ndjson",
    "application/ndjson": "ndjson",
    "text/csv": "csv",
}

# The CSV columns, in the export's order: nested fields are `parent.child`.
CSV_COLUMNS: tuple[str, ...] = (
    "id",
    "external_id",
    "supplier_id",
    "kind",
    "area",
    "severity",
    "basis",
    "title",
    "description",
    "observed_on",
    "source.scheme",
    "source.reference",
    "status",
    "affected_workers",
    "cap.root_cause",
    "cap.planned_actions",
    "cap.due_on",
    "cap.contact",
    "child_labour_case.confirmed_under_min_age",
    "child_labour_case.young_workers_in_hazardous_work",
    "child_labour_case.age_unconfirmed",
    "child_labour_case.remediation",
)
_KNOWN_COLUMNS = frozenset(CSV_COLUMNS)
COPY_BATCH = 5000
WRITE_BATCH = 2000
NO_KEY = "is required: each row needs its external_id or the id of one of your findings"

_row_decoder = msgspec.json.Decoder(FindingRow, strict=True)


@dataclass
class Staged:
    """What `stage` read: the count of rows, and those that failed before staging."""

    rows: int = 0
    staged: int = 0
    failed: list[ImportRowResult] = field(default_factory=list)


def media_format(content_type: str | None) -> Format | None:
    media_type = (content_type or "").split(";", 1)[0].strip().lower()
    return MEDIA_TYPES.get(media_type)


class _Stager:
    def __init__(self, session: AsyncConnection, max_rows: int) -> None:
        self.session = session
        self.max_rows = max_rows
        self.result = Staged()
        self.batch: list[tuple[Any, ...]] = []
        self.created = False

    async def row(self, line: int, parsed: FindingRow | FieldError, external_id: Any) -> None:
        self.result.rows += 1
        if self.result.rows > self.max_rows:
            raise PayloadTooLarge(f"The file has more than {self.max_rows} rows; split it.")
        if isinstance(parsed, FieldError):
            known = external_id if isinstance(external_id, str) else None
            self.result.failed.append(ImportRowResult(line, known, "failed", errors=[parsed]))
            return
        errors = service.rule_errors(parsed)
        if parsed.id is None and parsed.external_id is None:
            errors.append(FieldError("external_id", NO_KEY))
        values = service.columns_of(parsed, parsed.external_id)
        self.batch.append(
            (
                line,
                parsed.id,
                *(values[c] for c in repository.PLAIN_REPLACED),
                _json(values["cap"]),
                _json(values["child_labour_case"]),
                msgspec.json.encode(errors).decode(),
                uuid.uuid4(),  # the id of the finding, if the row creates one
            )
        )
        self.result.staged += 1
        if len(self.batch) >= COPY_BATCH:
            await self.flush()

    async def flush(self) -> None:
        if not self.created:
            await repository.create_staging(self.session)
            self.created = True
        if self.batch:
            await repository.copy_to_staging(self.session, self.batch)
            self.batch = []


def _json(value: Any) -> str | None:
    return None if value is None else msgspec.json.encode(value).decode()


async def stage(
    session: AsyncConnection,
    body: AsyncIterator[bytes],
    format: Format,
    *,
    max_rows: int,
    max_row_bytes: int,
) -> Staged:
    """Read every row of `body` into the staging table; rows that do not parse are kept as
    failed results. 413 past `max_rows` (or a row over `max_row_bytes`), 400 for a bad CSV."""
    stager = _Stager(session, max_rows)
    if format == "ndjson":
        await _read_ndjson(body, stager, max_row_bytes)
    else:
        await _read_csv(body, stager, max_row_bytes)
    await stager.flush()
    await repository.analyze_staging(session)
    return stager.result


async def _read_ndjson(body: AsyncIterator[bytes], stager: _Stager, max_row_bytes: int) -> None:
    pending = b""
    line = 0
    async for chunk in body:
        pending += chunk
        lines = pending.split(b"\n")
        pending = lines.pop()
        if len(pending) > max_row_bytes:
            raise PayloadTooLarge(f"Line {line + len(lines) + 1} is over {max_row_bytes} bytes.")
        for text in lines:
            line += 1
            await _ndjson_row(stager, line, text)
    if pending:
        await _ndjson_row(stager, line + 1, pending)


async def _ndjson_row(stager: _Stager, line: int, text: bytes) -> None:
    if not text.strip():
        return
    try:
        await stager.row(line, _row_decoder.decode(text), None)
    except msgspec.ValidationError as exc:
        await stager.row(line, msgspec_error(str(exc))[1], _external_id_of(text))
    except msgspec.DecodeError:
        await stager.row(line, FieldError("row", "is not valid JSON"), None)


def _external_id_of(text: bytes) -> Any:
    try:
        document = msgspec.json.decode(text)
    except msgspec.DecodeError:
        return None
    return document.get("external_id") if isinstance(document, dict) else None


async def _read_csv(body: AsyncIterator[bytes], stager: _Stager, max_row_bytes: int) -> None:
    decoder = codecs.getincrementaldecoder("utf-8-sig")()
    header: list[str] | None = None
    record: list[str] = []
    quotes = 0
    record_line = line = 0
    pending = ""

    async def complete(text: str, at: int) -> None:
        nonlocal header
        try:
            cells = next(csv.reader([text]), [])
        except csv.Error:
            await stager.row(at, FieldError("row", "is not valid CSV"), None)
            return
        if header is None:
            header = _header(cells)
        elif any(cells):
            await _csv_row(stager, at, header, cells)

    try:
        async for chunk in body:
            pending += decoder.decode(chunk)
            lines = pending.split("\n")
            pending = lines.pop()
            if len(pending) > max_row_bytes:
                raise PayloadTooLarge(
                    f"Line {line + len(lines) + 1} is over {max_row_bytes} bytes."
                )
            for text in lines:
                line += 1
                if not record:
                    record_line = line
                record.append(text)
                # A record ends at a newline outside quotes: its quote characters are paired.
                quotes += text.count('"')
                if quotes % 2 == 0:
                    await complete("\n".join(record).removesuffix("\r"), record_line)
                    record, quotes = [], 0
                elif sum(len(part) for part in record) > max_row_bytes:
                    raise PayloadTooLarge(f"The row on line {record_line} is over the limit.")
        pending += decoder.decode(b"", final=True)
    except UnicodeDecodeError as exc:
        raise InvalidRequest("The CSV is not UTF-8.") from exc
    if pending or record:
        if not record:
            record_line = line + 1
        await complete("\n".join([*record, pending]).removesuffix("\r"), record_line)
    if header is None:
        raise InvalidRequest(
            "The CSV is empty; its first line must be a header naming its columns.",
            errors=[FieldError("header", "is missing")],
        )


def _header(cells: list[str]) -> list[str]:
    names = [cell.strip() for cell in cells]
    unknown = [name for name in names if name not in _KNOWN_COLUMNS]
    if unknown:
        known = set(names) & _KNOWN_COLUMNS
        detail = (
            "The CSV's first line must be a header naming its columns"
            if not known
            else "The CSV header has unknown columns"
        )
        raise InvalidRequest(
            f"{detail}: {', '.join(unknown) or '(empty)'}. Columns: {', '.join(CSV_COLUMNS)}.",
            errors=[FieldError(name or "(empty)", "unknown column") for name in unknown],
        )
    repeated = sorted({name for name in names if names.count(name) > 1})
    if repeated:
        raise InvalidRequest(
            f"The CSV header repeats columns: {', '.join(repeated)}.",
            errors=[FieldError(name, "appears more than once") for name in repeated],
        )
    return names


async def _csv_row(stager: _Stager, line: int, header: list[str], cells: list[str]) -> None:
    document: dict[str, Any] = {}
    for name, cell in zip(header, cells, strict=False):
        if cell == "":
            continue  # an empty cell is an absent field
        parent, _, child = name.partition(".")
        if child:
            document.setdefault(parent, {})[child] = cell
        else:
            document[name] = cell
    external_id = document.get("external_id")
    if len(cells) != len(header):
        error = FieldError("row", f"has {len(cells)} cells; the header has {len(header)}")
        await stager.row(line, error, external_id)
        return
    try:
        parsed = msgspec.convert(document, FindingRow, strict=False)
    except msgspec.ValidationError as exc:
        await stager.row(line, msgspec_error(str(exc))[1], external_id)
        return
    await stager.row(line, parsed, external_id)


async def apply(
    session: AsyncConnection,
    tenant_id: uuid.UUID,
    staged: Staged,
    *,
    dry_run: bool,
    atomic: bool,
) -> ImportResult:
    """Check the staged rows against the tenant's findings and suppliers, then write them (one
    INSERT, one UPDATE), with the same events and share refreshes as single writes."""
    outcomes: dict[str, int] = {}
    if staged.staged:
        candidates = await repository.resolve_staging(session, tenant_id)
        unlinked = [
            supplier_id
            for supplier_id in candidates
            if not await suppliers.is_linked(session, tenant_id, supplier_id)
        ]
        await repository.check_staging(
            session,
            tenant_id,
            unlinked_suppliers=unlinked,
            supplier_message=service.SUPPLIER_NOT_YOURS,
            unknown_id_message=f"is not one of your findings ({service.NOT_FOUND})",
        )
        outcomes = await repository.staged_outcomes(session)
    failed = outcomes.get("failed", 0) + len(staged.failed)
    held_back = dry_run or (atomic and failed > 0)
    if staged.staged and not held_back:
        await repository.write_staged(session, tenant_id)
        await _record_writes(session, tenant_id)
    not_written = atomic and failed > 0 and not dry_run
    good = ("created", "updated", "unchanged")
    summary = ImportSummary(
        rows=staged.rows,
        created=0 if not_written else outcomes.get("created", 0),
        updated=0 if not_written else outcomes.get("updated", 0),
        unchanged=0 if not_written else outcomes.get("unchanged", 0),
        failed=failed,
        not_written=sum(outcomes.get(o, 0) for o in good) if not_written else 0,
    )
    written = staged.staged > 0 and not held_back
    results = await _results(session, staged, not_written=not_written, written=written)
    return ImportResult(summary=summary, results=results, dry_run=dry_run, atomic=atomic)


async def _record_writes(session: AsyncConnection, tenant_id: uuid.UUID) -> None:
    await repository.record_import_events(session, tenant_id)
    after = 0
    while rows := await repository.updated_page(session, tenant_id, after, WRITE_BATCH):
        after = rows[-1]["line"]
        changed = [service.finding_out(row) for row in rows]
        await service.announce_changes(session, tenant_id, changed)


async def _results(
    session: AsyncConnection, staged: Staged, *, not_written: bool, written: bool
) -> list[ImportRowResult]:
    """Every row's result in the file's order: the staged rows merged with the early failures."""
    results: list[ImportRowResult] = []
    early = iter(staged.failed)
    next_early = next(early, None)
    after = 0
    while staged.staged:
        rows = await repository.staged_results_page(session, after, 10_000)
        if not rows:
            break
        after = rows[-1]["line"]
        for row in rows:
            while next_early is not None and next_early.line < row["line"]:
                results.append(next_early)
                next_early = next(early, None)
            results.append(_staged_result(row, not_written=not_written, written=written))
    while next_early is not None:
        results.append(next_early)
        next_early = next(early, None)
    return results


def _staged_result(row: Any, *, not_written: bool, written: bool) -> ImportRowResult:
    outcome = row["outcome"]
    if outcome == "failed":
        errors = [FieldError(e["field"], e["message"]) for e in row["errors"]]
        return ImportRowResult(row["line"], row["external_id"], "failed", errors=errors)
    if not_written:
        return ImportRowResult(row["line"], row["external_id"], "not_written", id=row["target"])
    if outcome == "created":
        new_id = row["new_id"] if written else None  # a dry run creates nothing
        return ImportRowResult(row["line"], row["external_id"], outcome, id=new_id)
    return ImportRowResult(row["line"], row["external_id"], outcome, id=row["target"])
