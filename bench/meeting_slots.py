"""Meeting slots for 30 member tenants in 10 zones over 92 days.

    python -m bench.meeting_slots [--runs 30] [--database wg_bench_meeting_slots]

Makes its own database (`wg_bench_meeting_slots`, dropped at the end), a facilitator and 29 brands
in 10 zones and 10 countries (3 tenants each, working hours varied), all members of one group with
4 weekly series of its own; each brand is also in one of 3 other groups with 2 weekly series
each (conflicts for its tenants), then times, in one process:

- `POST /v1/working-groups/{id}/meeting-slots` (92 days, 60 minutes, 20 slots) through the whole
  app in-process (auth, transaction, RLS, JSON), and the same `in_person`;
- the ranking alone (`slots.rank`) on the same attendees, without the database;
- the first request in a fresh process pays for the holiday calendars (cached per country and
  year afterwards): printed once as "cold".

Prints the median and 90th percentile of each, in milliseconds. Target: the API p50 < 300 ms.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import time
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
from asgi_lifespan import LifespanManager

from bench.generate import bench_admin_url, drop_database
from bench.meetings import _token, line, timed
from wg_api.app import asgi_app
from wg_api.identity import service as identity
from wg_api.meetings import slots
from wg_api.platform.database import Database
from wg_api.platform.migrate import migrate
from wg_api.settings import Settings
from wg_api.working_groups import service as groups

DATABASE = "wg_bench_meeting_slots"
TARGET_MS = 300
PLACES = [
    ("Asia/Hong_Kong", "HK"),
    ("Asia/Shanghai", "CN"),
    ("Asia/Tokyo", "JP"),
    ("Asia/Kolkata", "IN"),
    ("Australia/Sydney", "AU"),
    ("Europe/Stockholm", "SE"),
    ("Europe/London", "GB"),
    ("Europe/Berlin", "DE"),
    ("America/New_York", "US"),
    ("America/Sao_Paulo", "BR"),
]
OTHER_GROUPS = 3
HOURS = [("08:00", "17:00"), ("09:00", "18:00"), ("10:00", "19:00")]
WEEK = ["mon", "tue", "wed", "thu", "fri"]


async def _tenant(
    database: Database, http: httpx.AsyncClient, n: int
) -> tuple[Any, dict[str, str]]:
    async with database.system_transaction() as session:
        tenant = await identity.create_tenant(
            session,
            slug=f"bench-{n:02d}",
            name=f"Bench brand {n:02d}",
            kind="facilitator" if n == 0 else "brand",
            timezone="Asia/Hong_Kong",
        )
    async with database.transaction(tenant["id"]) as session:
        made = await identity.create_client(
            session, tenant_id=tenant["id"], name="bench", role="admin", scopes=None
        )
    token = await _token(http, made.client_id, made.client_secret)
    headers = {"Authorization": f"Bearer {token}"}
    zone, country = PLACES[n % len(PLACES)]
    start, end = HOURS[n // len(PLACES)]
    days = WEEK if n % 4 else [*WEEK, "sat"]
    response = await http.patch(
        "/v1/tenant",
        json={
            "timezone": zone,
            "country": country,
            "working_hours": {"start": start, "end": end, "days": days},
        },
        headers=headers,
    )
    response.raise_for_status()
    return tenant, headers


async def run(runs: int, name: str = DATABASE) -> list[str]:
    settings = dataclasses.replace(
        Settings.from_env(), rate_limit_per_minute=10_000_000, log_level="WARNING"
    )
    admin_url = bench_admin_url(settings, name)
    await drop_database(settings, name)
    await migrate(admin_url, settings)
    database = Database.connect(admin_url, settings)
    try:
        app = asgi_app(settings, database)
        async with (
            LifespanManager(app, startup_timeout=60),
            httpx.AsyncClient(
                transport=httpx.ASGITransport(app=app), base_url="http://bench.local"
            ) as http,
        ):
            lead, headers = await _tenant(database, http, 0)
            group = (
                await http.post("/v1/working-groups", json={"name": "Bench"}, headers=headers)
            ).json()
            path = f"/v1/working-groups/{group['id']}"
            others = [
                (
                    await http.post(
                        "/v1/working-groups", json={"name": f"Other {k}"}, headers=headers
                    )
                ).json()["id"]
                for k in range(OTHER_GROUPS)
            ]
            for n in range(1, 30):
                member, own = await _tenant(database, http, n)
                for group_id in [group["id"], others[n % OTHER_GROUPS]]:
                    invitation = await http.post(
                        f"/v1/working-groups/{group_id}/invitations",
                        json={"tenant_slug": member["slug"], "role": "member"},
                        headers=headers,
                    )
                    invitation.raise_for_status()
                    accepted = await http.post(
                        f"/v1/invitations/{invitation.json()['id']}/accept", headers=own
                    )
                    accepted.raise_for_status()
            first = datetime.now(UTC).date() + timedelta(days=1)
            for i, group_id in enumerate([group["id"]] * 4 + others * 2):
                response = await http.post(
                    f"/v1/working-groups/{group_id}/meetings",
                    json={
                        "title": f"Series {i}",
                        "start_local": f"{first + timedelta(days=i % 7)}T{9 + i:02d}:00",
                        "duration_minutes": 90,
                        "location": {"mode": "online", "online_url": "https://meet.example/b"},
                        "rrule": "FREQ=WEEKLY",
                    },
                    headers=headers,
                )
                response.raise_for_status()
            body = {
                "duration_minutes": 60,
                "from": str(first),
                "to": str(first + timedelta(days=92)),
                "count": 20,
            }

            async def api(in_person: bool = False) -> None:
                response = await http.post(
                    f"{path}/meeting-slots", json={**body, "in_person": in_person}, headers=headers
                )
                assert response.status_code == 200, response.text
                assert response.json()["slots"]

            started = time.perf_counter()
            await api()
            cold = (time.perf_counter() - started) * 1000
            group_id = uuid.UUID(group["id"])
            async with database.transaction(lead["id"]) as session:
                member = await groups.require_member(session, group_id, lead["id"])
                roles = await groups.member_roles(session, group_id)
                profiles = await identity.working_times(session, roles)
            attendees = [slots.attendee_of(p, []) for p in profiles.values()]
            window = slots.window_for(
                slots.SlotsIn(
                    duration_minutes=60, from_=first, to=first + timedelta(days=92), count=20
                ),
                slots.zone_info(member.group.timezone),
                datetime.now(UTC),
            )

            async def ranking() -> None:
                slots.rank(
                    attendees,
                    window,
                    zone=slots.zone_info(member.group.timezone),
                    blocked=[],
                    place=None,
                    count=20,
                )

            results = [
                f"30 member tenants in {len(PLACES)} zones, 93 days, 60-minute slots, "
                f"{runs} runs each; target p50 < {TARGET_MS} ms",
                f"{'POST .../meeting-slots, cold (holiday calendars built)':<58} "
                f"     {cold:7.2f} ms",
                line("POST .../meeting-slots, in-process", await timed(runs, api)),
                line(
                    "POST .../meeting-slots in_person, in-process",
                    await timed(runs, lambda: api(True)),
                ),
                line("slots.rank alone (no database, no HTTP)", await timed(runs, ranking)),
            ]
    finally:
        await database.dispose()
        await drop_database(settings, name)
    return results


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.meeting_slots", description=__doc__)
    parser.add_argument("--runs", type=int, default=30)
    parser.add_argument("--database", default=DATABASE, help="the database it makes and drops")
    args = parser.parse_args(argv)
    for text in asyncio.run(run(args.runs, args.database)):
        print(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
