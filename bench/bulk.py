"""Bulk data: an import of 100,000 findings (time, and the server's resident memory growth) and
an export of 1,000,000 findings as NDJSON (rows per second, and memory staying flat).

    python -m bench.bulk [--import-rows 100000] [--export-rows 1000000] [--database wg_bench_bulk]

Builds its own database (`wg_bench_bulk`, or `--database`; dropped at the end) on the embedded
PostgreSQL or DATABASE_URL's server, serves the real app with `wg-api serve` (uvicorn, one
worker) on a free port, and talks to it over HTTP like an integrator. The export's rows are
generated with COPY (another tenant's, so the import starts from an empty table). Prints figures
beside the targets.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import httpx
import msgspec
from sqlalchemy.engine import URL

from bench.generate import libpq_url
from bench.run import HOST, Server, free_port, start_server
from wg_api.findings.repository import EXPORT_JSON
from wg_api.identity import service as identity
from wg_api.platform.database import Database, make_engine, resolve_admin_url
from wg_api.platform.migrate import migrate
from wg_api.settings import Settings

DATABASE = "wg_bench_bulk"
IMPORT_SECONDS_TARGET = 20.0
IMPORT_RSS_TARGET_MB = 150.0
EXPORT_ROWS_PER_SECOND_TARGET = 50_000
# "Constant memory": the export's growth stays far below what holding the rows would take.
EXPORT_RSS_CEILING_MB = 50.0
AREAS = ("working_hours", "health_and_safety", "fair_remuneration", "environment")


class Peak:
    """The highest resident memory of the server, sampled every 50 ms in a thread."""

    def __init__(self, server: Server) -> None:
        self.server = server
        self.start = server.rss_mb()
        self.peak = self.start
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)

    def _sample(self) -> None:
        while not self._stop.wait(0.05):
            self.peak = max(self.peak, self.server.rss_mb())

    def __enter__(self) -> Peak:
        self.cpu_start = self.server.cpu_seconds()
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, self.server.rss_mb())
        self.cpu_seconds = self.server.cpu_seconds() - self.cpu_start

    @property
    def growth_mb(self) -> float:
        return self.peak - self.start


async def _tenant(database: Database, slug: str) -> tuple[uuid.UUID, str, str]:
    async with database.system_transaction() as session:
        tenant = await identity.create_tenant(
            session, slug=slug, name=f"Bench {slug}", kind="brand", timezone="Asia/Hong_Kong"
        )
    async with database.transaction(tenant["id"]) as session:
        client = await identity.create_client(
            session, tenant_id=tenant["id"], name="bench", role="admin", scopes=None
        )
    return tenant["id"], client.client_id, client.client_secret


def _token(base_url: str, client_id: str, client_secret: str) -> dict[str, str]:
    response = httpx.post(
        f"{base_url}/oauth/token",
        data={"grant_type": "client_credentials"},
        auth=(client_id, client_secret),
    )
    response.raise_for_status()
    return {"Authorization": f"Bearer {response.json()['access_token']}"}


def _supplier(base_url: str, headers: dict[str, str]) -> str:
    token = uuid.uuid4().hex[:8]
    response = httpx.post(
        f"{base_url}/v1/suppliers",
        json={
            "name": f"Bench Garment {token} Co., Ltd.",
            "address": f"No. 8 Industrial Rd., Block {token}, Dongguan",
            "country": "CN",
        },
        headers=headers,
    )
    response.raise_for_status()
    supplier_id: str = response.json()["supplier"]["id"]
    return supplier_id


def _write_rows(path: Path, supplier_id: str, count: int) -> None:
    today = date.today()
    encoder = msgspec.json.Encoder()
    with path.open("wb") as out:
        for n in range(count):
            row = {
                "external_id": f"BULK-{n:07d}",
                "supplier_id": supplier_id,
                "kind": "non_compliance",
                "area": AREAS[n % len(AREAS)],
                "severity": "major",
                "basis": "legal",
                "title": f"Overtime above the legal limit, line {n % 40}",
                "description": "Workers averaged 70 hours a week in the peak season.",
                "observed_on": (today - timedelta(days=30 + n % 300)).isoformat(),
                "source": {"scheme": "amfori_bsci", "reference": f"BSCI-{n}"},
                "status": "open",
                "affected_workers": n % 200,
                "cap": {
                    "planned_actions": "Production planning with buyers",
                    "due_on": (today + timedelta(days=60)).isoformat(),
                },
            }
            out.write(encoder.encode(row) + b"\n")


def _chunks(path: Path) -> Iterator[bytes]:
    with path.open("rb") as source:
        while chunk := source.read(256 * 1024):
            yield chunk


def settle(server: Server, seconds: float = 2.0, deadline: float = 60.0) -> None:
    """Wait until the server's memory holds still (start-up work, e.g. the Chinese dictionary
    loading in a thread, must not count as the import's)."""
    end = time.monotonic() + deadline
    last = server.rss_mb()
    while time.monotonic() < end:
        time.sleep(seconds)
        now = server.rss_mb()
        if abs(now - last) < 1.0:
            return
        last = now


def measure_import(server: Server, headers: dict[str, str], path: Path) -> dict[str, Any]:
    settle(server)
    with Peak(server) as peak:
        started = time.perf_counter()
        response = httpx.post(
            f"{server.base_url}/v1/findings/import",
            content=_chunks(path),
            headers={**headers, "Content-Type": "application/x-ndjson"},
            timeout=600,
        )
        seconds = time.perf_counter() - started
    response.raise_for_status()
    return {
        "summary": response.json()["summary"],
        "seconds": round(seconds, 2),
        "mb": round(path.stat().st_size / 2**20, 1),
        "rss_start_mb": round(peak.start, 1),
        "rss_growth_mb": round(peak.growth_mb, 1),
        "server_cpu_seconds": round(peak.cpu_seconds, 2),
    }


async def generate_with_copy(
    admin_url: URL, tenant_id: uuid.UUID, supplier_id: str, count: int
) -> float:
    """`count` findings of `tenant_id`, written with COPY as the server's superuser."""
    import asyncpg

    started = time.perf_counter()
    connection = await asyncpg.connect(libpq_url(admin_url))
    try:
        today = date.today()
        cap = msgspec.json.encode(
            {
                "root_cause": None,
                "planned_actions": "Production planning with buyers",
                "due_on": (today + timedelta(days=60)).isoformat(),
                "contact": None,
            }
        ).decode()
        columns = (
            "tenant_id",
            "supplier_id",
            "external_id",
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
        )
        await connection.set_type_codec(
            "jsonb",
            encoder=lambda v: b"\x01" + v.encode(),
            decoder=bytes,
            schema="pg_catalog",
            format="binary",
        )
        batch = 100_000
        for start in range(0, count, batch):
            records = [
                (
                    tenant_id,
                    uuid.UUID(supplier_id),
                    f"EXP-{n:08d}",
                    "non_compliance",
                    AREAS[n % len(AREAS)],
                    "major",
                    "legal",
                    f"Overtime above the legal limit, line {n % 40}",
                    'Workers averaged 70 hours a week in the peak season; the "CAP" is due.',
                    today - timedelta(days=30 + n % 700),
                    "amfori_bsci",
                    f"BSCI-{n}",
                    "open",
                    n % 300,
                    cap,
                )
                for n in range(start, min(count, start + batch))
            ]
            await connection.copy_records_to_table("findings", records=records, columns=columns)
        await connection.execute("ANALYZE findings")
    finally:
        await connection.close()
    return time.perf_counter() - started


def measure_export(server: Server, headers: dict[str, str]) -> dict[str, Any]:
    rows = size = 0
    settle(server)
    with Peak(server) as peak:
        started = time.perf_counter()
        client_cpu = time.process_time()
        with httpx.stream(
            "GET",
            f"{server.base_url}/v1/findings/export",
            params={"format": "ndjson"},
            headers=headers,
            timeout=600,
        ) as response:
            response.raise_for_status()
            for chunk in response.iter_raw(1024 * 1024):
                rows += chunk.count(b"\n")
                size += len(chunk)
        seconds = time.perf_counter() - started
        client_cpu = time.process_time() - client_cpu
    return {
        "rows": rows,
        "seconds": round(seconds, 2),
        "rows_per_second": round(rows / seconds),
        "client_cpu_seconds": round(client_cpu, 2),
        "mb": round(size / 2**20, 1),
        "rss_start_mb": round(peak.start, 1),
        "rss_growth_mb": round(peak.growth_mb, 1),
        "server_cpu_seconds": round(peak.cpu_seconds, 2),
    }


async def ceiling_rate(admin_url: URL, tenant_id: uuid.UUID) -> float:
    """The export's own query read by a bare asyncpg cursor in this process (no HTTP, no app):
    the most the endpoint could reach on this machine right now."""
    import asyncpg

    connection = await asyncpg.connect(libpq_url(admin_url))
    try:
        started = time.perf_counter()
        rows = 0
        async with connection.transaction():
            cursor = await connection.cursor(
                f"SELECT {EXPORT_JSON} FROM findings WHERE tenant_id = $1 "
                "ORDER BY observed_on DESC, id DESC",
                tenant_id,
            )
            while batch := await cursor.fetch(5000):
                rows += len(batch)
        return rows / (time.perf_counter() - started)
    finally:
        await connection.close()


async def _prepare(admin_url: URL, settings: Settings) -> tuple[Any, Any]:
    await _drop(admin_url)
    await migrate(admin_url, settings)
    database = Database.connect(admin_url, settings)
    try:
        importer = await _tenant(database, f"bulk-import-{uuid.uuid4().hex[:6]}")
        exporter = await _tenant(database, f"bulk-export-{uuid.uuid4().hex[:6]}")
    finally:
        await database.dispose()
    return importer, exporter


async def _drop(admin_url: URL) -> None:
    engine = make_engine(admin_url.set(database="postgres"), pool_size=1)
    try:
        async with engine.connect() as conn:
            conn = await conn.execution_options(isolation_level="AUTOCOMMIT")
            await conn.exec_driver_sql(
                f'DROP DATABASE IF EXISTS "{admin_url.database}" WITH (FORCE)'
            )
    finally:
        await engine.dispose()


def main(import_rows: int, export_rows: int, database: str = DATABASE) -> None:
    settings = Settings.from_env()
    admin_url: URL = resolve_admin_url(settings).set(database=database)
    importer, exporter = asyncio.run(_prepare(admin_url, settings))
    workdir = Path(tempfile.mkdtemp(prefix="wg-bench-bulk-"))
    port = free_port()
    env = {
        **os.environ,
        "DATABASE_URL": libpq_url(admin_url),
        "WG_DATA_DIR": str(workdir),
        "WG_PUBLIC_URL": f"http://{HOST}:{port}",
        "WG_LOG_LEVEL": "WARNING",
        "WG_RATE_LIMIT_PER_MINUTE": str(10**9),
        "WG_TOKEN_TTL_SECONDS": "3600",
        "WG_IMPORT_MAX_ROWS": str(max(import_rows, 100_000)),
    }
    command = [sys.executable, "-m", "wg_api.cli", "serve", "--host", HOST, "--port", str(port)]
    server = start_server("wg-api", command, env, port, workdir)
    try:
        headers = _token(server.base_url, importer[1], importer[2])
        supplier_id = _supplier(server.base_url, headers)
        rows_file = workdir / "findings.ndjson"
        _write_rows(rows_file, supplier_id, import_rows)
        imported = measure_import(server, headers, rows_file)
        export_headers = _token(server.base_url, exporter[1], exporter[2])
        export_supplier = _supplier(server.base_url, export_headers)
        generated = asyncio.run(
            generate_with_copy(admin_url, exporter[0], export_supplier, export_rows)
        )
        exported = measure_export(server, export_headers)
        exported["ceiling"] = round(asyncio.run(ceiling_rate(admin_url, exporter[0])))
    finally:
        server.stop()
        asyncio.run(_drop(admin_url))

    def verdict(ok: bool) -> str:
        return "ok" if ok else "MISSED"

    load = ", ".join(f"{n:.1f}" for n in os.getloadavg())
    print(f"{os.cpu_count()} cores, load average {load} (figures scale with what else runs)")
    print(f"import of {import_rows:,} findings ({imported['mb']} MB of NDJSON over HTTP):")
    print(f"  summary: {imported['summary']}")
    print(
        f"  time            {imported['seconds']:>8} s    target < {IMPORT_SECONDS_TARGET:.0f} s"
        f"    {verdict(imported['seconds'] < IMPORT_SECONDS_TARGET)}"
        f"   (API process CPU {imported['server_cpu_seconds']} s)"
    )
    grew = imported["rss_growth_mb"]
    print(
        f"  server RSS +    {grew:>8} MB   target < {IMPORT_RSS_TARGET_MB:.0f} MB   "
        f"{verdict(grew < IMPORT_RSS_TARGET_MB)}   (from {imported['rss_start_mb']} MB)"
    )
    print(
        f"export of {exported['rows']:,} findings as NDJSON ({exported['mb']} MB; rows made with"
        f" COPY in {generated:.1f} s):"
    )
    rate = exported["rows_per_second"]
    print(
        f"  rate            {rate:>8,} rows/s   target >= {EXPORT_ROWS_PER_SECOND_TARGET:,}"
        f"   {verdict(rate >= EXPORT_ROWS_PER_SECOND_TARGET)}   ({exported['seconds']} s; "
        f"API process CPU {exported['server_cpu_seconds']} s, this client's "
        f"{exported['client_cpu_seconds']} s; the rest is PostgreSQL and the machine's load)"
    )
    print(
        f"  ceiling         {exported['ceiling']:>8,} rows/s   (the same query through a bare "
        f"asyncpg cursor, no HTTP: {exported['rows_per_second'] / exported['ceiling']:.0%})"
    )
    growth = exported["rss_growth_mb"]
    print(
        f"  server RSS +    {growth:>8} MB   ceiling {EXPORT_RSS_CEILING_MB:.0f} MB (constant "
        f"memory)   {verdict(growth < EXPORT_RSS_CEILING_MB)}   "
        f"(from {exported['rss_start_mb']} MB)"
    )


def run() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--import-rows", type=int, default=100_000)
    parser.add_argument("--export-rows", type=int, default=1_000_000)
    parser.add_argument("--database", default=DATABASE, help="the database it makes and drops")
    args = parser.parse_args()
    main(args.import_rows, args.export_rows, args.database)


if __name__ == "__main__":
    run()
