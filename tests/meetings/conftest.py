"""Helpers of the meeting tests: a populated group (from the working-group tests), local start
times derived from the clock, and problem assertions."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import sqlalchemy as sa

from tests.conftest import superuser_transaction
from tests.working_groups import conftest as working_groups
from tests.working_groups.conftest import Actor, Room
from wg_api.platform.database import Database

# The working-group tests' fixtures: actors with tokens, a group with every role and an outsider.
new_actor = working_groups.new_actor
room = working_groups.room

HK = "Asia/Hong_Kong"
ONLINE = {"mode": "online", "online_url": "https://meet.example/wg"}
HYBRID = {
    "mode": "hybrid",
    "venue": "Harbour Centre, 12/F",
    "address": "25 Harbour Road, Wan Chai",
    "online_url": "https://meet.example/wg",
}


def local_day(days_ahead: int, zone: str = HK) -> date:
    return (datetime.now(UTC) + timedelta(days=days_ahead)).astimezone(ZoneInfo(zone)).date()


def start_in(days_ahead: int, time: str = "10:00", zone: str = HK) -> str:
    """A wall time `days_ahead` days from today in `zone`, e.g. '2027-03-18T10:00'."""
    return f"{local_day(days_ahead, zone).isoformat()}T{time}"


def body(**fields: Any) -> dict[str, Any]:
    return {
        "title": "Quarterly meeting",
        "start_local": start_in(30),
        "duration_minutes": 120,
        "location": HYBRID,
        **fields,
    }


async def schedule(client: httpx.AsyncClient, room: Room, **fields: Any) -> dict[str, Any]:
    response = await client.post(
        f"{room.path}/meetings", json=body(**fields), headers=room.facilitator.headers
    )
    assert response.status_code == 201, response.text
    meeting: dict[str, Any] = response.json()
    return meeting


async def occurrences(
    client: httpx.AsyncClient, room: Room, actor: Actor | None = None, **params: Any
) -> list[dict[str, Any]]:
    response = await client.get(
        f"{room.path}/meetings",
        params={"limit": 200, "to": "2100-01-01T00:00:00Z", **params},
        headers=(actor or room.facilitator).headers,
    )
    assert response.status_code == 200, response.text
    items: list[dict[str, Any]] = response.json()["items"]
    return items


async def series_of(client: httpx.AsyncClient, room: Room, series_id: str) -> list[dict[str, Any]]:
    return [m for m in await occurrences(client, room) if m["series_id"] == series_id]


async def move_to_past(database: Database, meeting_id: str, hours_ago: int = 48) -> None:
    """Make an occurrence one that has ended (the API never schedules one in the past)."""
    async with superuser_transaction(database) as session:
        await session.execute(
            sa.text(
                "UPDATE meetings SET starts_at = now() - make_interval(hours => :h), "
                "ends_at = now() - make_interval(hours => :h) + interval '1 hour' WHERE id = :id"
            ),
            {"h": hours_ago, "id": meeting_id},
        )
