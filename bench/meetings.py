"""Listing a year of a group's meetings: 20 weekly series (about 1,040 occurrences in the year).

    python -m bench.meetings [--runs 200] [--database wg_bench_meetings]

Makes its own database (`wg_bench_meetings`, dropped at the end), a facilitator tenant and a group
with 20 open-ended weekly series created through the API, then times, in one process:

- `GET /v1/working-groups/{id}/meetings?from=&to=` (a year, one page of 200) through the whole app
  in-process (auth, transaction, RLS, JSON), and every page of the year;
- `meetings.service.list_occurrences` for the year (every occurrence, typed records), in a tenant
  transaction: what calendars and slots read;
- the ceiling: the same page's rows fetched with raw asyncpg as the superuser, no RLS, no logic.

Prints the median and 90th percentile of each, in milliseconds. Target: the API page p50 < 10 ms.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import dataclasses
import statistics
import time
import uuid
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import httpx
from asgi_lifespan import LifespanManager

from bench.generate import bench_admin_url, connect_kwargs, drop_database
from wg_api.app import asgi_app
from wg_api.identity import service as identity
from wg_api.meetings import service as meetings
from wg_api.platform.database import Database
from wg_api.platform.migrate import migrate
from wg_api.settings import Settings

DATABASE = "wg_bench_meetings"
SERIES = 20
CEILING = """
    SELECT id, working_group_id, series_id, series_index, title, description, start_local,
           timezone, starts_at, ends_at, duration_minutes, location, status, cancel_reason,
           sequence, recurrence_id, is_exception, reminders_minutes_before, created_at, updated_at
    FROM meetings
    WHERE working_group_id = $1 AND starts_at >= $2 AND starts_at < $3
    ORDER BY starts_at, id LIMIT 201
"""


async def timed(runs: int, call: Callable[[], Awaitable[Any]]) -> list[float]:
    for _ in range(10):
        await call()
    samples = []
    for _ in range(runs):
        started = time.perf_counter()
        await call()
        samples.append((time.perf_counter() - started) * 1000)
    return samples


def line(name: str, samples: list[float]) -> str:
    p50 = statistics.median(samples)
    p90 = statistics.quantiles(samples, n=10)[-1]
    return f"{name:<58} p50 {p50:7.2f} ms   p90 {p90:7.2f} ms"


async def _token(http: httpx.AsyncClient, client_id: str, secret: str) -> str:
    basic = base64.b64encode(f"{client_id}:{secret}".encode()).decode()
    response = await http.post(
        "/oauth/token",
        data={"grant_type": "client_credentials"},
        headers={"Authorization": f"Basic {basic}"},
    )
    response.raise_for_status()
    token: str = response.json()["access_token"]
    return token


async def run(runs: int, name: str = DATABASE) -> list[str]:
    settings = dataclasses.replace(
        Settings.from_env(), rate_limit_per_minute=10_000_000, log_level="WARNING"
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
        # The client as the tenant makes it: the system role has no privilege on tenant tables.
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
            day = datetime.now(UTC).date() + timedelta(days=1)
            for i in range(SERIES):
                response = await http.post(
                    f"/v1/working-groups/{group['id']}/meetings",
                    json={
                        "title": f"Series {i}",
                        "start_local": f"{day + timedelta(days=i % 7)}T{8 + i % 10:02d}:00",
                        "timezone": ["Asia/Hong_Kong", "Europe/Stockholm", "America/New_York"][
                            i % 3
                        ],
                        "duration_minutes": 60,
                        "location": {"mode": "online", "online_url": "https://meet.example/b"},
                        "rrule": "FREQ=WEEKLY",
                    },
                    headers=headers,
                )
                response.raise_for_status()
            begin = datetime.now(UTC)
            end = begin + timedelta(days=365)
            window: dict[str, str | int] = {
                "from": begin.isoformat(),
                "to": end.isoformat(),
                "limit": 200,
            }
            path = f"/v1/working-groups/{group['id']}/meetings"

            async def api_page() -> None:
                response = await http.get(path, params=window, headers=headers)
                assert response.status_code == 200
                assert len(response.json()["items"]) == 200

            async def api_year() -> int:
                count, cursor = 0, None
                while True:
                    query = {**window, **({"cursor": cursor} if cursor else {})}
                    body = (await http.get(path, params=query, headers=headers)).json()
                    count += len(body["items"])
                    cursor = body["next_cursor"]
                    if cursor is None:
                        return count

            group_id = uuid.UUID(group["id"])

            async def service_year() -> int:
                async with database.transaction(tenant["id"]) as session:
                    return len(await meetings.list_occurrences(session, [group_id], begin, end))

            in_year = await service_year()
            assert in_year == await api_year()
            conn = await asyncpg.connect(**connect_kwargs(admin_url))
            try:

                async def ceiling() -> None:
                    rows = await conn.fetch(CEILING, group_id, begin, end)
                    assert len(rows) == 201

                results = [
                    f"{SERIES} weekly series, {in_year} occurrences in the year, {runs} runs each",
                    line(
                        "GET .../meetings (a year, page of 200), in-process",
                        await timed(runs, api_page),
                    ),
                    line(
                        f"GET .../meetings, every page of the year ({in_year})",
                        await timed(max(runs // 5, 20), api_year),
                    ),
                    line(
                        "service.list_occurrences, the whole year", await timed(runs, service_year)
                    ),
                    line("ceiling: raw asyncpg, the page's rows", await timed(runs, ceiling)),
                ]
            finally:
                await conn.close()
    finally:
        await database.dispose()
        await drop_database(settings, name)
    return results


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.meetings", description=__doc__)
    parser.add_argument("--runs", type=int, default=200)
    parser.add_argument("--database", default=DATABASE, help="the database it makes and drops")
    args = parser.parse_args(argv)
    for text in asyncio.run(run(args.runs, args.database)):
        print(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
