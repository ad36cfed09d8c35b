"""What the insight tallies cost a write: shared records added, moved and removed one statement at a
time (as shares, source edits and withdrawals do), with the tally triggers on and, as the ceiling,
off.

    python -m bench.tallies            # on the bench database (python -m bench.generate first)

Runs as the bench database's superuser inside transactions that are rolled back, so the data set
is left as it was. Prints the median and 90th percentile per statement, and the difference.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import time

import asyncpg

from bench.generate import BENCH_DATABASE, SHARED_COLUMNS, bench_admin_url, connect_kwargs
from wg_api.settings import Settings

TRIGGERS = ("insight_tallies_insert", "insight_tallies_update", "insight_tallies_delete")
# Records of the sharing group to copy from: spread over its cells and suppliers.
SAMPLE = """
    SELECT id FROM shared_findings TABLESAMPLE SYSTEM (1) REPEATABLE (7)
    WHERE group_id = (SELECT group_id FROM shared_findings LIMIT 1)
    LIMIT $1
"""
COLUMNS = ", ".join(SHARED_COLUMNS)
COPY = (
    f"INSERT INTO shared_findings ({COLUMNS}) "
    f"SELECT {COLUMNS} FROM shared_findings WHERE id = $1 RETURNING id"
)
MOVE = """
    UPDATE shared_findings
    SET area = CASE area WHEN 'working_hours' THEN 'health_and_safety' ELSE 'working_hours' END
    WHERE id = $1
"""
REMOVE = "DELETE FROM shared_findings WHERE id = $1"
TEXT_ONLY = "UPDATE shared_findings SET title = title || '.' WHERE id = $1"


async def measure(
    conn: asyncpg.Connection, ids: list[object], triggers: bool
) -> dict[str, list[float]]:
    """µs per statement for each kind of change, in one transaction that is rolled back."""
    timings: dict[str, list[float]] = {"add": [], "move": [], "text only": [], "remove": []}
    tx = conn.transaction()
    await tx.start()
    try:
        if not triggers:
            for trigger in TRIGGERS:
                await conn.execute(f"ALTER TABLE shared_findings DISABLE TRIGGER {trigger}")
        added: list[object] = []
        for source in ids:
            started = time.perf_counter()
            added.append(await conn.fetchval(COPY, source))
            timings["add"].append((time.perf_counter() - started) * 1e6)
        for kind, sql in (("move", MOVE), ("text only", TEXT_ONLY), ("remove", REMOVE)):
            for shared in added:
                started = time.perf_counter()
                await conn.execute(sql, shared)
                timings[kind].append((time.perf_counter() - started) * 1e6)
    finally:
        await tx.rollback()
    return timings


def _p(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


async def main(database: str, count: int) -> None:
    settings = Settings.from_env()
    conn = await asyncpg.connect(**connect_kwargs(bench_admin_url(settings, database)))
    try:
        ids = [row["id"] for row in await conn.fetch(SAMPLE, count)]
        if not ids:
            raise SystemExit(f"{database} holds no shared findings: run python -m bench.generate")
        rows = await conn.fetchval("SELECT count(*) FROM shared_findings")
        await measure(conn, ids[:50], True)  # warm-up: plans, caches
        on = await measure(conn, ids, True)
        off = await measure(conn, ids, False)
    finally:
        await conn.close()
    print(
        f"{len(ids)} statements of each kind, one row each, on a table of {rows:,} shared "
        "findings; µs per statement (triggers on / off = the ceiling)"
    )
    print("| change    | median on | p90 on | median off | p90 off | tallies add (median) |")
    print("|-----------|-----------|--------|------------|---------|----------------------|")
    for kind in on:
        m_on, m_off = statistics.median(on[kind]), statistics.median(off[kind])
        print(
            f"| {kind:<9} | {m_on:9,.0f} | {_p(on[kind], 0.9):6,.0f} | {m_off:10,.0f} | "
            f"{_p(off[kind], 0.9):7,.0f} | {m_on - m_off:20,.0f} |"
        )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(prog="python -m bench.tallies", description=__doc__)
    parser.add_argument("--database", default=BENCH_DATABASE)
    parser.add_argument("--count", type=int, default=200)
    args = parser.parse_args()
    asyncio.run(main(args.database, args.count))
