"""Every findings query. All of them filter by tenant as well; RLS is the net under that."""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import AsyncIterator
from datetime import date
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import insert as insert_on_conflict
from sqlalchemy.ext.asyncio import AsyncConnection

from wg_api.findings.models import findings
from wg_api.findings.schemas import FindingFilters
from wg_api.platform.database import begun_driver, driver_fetch
from wg_api.platform.models import Record
from wg_api.platform.pagination import limit_clause

COLUMNS = tuple(c for c in findings.c if c.name != "tenant_id")


async def insert(session: AsyncConnection, tenant_id: uuid.UUID, values: dict[str, Any]) -> Record:
    statement = sa.insert(findings).values(tenant_id=tenant_id, **values).returning(*COLUMNS)
    row: Record = (await session.execute(statement)).one()
    return row


async def insert_unless_external_id_taken(
    session: AsyncConnection, tenant_id: uuid.UUID, values: dict[str, Any]
) -> Record | None:
    """Insert, or None when the tenant already has a finding with this external id (a concurrent
    request may have just inserted it: the unique index decides, not an earlier SELECT)."""
    statement = (
        insert_on_conflict(findings)
        .values(tenant_id=tenant_id, **values)
        .on_conflict_do_nothing(
            index_elements=[findings.c.tenant_id, findings.c.external_id],
            index_where=findings.c.external_id.is_not(None),
        )
        .returning(*COLUMNS)
    )
    return (await session.execute(statement)).one_or_none()


async def get_for_update(
    session: AsyncConnection, tenant_id: uuid.UUID, finding_id: uuid.UUID
) -> Record | None:
    """The finding to change, its row locked until the transaction ends (a read without the lock
    is `read_one`)."""
    statement = (
        sa.select(*COLUMNS)
        .where(findings.c.tenant_id == tenant_id, findings.c.id == finding_id)
        .with_for_update()
    )
    return (await session.execute(statement)).one_or_none()


async def get_many(
    session: AsyncConnection, tenant_id: uuid.UUID, finding_ids: list[uuid.UUID]
) -> list[Record]:
    statement = (
        sa.select(*COLUMNS)
        .where(findings.c.tenant_id == tenant_id, findings.c.id.in_(finding_ids))
        .order_by(findings.c.id)
    )
    return list((await session.execute(statement)).all())


async def get_by_external_id(
    session: AsyncConnection, tenant_id: uuid.UUID, external_id: str, *, for_update: bool = False
) -> Record | None:
    statement = sa.select(*COLUMNS).where(
        findings.c.tenant_id == tenant_id, findings.c.external_id == external_id
    )
    if for_update:
        statement = statement.with_for_update()
    return (await session.execute(statement)).one_or_none()


async def external_id_taken(
    session: AsyncConnection, tenant_id: uuid.UUID, external_id: str, other_than: uuid.UUID | None
) -> bool:
    statement = sa.select(findings.c.id).where(
        findings.c.tenant_id == tenant_id, findings.c.external_id == external_id
    )
    found = await session.scalar(statement)
    return found is not None and found != other_than


async def update(
    session: AsyncConnection, tenant_id: uuid.UUID, finding_id: uuid.UUID, values: dict[str, Any]
) -> Record:
    statement = (
        sa.update(findings)
        .where(findings.c.tenant_id == tenant_id, findings.c.id == finding_id)
        .values(**values, updated_at=sa.func.now())
        .returning(*COLUMNS)
    )
    row: Record = (await session.execute(statement)).one()
    return row


async def delete(session: AsyncConnection, tenant_id: uuid.UUID, finding_id: uuid.UUID) -> None:
    await session.execute(
        sa.delete(findings).where(findings.c.tenant_id == tenant_id, findings.c.id == finding_id)
    )


LIST_FIELDS = tuple(c.name for c in COLUMNS)
_LIST_COLUMNS = ", ".join(LIST_FIELDS)
_ONE = f"SELECT {_LIST_COLUMNS} FROM findings WHERE tenant_id = $1 AND id = $2"  # noqa: S608


async def read_one(session: AsyncConnection, tenant_id: uuid.UUID, finding_id: uuid.UUID) -> Any:
    """The finding to read (no lock), straight to the driver as the list reads: an asyncpg Record
    of `LIST_FIELDS`, or None."""
    rows = await driver_fetch(session, _ONE, tenant_id, finding_id)
    return rows[0] if rows else None


def _filtered(tenant_id: uuid.UUID, filters: FindingFilters) -> tuple[list[str], list[Any]]:
    """The WHERE conditions ($n placeholders) and their arguments of the list's filters."""
    conditions = ["tenant_id = $1"]
    args: list[Any] = [tenant_id]

    def condition(template: str, value: Any) -> None:
        args.append(value)
        conditions.append(template.format(f"${len(args)}"))

    if filters.supplier_id is not None:
        condition("supplier_id = {}", filters.supplier_id)
    if filters.area is not None:
        condition("area = {}", filters.area)
    if filters.severity is not None:
        condition("severity = {}", filters.severity)
    if filters.status is not None:
        condition("status = {}", filters.status)
    if filters.observed_from is not None:
        condition("observed_on >= {}", filters.observed_from)
    if filters.observed_to is not None:
        condition("observed_on <= {}", filters.observed_to)
    if filters.updated_since is not None:
        condition("updated_at >= {}", filters.updated_since)
    return conditions, args


async def list_page(
    session: AsyncConnection,
    tenant_id: uuid.UUID,
    filters: FindingFilters,
    *,
    after: tuple[date, uuid.UUID] | None,
    limit: int,
) -> list[Any]:
    """Newest observation first; keyset on (observed_on, id) descending.

    The hottest read of the API, so it goes straight to the driver (asyncpg Records).
    """
    conditions, args = _filtered(tenant_id, filters)
    filtered = len(args) > 1
    if after is not None:
        args.extend(after)
        conditions.append(f"(observed_on, id) < (${len(args) - 1}, ${len(args)})")
    # Only fixed column names, $n placeholders and an integer are joined in; every value is a
    # parameter.
    sql = (
        f"SELECT {_LIST_COLUMNS} FROM findings WHERE {' AND '.join(conditions)} "  # noqa: S608
        f"ORDER BY observed_on DESC, id DESC {limit_clause(args, limit + 1, filtered=filtered)}"
    )
    return await driver_fetch(session, sql, *args)


# Bulk import: rows are copied into a temporary staging table, checked and written set-wise.
STAGING = "finding_import"
STAGED_COLUMNS = (
    "line",
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
    "source_scheme",
    "source_reference",
    "status",
    "affected_workers",
    "cap",
    "child_labour_case",
    "errors",
    "new_id",
)
# The columns a row replaces; equal on all of them, a row leaves its finding `unchanged`.
REPLACED = STAGED_COLUMNS[2:17]
# All of them but the last two, `cap` and `child_labour_case` (JSON, copied as text).
PLAIN_REPLACED = REPLACED[:-2]


async def driver_connection(session: AsyncConnection) -> Any:
    """The asyncpg connection under the session (its transaction and tenant binding begun)."""
    return await begun_driver(session)


async def create_staging(session: AsyncConnection) -> None:
    await session.execute(
        sa.text(
            f"""
            CREATE TEMPORARY TABLE {STAGING} (
                line int PRIMARY KEY,
                id uuid,
                external_id text,
                supplier_id uuid NOT NULL,
                kind text NOT NULL,
                area text NOT NULL,
                severity text,
                basis text,
                title text NOT NULL,
                description text NOT NULL,
                observed_on date NOT NULL,
                source_scheme text NOT NULL,
                source_reference text,
                status text NOT NULL,
                affected_workers int,
                cap jsonb,
                child_labour_case jsonb,
                errors jsonb NOT NULL,
                new_id uuid NOT NULL,
                target uuid,
                current_supplier_id uuid,
                outcome text
            ) ON COMMIT DROP
            """
        )
    )


async def copy_to_staging(session: AsyncConnection, records: list[tuple[Any, ...]]) -> None:
    driver = await driver_connection(session)
    await driver.copy_records_to_table(STAGING, records=records, columns=STAGED_COLUMNS)


async def analyze_staging(session: AsyncConnection) -> None:
    """Statistics for the planner: a temporary table has none until analysed."""
    await session.execute(sa.text(f"ANALYZE {STAGING}"))


def _error(field: str, message: str) -> str:
    return f"jsonb_build_array(jsonb_build_object('field', '{field}', 'message', {message}))"


async def resolve_staging(session: AsyncConnection, tenant_id: uuid.UUID) -> list[uuid.UUID]:
    """Find each staged row's finding (by id, else by external_id) and lock those findings;
    answers the supplier ids to check (new findings, or a finding moved to another supplier)."""
    driver = await driver_connection(session)
    # Two statements, not one with OR: each joins on one key, by hash or by index.
    for key in (
        "s.id IS NOT NULL AND f.id = s.id",
        "s.id IS NULL AND f.external_id = s.external_id",
    ):
        await driver.execute(
            f"""
            UPDATE {STAGING} s SET target = f.id, current_supplier_id = f.supplier_id
            FROM findings f WHERE f.tenant_id = $1 AND {key}
            """,  # noqa: S608
            tenant_id,
        )
    await driver.execute(
        f"""
        SELECT 1 FROM findings f JOIN {STAGING} s ON s.target = f.id
        WHERE f.tenant_id = $1 ORDER BY f.id FOR UPDATE OF f
        """,  # noqa: S608
        tenant_id,
    )
    rows = await driver.fetch(
        f"""
        SELECT DISTINCT supplier_id FROM {STAGING}
        WHERE target IS NULL OR supplier_id <> current_supplier_id
        """  # noqa: S608
    )
    return [row["supplier_id"] for row in rows]


async def check_staging(
    session: AsyncConnection,
    tenant_id: uuid.UUID,
    *,
    unlinked_suppliers: list[uuid.UUID],
    supplier_message: str,
    unknown_id_message: str,
) -> None:
    """Add the errors that need the database, in the order a single request reports them, and
    give each row its outcome."""
    driver = await driver_connection(session)
    await driver.execute(
        f"""
        UPDATE {STAGING} SET errors = errors || {_error("supplier_id", "$2::text")}
        WHERE supplier_id = ANY($1::uuid[])
          AND (target IS NULL OR supplier_id <> current_supplier_id)
        """,  # noqa: S608
        unlinked_suppliers,
        supplier_message,
    )
    await driver.execute(
        f"""
        UPDATE {STAGING} SET errors = errors || {_error("id", "$1::text")}
        WHERE id IS NOT NULL AND target IS NULL
        """,  # noqa: S608
        unknown_id_message,
    )
    await driver.execute(
        f"""
        UPDATE {STAGING} s SET errors = errors || {_error("external_id", "'already used'")}
        WHERE s.id IS NOT NULL AND s.external_id IS NOT NULL AND EXISTS (
            SELECT 1 FROM findings f
            WHERE f.tenant_id = $1 AND f.external_id = s.external_id AND f.id <> s.id)
        """,  # noqa: S608
        tenant_id,
    )
    # A file names each finding once: a later row naming it again fails, naming the first.
    await driver.execute(
        f"""
        WITH firsts AS (
            SELECT line,
                   CASE WHEN external_id IS NOT NULL
                        THEN min(line) OVER (PARTITION BY external_id) END AS by_external_id,
                   CASE WHEN coalesce(target, id) IS NOT NULL
                        THEN min(line) OVER (PARTITION BY coalesce(target, id)) END AS by_id
            FROM {STAGING}
        )
        UPDATE {STAGING} s SET errors = s.errors || CASE
            WHEN d.by_external_id < s.line THEN {
            _error("external_id", "'is on line ' || d.by_external_id || ' already'")
        }
            ELSE {_error("id", "'names the finding of line ' || d.by_id || ' already'")}
        END
        FROM firsts d
        WHERE d.line = s.line AND (d.by_external_id < s.line OR d.by_id < s.line)
        """  # noqa: S608
    )
    same = " AND ".join(f"f.{c} IS NOT DISTINCT FROM s.{c}" for c in REPLACED)
    await driver.execute(
        f"""
        UPDATE {STAGING} SET outcome = CASE
            WHEN errors <> '[]'::jsonb THEN 'failed'
            WHEN target IS NULL THEN 'created'
            ELSE 'updated' END
        """  # noqa: S608
    )
    await driver.execute(
        f"""
        UPDATE {STAGING} s SET outcome = 'unchanged' FROM findings f
        WHERE f.tenant_id = $1 AND f.id = s.target AND s.outcome = 'updated' AND {same}
        """,  # noqa: S608
        tenant_id,
    )


async def staged_outcomes(session: AsyncConnection) -> dict[str, int]:
    driver = await driver_connection(session)
    rows = await driver.fetch(f"SELECT outcome, count(*) AS n FROM {STAGING} GROUP BY outcome")  # noqa: S608
    return {row["outcome"]: int(row["n"]) for row in rows}


async def write_staged(session: AsyncConnection, tenant_id: uuid.UUID) -> tuple[int, int]:
    """Insert the `created` rows and replace the `updated` ones; answers how many of each."""
    driver = await driver_connection(session)
    columns = ", ".join(REPLACED)
    inserted = await driver.execute(
        f"""
        INSERT INTO findings (id, tenant_id, {columns})
        SELECT new_id, $1, {columns} FROM {STAGING} WHERE outcome = 'created'
        """,  # noqa: S608
        tenant_id,
    )
    assignments = ", ".join(f"{c} = s.{c}" for c in REPLACED)
    updated = await driver.execute(
        f"""
        UPDATE findings f SET {assignments}, updated_at = now()
        FROM {STAGING} s
        WHERE f.tenant_id = $1 AND f.id = s.target AND s.outcome = 'updated'
        """,  # noqa: S608
        tenant_id,
    )
    return int(inserted.rsplit(" ", 1)[1]), int(updated.rsplit(" ", 1)[1])


async def updated_page(
    session: AsyncConnection, tenant_id: uuid.UUID, after_line: int, limit: int
) -> list[Any]:
    """The findings the import replaced, in the file's order, with their `line`."""
    return await driver_fetch(
        session,
        f"""
        SELECT s.line, {", ".join(f"f.{c.name}" for c in COLUMNS)}
        FROM {STAGING} s JOIN findings f ON f.id = s.target AND f.tenant_id = $1
        WHERE s.outcome = 'updated' AND s.line > $2
        ORDER BY s.line LIMIT $3
        """,  # noqa: S608
        tenant_id,
        after_line,
        limit,
    )


def _rfc3339(column: str) -> str:
    """A timestamp as the API's Structs render it: UTC, `Z`, microseconds only when not zero."""
    utc = f"({column} AT TIME ZONE 'UTC')"
    return (
        f"to_char({utc}, 'YYYY-MM-DD\"T\"HH24:MI:SS') || CASE WHEN "
        f"extract(microseconds FROM {column})::bigint % 1000000 <> 0 "
        f"THEN to_char({utc}, '.US') ELSE '' END || 'Z'"
    )


async def record_import_events(session: AsyncConnection, tenant_id: uuid.UUID) -> None:
    """`finding.created` and `finding.updated` for the rows written, in the file's order, with
    the finding as a single write records it (the `Finding` Struct), in one statement."""
    driver = await driver_connection(session)
    await driver.execute(
        f"""
        INSERT INTO events (tenant_id, type, data)
        SELECT $1, 'finding.' || s.outcome, jsonb_build_object(
            'id', f.id, 'supplier_id', f.supplier_id, 'external_id', f.external_id,
            'kind', f.kind, 'area', f.area, 'severity', f.severity, 'basis', f.basis,
            'title', f.title, 'description', f.description, 'observed_on', f.observed_on,
            'source', jsonb_build_object('scheme', f.source_scheme,
                                         'reference', f.source_reference),
            'status', f.status, 'affected_workers', f.affected_workers, 'cap', f.cap,
            'child_labour_case', f.child_labour_case,
            'created_at', {_rfc3339("f.created_at")}, 'updated_at', {_rfc3339("f.updated_at")})
        FROM {STAGING} s JOIN findings f
          ON f.id = CASE s.outcome WHEN 'created' THEN s.new_id ELSE s.target END
         AND f.tenant_id = $1
        WHERE s.outcome IN ('created', 'updated')
        ORDER BY s.line
        """,  # noqa: S608
        tenant_id,
    )


async def staged_results_page(session: AsyncConnection, after_line: int, limit: int) -> list[Any]:
    return await driver_fetch(
        session,
        f"""
        SELECT line, external_id, outcome, target, new_id, errors FROM {STAGING}
        WHERE line > $1 ORDER BY line LIMIT $2
        """,  # noqa: S608
        after_line,
        limit,
    )


# The export: one text column per row, built by PostgreSQL (as NDJSON, or as CSV cells).
EXPORT_JSON = """json_build_object(
    'id', id, 'external_id', external_id, 'supplier_id', supplier_id, 'kind', kind,
    'area', area, 'severity', severity, 'basis', basis, 'title', title,
    'description', description, 'observed_on', observed_on,
    'source', json_build_object('scheme', source_scheme, 'reference', source_reference),
    'status', status, 'affected_workers', affected_workers,
    'cap', cap, 'child_labour_case', child_labour_case)::text"""
_EXPORT_CSV = """id::text, external_id, supplier_id::text, kind, area, severity, basis, title,
    description, observed_on::text, source_scheme, source_reference, status,
    affected_workers::text, cap ->> 'root_cause', cap ->> 'planned_actions', cap ->> 'due_on',
    cap ->> 'contact', child_labour_case ->> 'confirmed_under_min_age',
    child_labour_case ->> 'young_workers_in_hazardous_work',
    child_labour_case ->> 'age_unconfirmed', child_labour_case ->> 'remediation'"""


async def export_rows(
    session: AsyncConnection,
    tenant_id: uuid.UUID,
    filters: FindingFilters,
    *,
    csv: bool,
    batch: int,
) -> AsyncIterator[list[Any]]:
    """The matching findings, newest observation first, in batches from a server-side cursor
    (the request's transaction holds it): memory stays at one batch whatever the count."""
    conditions, args = _filtered(tenant_id, filters)
    columns = _EXPORT_CSV if csv else EXPORT_JSON
    # Only fixed column names and $n placeholders are joined in; every value is a parameter.
    sql = (
        f"SELECT {columns} FROM findings WHERE {' AND '.join(conditions)} "  # noqa: S608
        "ORDER BY observed_on DESC, id DESC"
    )
    driver = await driver_connection(session)
    cursor = await driver.cursor(sql, *args)
    # The next batch is read while the caller sends this one: PostgreSQL never waits for us.
    ahead = asyncio.ensure_future(cursor.fetch(batch))
    try:
        while rows := await ahead:
            ahead = asyncio.ensure_future(cursor.fetch(batch))
            yield rows
    finally:
        if not ahead.done():
            ahead.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await ahead
