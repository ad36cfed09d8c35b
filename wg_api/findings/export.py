"""Export of findings as NDJSON or CSV, streamed from a server-side cursor: each row with its
`id` and exactly the columns the import takes, so importing an export back changes nothing."""

from __future__ import annotations

import csv
import io
import uuid
from collections.abc import AsyncIterator
from typing import Literal

from sqlalchemy.ext.asyncio import AsyncConnection

from wg_api.findings import repository
from wg_api.findings.import_ import CSV_COLUMNS
from wg_api.findings.schemas import FindingFilters

MEDIA_TYPES = {"ndjson": "application/x-ndjson", "csv": "text/csv; charset=utf-8"}
BATCH = 5000


async def stream(
    session: AsyncConnection,
    tenant_id: uuid.UUID,
    filters: FindingFilters,
    format: Literal["ndjson", "csv"],
) -> AsyncIterator[bytes]:
    """The file, one chunk per batch of rows."""
    batches = repository.export_rows(session, tenant_id, filters, csv=format == "csv", batch=BATCH)
    if format == "ndjson":
        async for rows in batches:
            yield ("\n".join(row[0] for row in rows) + "\n").encode()
        return
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(CSV_COLUMNS)
    async for rows in batches:
        writer.writerows(rows)
        yield buffer.getvalue().encode()
        buffer.seek(0)
        buffer.truncate()
    if buffer.tell():
        yield buffer.getvalue().encode()
