"""Helpers of the funding tests: a working group of four brands and a facilitator, initiatives."""

from __future__ import annotations

import dataclasses
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from tests.working_groups.conftest import Actor, assert_problem, create_group, error_fields, join
from wg_api.platform.database import make_engine

__all__ = ["Actor", "assert_problem", "error_fields"]

DATES = {"starts_on": "2027-06-01", "ends_on": "2027-08-31"}


@dataclasses.dataclass
class Fund:
    """A group: a facilitator, four brands (members), an observer, and a tenant outside it."""

    group: dict[str, Any]
    facilitator: Actor
    brands: list[Actor]
    observer: Actor
    outsider: Actor

    @property
    def path(self) -> str:
        return f"/v1/working-groups/{self.group['id']}"


@pytest.fixture
def new_actor(make_tenant: Any) -> Any:
    async def make(**kwargs: Any) -> Actor:
        handle = await make_tenant(**kwargs)
        return Actor(handle, await handle.headers())

    return make


@pytest.fixture
async def fund(client: httpx.AsyncClient, new_actor: Any) -> Fund:
    facilitator = await new_actor(kind="facilitator")
    brands = [await new_actor() for _ in range(4)]
    observer, outsider = await new_actor(), await new_actor()
    group = await create_group(client, facilitator)
    for brand in brands:
        await join(client, facilitator, group["id"], brand, "member")
    await join(client, facilitator, group["id"], observer, "observer")
    return Fund(group, facilitator, brands, observer, outsider)


def money(amount: int, currency: str = "HKD") -> dict[str, Any]:
    return {"amount": amount, "currency": currency}


async def create_initiative(client: httpx.AsyncClient, fund: Fund, **body: Any) -> dict[str, Any]:
    payload = {
        "title": "Factory child-friendly spaces, summer 2027",
        "currency": "HKD",
        "budget": money(1_000_000),
        **DATES,
        **body,
    }
    response = await client.post(
        f"{fund.path}/initiatives", json=payload, headers=fund.facilitator.headers
    )
    assert response.status_code == 201, response.text
    initiative: dict[str, Any] = response.json()
    return initiative


async def move(
    client: httpx.AsyncClient, fund: Fund, initiative: dict[str, Any], status: str
) -> dict[str, Any]:
    response = await client.patch(
        f"/v1/initiatives/{initiative['id']}",
        json={"status": status},
        headers=fund.facilitator.headers,
    )
    assert response.status_code == 200, response.text
    moved: dict[str, Any] = response.json()
    return moved


async def open_initiative(client: httpx.AsyncClient, fund: Fund, **body: Any) -> dict[str, Any]:
    return await move(client, fund, await create_initiative(client, fund, **body), "open")


async def pledge(
    client: httpx.AsyncClient,
    actor: Actor,
    initiative: dict[str, Any],
    amount: int,
    currency: str = "HKD",
    fx_rate: str | None = None,
    *,
    commit: bool = True,
) -> dict[str, Any]:
    body: dict[str, Any] = {"amount": money(amount, currency)}
    if fx_rate is not None:
        body["fx_rate"] = fx_rate
    response = await client.post(
        f"/v1/initiatives/{initiative['id']}/pledges", json=body, headers=actor.headers
    )
    assert response.status_code == 201, response.text
    made: dict[str, Any] = response.json()
    if commit:
        response = await client.post(f"/v1/pledges/{made['id']}/commit", headers=actor.headers)
        assert response.status_code == 200, response.text
        made = response.json()
    return made


async def pay(
    client: httpx.AsyncClient,
    fund: Fund,
    pledge_id: str,
    amount: int,
    currency: str = "HKD",
    received_on: str = "2027-06-15",
) -> dict[str, Any]:
    response = await client.post(
        f"/v1/pledges/{pledge_id}/payments",
        json={"amount": money(amount, currency), "received_on": received_on},
        headers=fund.facilitator.headers,
    )
    assert response.status_code == 201, response.text
    payment: dict[str, Any] = response.json()
    return payment


async def spend(
    client: httpx.AsyncClient,
    fund: Fund,
    initiative: dict[str, Any],
    amount: int | dict[str, Any],
    **body: Any,
) -> dict[str, Any]:
    payload = {
        "description": "Play equipment",
        "category": "equipment",
        "amount": money(amount) if isinstance(amount, int) else amount,
        "incurred_on": "2027-06-20",
        **body,
    }
    response = await client.post(
        f"/v1/initiatives/{initiative['id']}/expenses",
        json=payload,
        headers=fund.facilitator.headers,
    )
    assert response.status_code == 201, response.text
    expense: dict[str, Any] = response.json()
    return expense


async def get_initiative(
    client: httpx.AsyncClient, actor: Actor, initiative: dict[str, Any]
) -> dict[str, Any]:
    response = await client.get(f"/v1/initiatives/{initiative['id']}", headers=actor.headers)
    assert response.status_code == 200, response.text
    found: dict[str, Any] = response.json()
    return found


@pytest.fixture
async def admin(admin_url: Any, database: Any) -> AsyncIterator[AsyncConnection]:
    """A superuser connection, for test set-up the app can never do (moving bookings in time)."""
    engine = make_engine(admin_url, pool_size=1, application_name="wg-api-tests")
    try:
        async with engine.connect() as conn:
            yield conn
    finally:
        await engine.dispose()


async def backdate_payment(admin: AsyncConnection, payment_id: str, booked_at: str) -> None:
    """Move a payment's booking to `booked_at` (an RFC 3339 time), as if booked then."""
    async with admin.begin():
        await admin.execute(
            sa.text(
                "UPDATE ledger_bookings SET booked_at = CAST(CAST(:at AS text) AS timestamptz) "
                "WHERE payment_id = CAST(:id AS uuid)"
            ),
            {"at": booked_at, "id": payment_id},
        )


async def backdate_expense(admin: AsyncConnection, expense_id: str, booked_at: str) -> None:
    async with admin.begin():
        await admin.execute(
            sa.text(
                "UPDATE ledger_bookings SET booked_at = CAST(CAST(:at AS text) AS timestamptz) "
                "WHERE expense_id = CAST(:id AS uuid)"
            ),
            {"at": booked_at, "id": expense_id},
        )
