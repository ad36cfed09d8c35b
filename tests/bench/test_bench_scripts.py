"""Each bench script run once, tiny, as a user runs it (`python -m bench.X`, settings from the
environment) against the test server: it finishes and prints a figure for each measurement.
Each makes and drops a database of its own name (`--database`); the test drops it again."""

from __future__ import annotations

import asyncio
import os
import re
import subprocess
import sys
import time
import uuid
from pathlib import Path

from sqlalchemy.engine import URL

from bench.generate import drop_database, libpq_url
from wg_api.settings import Settings

TIMEOUT_SECONDS = 180
# A measurement: its median and 90th percentile, maybe its target beside.
FIGURE = r"\s+p50\s+\d+\.\d\d ms\s+p90\s+\d+\.\d\d ms(   target < [\d.]+ ms: (met|NOT met))?"


async def run_bench(
    settings: Settings, admin_url: URL, tmp_path: Path, module: str, *args: str
) -> str:
    """`python -m bench.<module> ... --database <new name>` on the test server; its stdout."""
    name = f"wg_bench_smoke_{module}_{uuid.uuid4().hex[:8]}"
    started = time.perf_counter()
    try:
        done = await asyncio.to_thread(
            subprocess.run,
            [sys.executable, "-m", f"bench.{module}", *args, "--database", name],
            # The test server, and a data directory (signing keys) of the test's own.
            env={**os.environ, "DATABASE_URL": libpq_url(admin_url), "WG_DATA_DIR": str(tmp_path)},
            capture_output=True,
            text=True,
            timeout=TIMEOUT_SECONDS,
            check=False,
        )
    finally:
        await drop_database(settings, name)
    print(f"bench.{module}: {time.perf_counter() - started:.1f} s\n{done.stdout}")
    assert done.returncode == 0, done.stderr[-3000:]
    return done.stdout


def figure(out: str, name: str) -> None:
    assert re.search(rf"^{re.escape(name)}{FIGURE}$", out, re.M), f"no figure for {name!r}:\n{out}"


async def test_the_calendar_bench_prints_its_figures(settings, admin_url, tmp_path):
    out = await run_bench(settings, admin_url, tmp_path, "calendar", "--runs", "2")
    assert re.search(r"^20 series x 20 \+ 100 single meetings .*: \d+ VEVENTs", out, re.M)
    for name in (
        "build, cold (caches emptied)",
        "build, warm",
        "  of which: reading the rows (occurrences, series)",
        "  of which: rendering them, warm (pure CPU)",
        "GET /feeds/{token}.ics, 200, in-process",
        "GET /feeds/{token}.ics, 304 (If-None-Match), in-process",
        "the 304's work without HTTP (lookup + version)",
        "ceiling: raw asyncpg lookup + version",
    ):
        figure(out, name)
    assert len(re.findall(r"target < [\d.]+ ms: (met|NOT met)$", out, re.M)) == 2
    assert len(re.findall(r"CPU of this process per \w+ +\d+\.\d\d ms$", out, re.M)) == 2


async def test_the_meeting_slots_bench_prints_its_figures(settings, admin_url, tmp_path):
    out = await run_bench(settings, admin_url, tmp_path, "meeting_slots", "--runs", "2")
    assert re.search(r"^30 member tenants in 10 zones, .* 2 runs each", out, re.M)
    assert re.search(
        r"^POST \.\.\./meeting-slots, cold \(holiday calendars built\) +\d+\.\d\d ms$", out, re.M
    )
    for name in (
        "POST .../meeting-slots, in-process",
        "POST .../meeting-slots in_person, in-process",
        "slots.rank alone (no database, no HTTP)",
    ):
        figure(out, name)


async def test_the_meetings_bench_prints_its_figures(settings, admin_url, tmp_path):
    out = await run_bench(settings, admin_url, tmp_path, "meetings", "--runs", "2")
    year = re.search(r"^20 weekly series, (\d+) occurrences in the year, 2 runs each$", out, re.M)
    assert year, out
    assert 1000 <= int(year[1]) <= 1060  # 52 or 53 weeks of 20 series
    for name in (
        "GET .../meetings (a year, page of 200), in-process",
        f"GET .../meetings, every page of the year ({year[1]})",
        "service.list_occurrences, the whole year",
        "ceiling: raw asyncpg, the page's rows",
    ):
        figure(out, name)


async def test_the_funding_bench_prints_its_figures(settings, admin_url, tmp_path):
    # Six connections at least: the statement is read as the sixth brand too.
    out = await run_bench(
        settings,
        admin_url,
        tmp_path,
        "funding",
        *("--bookings", "50", "--connections", "6", "--rounds", "1", "--repeats", "1"),
    )
    assert re.search(r"^statement of 50 bookings \(limit 100 ms, JSON\):$", out, re.M)
    for label in ("facilitator", "member \\(totals_only\\)"):
        assert re.search(
            rf"^  {label} +\d+ entries  median +[\d.]+ ms  p90 +[\d.]+ ms  (ok|OVER)$", out, re.M
        ), out
    assert re.search(r"^  CSV streamed: \d+ KiB written, peak Python memory \d+ KiB$", out, re.M)
    assert re.search(r"^pledges committed on 6 connections at once:$", out, re.M)
    assert re.search(r"^  commits: 6$", out, re.M)
    assert re.search(r"^  commits_per_s: [\d.]+$", out, re.M)
    assert re.search(r"^  median_ms: [\d.]+$", out, re.M)
    assert re.search(r"^  funded_events_lost: 0$", out, re.M)
    assert re.search(r"^  funded_events_doubled: 0$", out, re.M)


async def test_the_webhooks_bench_prints_its_figures(settings, admin_url, tmp_path):
    out = await run_bench(
        settings, admin_url, tmp_path, "webhooks", "--endpoints", "2", "--events", "20"
    )
    assert re.search(r"^2 endpoints x 20 events, one dispatcher", out, re.M)
    assert re.search(r"^healthy endpoints only: +\d+ deliveries/s .*40 in [\d.]+ s", out, re.M)
    assert re.search(
        r"^with one dead endpoint beside: +\d+ deliveries/s .*40 in [\d.]+ s", out, re.M
    )


async def test_the_bulk_bench_prints_its_figures(settings, admin_url, tmp_path):
    out = await run_bench(
        settings, admin_url, tmp_path, "bulk", "--import-rows", "300", "--export-rows", "2000"
    )
    assert re.search(r"^import of 300 findings \([\d.]+ MB of NDJSON over HTTP\):$", out, re.M)
    assert re.search(r"^  summary: .*'created': 300", out, re.M), out
    assert re.search(r"^  time +[\d.]+ s +target < \d+ s +(ok|MISSED)", out, re.M)
    assert len(re.findall(r"^  server RSS \+ +-?[\d.]+ MB", out, re.M)) == 2
    assert re.search(r"^export of 2,000 findings as NDJSON", out, re.M)
    assert re.search(r"^  rate +[\d,]+ rows/s +target >= [\d,]+ +(ok|MISSED)", out, re.M)
    assert re.search(r"^  ceiling +[\d,]+ rows/s", out, re.M)
