"""A calendar feed of 500 meetings with exceptions: building it, and the 304 a polling client gets.

    python -m bench.calendar [--runs 100] [--database wg_bench_calendar]

Makes its own database (`wg_bench_calendar`, dropped at the end), a facilitator tenant and a group
with 20 series of 20 occurrences in three zones (Hong Kong, Stockholm, New York) and 100 single
meetings, all through the API; 25 occurrences are moved and 25 cancelled (overrides with a
RECURRENCE-ID). Then it times, in one process:

- the build (`meetings.feeds.build`: read every occurrence and series, render with icalendar) cold
  (every cache emptied first) and warm (VTIMEZONEs and unchanged VEVENTs cached), and its two
  halves: reading the rows, and rendering them (pure CPU);
- `GET /feeds/{token}.ics` through the whole app in-process: a 200, and a 304 for `If-None-Match`;
- the 304's work without HTTP (`feeds.feed_owner` + `feeds.unchanged_etag`: one statement);
- the ceiling of a 304: the token lookup and the version query with raw asyncpg as the superuser.

Targets: a warm build under 30 ms, a 304 under 2 ms.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import os
import time
import uuid
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

import asyncpg
import httpx
from asgi_lifespan import LifespanManager

from bench.generate import bench_admin_url, connect_kwargs, drop_database
from bench.meetings import _token, line, timed
from wg_api.app import asgi_app
from wg_api.identity import service as identity
from wg_api.meetings import calendar, feeds
from wg_api.meetings import service as meetings
from wg_api.platform.database import Database
from wg_api.platform.migrate import migrate
from wg_api.settings import Settings

DATABASE = "wg_bench_calendar"
SERIES = 20
PER_SERIES = 20
SINGLES = 100
MOVED = CANCELLED = 25
ZONES = ("Asia/Hong_Kong", "Europe/Stockholm", "America/New_York")
BUILD_TARGET_MS = 30.0
NOT_MODIFIED_TARGET_MS = 2.0
CEILING = """
    SELECT f.tenant_id, f.id FROM calendar_feeds f WHERE f.token_hash = $1 AND f.revoked_at IS NULL
"""
CEILING_VERSION = """
    SELECT count(*), max(updated_at) FROM meetings WHERE working_group_id = $1
"""


async def _populate(http: httpx.AsyncClient, headers: dict[str, str], group_id: str) -> None:
    path = f"/v1/working-groups/{group_id}/meetings"
    day = datetime.now(UTC).date() + timedelta(days=2)
    location = {
        "mode": "hybrid",
        "venue": "Harbour Centre, 12/F",
        "address": "25 Harbour Road, Wan Chai, Hong Kong",
        "online_url": "https://meet.example/bench",
    }
    series_firsts = []
    for i in range(SERIES):
        response = await http.post(
            path,
            json={
                "title": f"Working group series {i}: remediation and young workers",
                "description": "Agenda: progress on remediation cases; summer programme. " * 3,
                "start_local": f"{day + timedelta(days=i % 7)}T{8 + i % 10:02d}:00",
                "timezone": ZONES[i % 3],
                "duration_minutes": 90,
                "location": location,
                "rrule": f"FREQ=WEEKLY;COUNT={PER_SERIES}",
            },
            headers=headers,
        )
        response.raise_for_status()
        series_firsts.append(response.json())
    for i in range(SINGLES):
        response = await http.post(
            path,
            json={
                "title": f"Single meeting {i}",
                "start_local": f"{day + timedelta(days=i)}T14:00",
                "timezone": ZONES[i % 3],
                "duration_minutes": 60,
                "location": location,
            },
            headers=headers,
        )
        response.raise_for_status()
    listed = await http.get(
        path, params={"limit": 200, "to": "2100-01-01T00:00:00Z"}, headers=headers
    )
    in_series = [m for m in listed.json()["items"] if m["series_id"] and m["sequence"] == 0]
    for meeting in in_series[1 : 1 + MOVED]:
        moved = await http.patch(
            f"/v1/meetings/{meeting['id']}",
            json={"start_local": meeting["start_local"][:11] + "16:30"},
            headers=headers,
        )
        moved.raise_for_status()
    for meeting in in_series[1 + MOVED : 1 + MOVED + CANCELLED]:
        cancelled = await http.post(
            f"/v1/meetings/{meeting['id']}/cancel", json={}, headers=headers
        )
        cancelled.raise_for_status()


async def cpu_ms(runs: int, call: Callable[[], Awaitable[Any]]) -> float:
    """This process's CPU time per call, in ms: what the machine's load does not inflate (the
    database server's share is not in it)."""
    started = time.process_time()
    for _ in range(runs):
        await call()
    return (time.process_time() - started) * 1000 / runs


def verdict(samples: list[float], target: float) -> str:
    p50 = sorted(samples)[len(samples) // 2]
    return f"target < {target:g} ms: {'met' if p50 < target else 'NOT met'}"


async def run(runs: int, name: str = DATABASE) -> list[str]:
    settings = dataclasses.replace(
        Settings.from_env(),
        rate_limit_per_minute=10_000_000,
        unauthenticated_per_minute=10_000_000,
        log_level="WARNING",
    )
    admin_url = bench_admin_url(settings, name)
    await drop_database(settings, name)
    await migrate(admin_url, settings)
    database = Database.connect(admin_url, settings)
    try:
        async with database.system_transaction() as session:
            tenant = await identity.create_tenant(
                session,
                slug="bench-facilitator",
                name="Bench",
                kind="facilitator",
                timezone="Asia/Hong_Kong",
            )
        async with database.transaction(tenant["id"]) as session:
            made = await identity.create_client(
                session, tenant_id=tenant["id"], name="bench", role="admin", scopes=None
            )
        app = asgi_app(settings, database)
        async with (
            LifespanManager(app, startup_timeout=60),
            httpx.AsyncClient(
                transport=httpx.ASGITransport(app=app), base_url="http://bench.local"
            ) as http,
        ):
            headers = {
                "Authorization": f"Bearer {await _token(http, made.client_id, made.client_secret)}"
            }
            group = (
                await http.post("/v1/working-groups", json={"name": "Bench"}, headers=headers)
            ).json()
            await _populate(http, headers, group["id"])
            feed = (
                await http.post(
                    "/v1/calendar-feeds", json={"working_group_id": group["id"]}, headers=headers
                )
            ).json()
            feed_path = urlsplit(feed["url"]).path
            token = feed_path.removeprefix("/feeds/").removesuffix(".ics")
            group_id = uuid.UUID(group["id"])
            tenant_id: uuid.UUID = tenant["id"]

            async def build() -> bytes:
                async with database.transaction(tenant_id) as session:
                    return await feeds.build(session, "Bench (wg-api)", [group_id])

            async def cold_build() -> bytes:
                calendar.clear_caches()
                return await build()

            body = await build()
            async with database.transaction(tenant_id) as session:
                rows = await meetings.list_occurrences(session, [group_id], *feeds.ALL_TIME)
                series = await meetings.series_records(
                    session, (r.series_id for r in rows if r.series_id)
                )

            async def render() -> None:
                calendar.render("Bench (wg-api)", rows, series)

            async def read_rows() -> None:
                async with database.transaction(tenant_id) as session:
                    found = await meetings.list_occurrences(session, [group_id], *feeds.ALL_TIME)
                    await meetings.series_records(
                        session, (r.series_id for r in found if r.series_id)
                    )

            events = body.count(b"BEGIN:VEVENT")
            overrides = body.count(b"RECURRENCE-ID")
            full = await http.get(feed_path)
            assert full.status_code == 200
            etag = full.headers["etag"]

            async def get_full() -> None:
                response = await http.get(feed_path)
                assert response.status_code == 200

            async def get_not_modified() -> None:
                response = await http.get(feed_path, headers={"If-None-Match": etag})
                assert response.status_code == 304

            async def service_not_modified() -> None:
                state = await feeds.feed_owner(database, token)
                assert feeds.unchanged_etag(state, etag) == etag

            conn = await asyncpg.connect(**connect_kwargs(admin_url))
            try:

                async def ceiling() -> None:
                    assert await conn.fetch(CEILING, feeds.hash_token(token))
                    await conn.fetch(CEILING_VERSION, group_id)

                cold = await timed(max(runs // 5, 10), cold_build)
                warm = await timed(runs, build)
                not_modified = await timed(runs * 5, get_not_modified)
                build_cpu = await cpu_ms(runs, build)
                not_modified_cpu = await cpu_ms(runs * 5, get_not_modified)
                results = [
                    f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs",
                    f"{SERIES} series x {PER_SERIES} + {SINGLES} single meetings "
                    f"({MOVED} moved, {CANCELLED} cancelled): {events} VEVENTs "
                    f"({overrides} overrides), {len(body) // 1024} KB; {runs} runs each",
                    line("build, cold (caches emptied)", cold),
                    line("build, warm", warm) + "   " + verdict(warm, BUILD_TARGET_MS),
                    f"  {'build, warm: CPU of this process per build':<56} {build_cpu:7.2f} ms",
                    line(
                        "  of which: reading the rows (occurrences, series)",
                        await timed(runs, read_rows),
                    ),
                    line("  of which: rendering them, warm (pure CPU)", await timed(runs, render)),
                    line("GET /feeds/{token}.ics, 200, in-process", await timed(runs, get_full)),
                    line("GET /feeds/{token}.ics, 304 (If-None-Match), in-process", not_modified)
                    + "   "
                    + verdict(not_modified, NOT_MODIFIED_TARGET_MS),
                    f"  {'304: CPU of this process per request':<56} {not_modified_cpu:7.2f} ms",
                    line(
                        "the 304's work without HTTP (lookup + version)",
                        await timed(runs * 5, service_not_modified),
                    ),
                    line("ceiling: raw asyncpg lookup + version", await timed(runs * 5, ceiling)),
                ]
            finally:
                await conn.close()
    finally:
        await database.dispose()
        await drop_database(settings, name)
    return results


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.calendar", description=__doc__)
    parser.add_argument("--runs", type=int, default=100)
    parser.add_argument("--database", default=DATABASE, help="the database it makes and drops")
    args = parser.parse_args(argv)
    for text in asyncio.run(run(args.runs, args.database)):
        print(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
