"""Helpers of the co-sourcing tests: a group of rival brands around one factory, links of a
chosen age, the worker's jobs run on demand, and every readable answer of a tenant."""

from __future__ import annotations

import dataclasses
import json
import uuid
from datetime import UTC, date, datetime, timedelta
from typing import Any

import httpx
import pytest
import sqlalchemy as sa

from tests.conftest import superuser_transaction
from tests.sharing import conftest as sharing
from tests.sharing.conftest import SharingGroup, new_supplier, record, share
from tests.working_groups.conftest import Actor
from wg_api.cosourcing import service
from wg_api.platform.database import Database
from wg_api.settings import Settings

# The sharing tests' fixtures: rival brands with distinctive names, and groups of them.
new_brand = sharing.new_brand
make_group = sharing.make_group

ALERT = "supplier.zero_tolerance_alert"
INTRODUCED = "remediation_room.introduced"
OVERLAP_FOUND = "audit.overlap_found"
OVERLAP_INTRODUCED = "audit_overlap.introduced"
ROOM_EVENTS = (
    "remediation_room.introduced,remediation_room.message_posted,"
    "remediation_room.action_item_created,remediation_room.action_item_updated,"
    "remediation_room.deadline_reminder"
)


async def age_links(database: Database, supplier_id: str, actors: list[Actor], days: int) -> None:
    """Make the actors' links to the supplier `days` old (the API only makes new ones)."""
    async with superuser_transaction(database) as session:
        await session.execute(
            sa.text(
                "UPDATE supplier_links SET created_at = now() - make_interval(days => :days) "
                "WHERE supplier_id = :supplier AND tenant_id = ANY(CAST(:tenants AS uuid[]))"
            ),
            {"days": days, "supplier": supplier_id, "tenants": [a.id for a in actors]},
        )


async def link_to(client: httpx.AsyncClient, actor: Actor, supplier_id: str) -> None:
    response = await client.post(
        "/v1/suppliers", json={"supplier_id": supplier_id}, headers=actor.headers
    )
    assert response.status_code == 200, response.text


async def run_alerts(database: Database, settings: Settings, **overrides: Any) -> dict[str, int]:
    """The worker's alert job, as it runs it (system role, the settings' minimum link age)."""
    options = {
        "min_link_age_days": settings.cosourcing_min_link_age_days,
        "shared_event_delay_seconds": 0.0,
        **overrides,
    }
    async with database.system_transaction() as session:
        return await service.send_alerts(session, **options)


async def run_matching(database: Database, settings: Settings, **overrides: Any) -> dict[str, int]:
    options = {
        "min_link_age_days": settings.cosourcing_min_link_age_days,
        "shared_event_delay_seconds": 0.0,
        **overrides,
    }
    async with database.system_transaction() as session:
        return await service.match_planned_audits(session, **options)


async def run_reminders(database: Database, now: datetime) -> dict[str, int]:
    async with database.system_transaction() as session:
        return await service.send_room_reminders(session, now)


async def events(client: httpx.AsyncClient, actor: Actor, types: str | None = None) -> list[Any]:
    """Every event in `actor`'s feed (of `types`), read through the API."""
    items: list[Any] = []
    cursor = None
    while True:
        params: dict[str, Any] = {"limit": 200}
        if types:
            params["types"] = types
        if cursor:
            params["after"] = cursor
        response = await client.get("/v1/events", params=params, headers=actor.headers)
        assert response.status_code == 200, response.text
        body = response.json()
        items += body["items"]
        cursor = body["next_cursor"]
        if not body["has_more"]:
            return items


async def get_ok(client: httpx.AsyncClient, actor: Actor, path: str, **params: Any) -> Any:
    response = await client.get(path, params=params, headers=actor.headers)
    assert response.status_code == 200, response.text
    return response.json()


async def post(
    client: httpx.AsyncClient, actor: Actor, path: str, body: Any = None, status: int = 200
) -> Any:
    response = await client.post(path, json=body, headers=actor.headers)
    assert response.status_code == status, response.text
    return response.json()


# Who is in a group is visible to its members by design (api.md): those events name tenants.
MEMBERSHIP_EVENTS = ("working_group.", "invitation.")


async def everything_readable(client: httpx.AsyncClient, actor: Actor) -> str:
    """All that `actor` can read about co-sourcing and its whole feed but the group-membership
    events, as one text to search."""
    feed = [e for e in await events(client, actor) if not e["type"].startswith(MEMBERSHIP_EVENTS)]
    parts = [
        feed,
        await get_ok(client, actor, "/v1/remediation-rooms", limit=200),
        await get_ok(client, actor, "/v1/audit-overlaps", limit=200),
        await get_ok(client, actor, "/v1/planned-audits", limit=200),
    ]
    for room in parts[1]["items"]:
        parts.append(await get_ok(client, actor, f"/v1/remediation-rooms/{room['id']}"))
    return json.dumps(parts)


def traces_of(actor: Actor) -> list[str]:
    """What would name `actor`: its id, slug and name."""
    return [str(actor.id), actor.slug, actor.name]


@dataclasses.dataclass
class Factory:
    """A zero-tolerance finding at a factory, shared into a group of rival brands:
    `contributor` shares it; `linked` (two) source there for long; `young` linked days ago;
    `unlinked` does not source there."""

    group: SharingGroup
    supplier: dict[str, Any]
    contributor: Actor
    linked: list[Actor]
    young: Actor
    unlinked: Actor
    shared_finding_id: str

    @property
    def bystanders(self) -> list[Actor]:
        """Members of the group with no alert coming: the young link, the unlinked brand, the
        facilitator and the observer."""
        assert self.group.observer is not None
        return [self.young, self.unlinked, self.group.facilitator, self.group.observer]


async def share_zero_tolerance(
    client: httpx.AsyncClient, actor: Actor, supplier_id: str, group: SharingGroup
) -> str:
    finding = await record(
        client,
        actor,
        supplier_id,
        area="child_labour",
        severity="zero_tolerance",
        title="Worker under the minimum age found on the packing line",
        description="One worker under 16 was found on the packing line during the visit.",
        affected_workers=1,
    )
    created = await share(client, actor, finding["id"], group)
    shared_finding_id: str = created["shared_finding_id"]
    return shared_finding_id


@pytest.fixture
async def factory_case(client: httpx.AsyncClient, make_group: Any, database: Database) -> Factory:
    group = await make_group(members=5)
    contributor, first, second, young, unlinked = group.members
    supplier = await new_supplier(client, contributor, linked=[first, second, young])
    await age_links(database, supplier["id"], [contributor, first, second], 90)
    await age_links(database, supplier["id"], [young], 3)
    shared_id = await share_zero_tolerance(client, contributor, supplier["id"], group)
    return Factory(group, supplier, contributor, [first, second], young, unlinked, shared_id)


def room_of(alerts: list[Any], shared_finding_id: str) -> str:
    rooms = {
        e["data"]["remediation_room_id"]
        for e in alerts
        if e["data"]["shared_finding"]["id"] == shared_finding_id
    }
    assert len(rooms) == 1, alerts
    return str(rooms.pop())


def days_ahead(n: int) -> date:
    return (datetime.now(UTC) + timedelta(days=n)).date()


def random_id() -> str:
    return str(uuid.uuid4())
