"""Outcome indicators with results and breakdowns, and the cost split."""

from __future__ import annotations

import uuid
from typing import Any

import httpx
import pytest

from tests.funding.conftest import (
    Fund,
    assert_problem,
    create_initiative,
    error_fields,
    money,
    open_initiative,
)

WORKERS = {
    "name": "Workers reached",
    "unit": "workers",
    "baseline": 0,
    "target": 4000,
    "breakdown": ["in_factory_training", "elearning"],
}


async def _indicator(
    client: httpx.AsyncClient, fund: Fund, initiative: dict[str, Any], **body: Any
) -> dict[str, Any]:
    response = await client.post(
        f"/v1/initiatives/{initiative['id']}/indicators",
        json={**WORKERS, **body},
        headers=fund.facilitator.headers,
    )
    assert response.status_code == 201, response.text
    indicator: dict[str, Any] = response.json()
    return indicator


async def test_results_add_up_and_members_read_the_total(client, fund):
    initiative = await open_initiative(client, fund)
    indicator = await _indicator(client, fund, initiative)
    assert indicator["results"] == []
    assert indicator["total"] == 0
    for period, value, parts in (
        (("2025-01-01", "2025-12-31"), 2210, {"in_factory_training": 1700, "elearning": 510}),
        (("2026-01-01", "2026-12-31"), 2447, {"in_factory_training": 1812, "elearning": 635}),
    ):
        response = await client.post(
            f"/v1/indicators/{indicator['id']}/results",
            json={
                "period_start": period[0],
                "period_end": period[1],
                "value": value,
                "breakdown": parts,
            },
            headers=fund.facilitator.headers,
        )
        assert response.status_code == 201, response.text
    brand = fund.brands[0]
    read = await client.get(f"/v1/indicators/{indicator['id']}", headers=brand.headers)
    assert read.status_code == 200
    assert read.headers["etag"]
    body = read.json()
    assert body["total"] == 4657
    assert sum(r["breakdown"]["in_factory_training"] for r in body["results"]) == 3512
    assert sum(r["breakdown"]["elearning"] for r in body["results"]) == 1145
    assert {k: body[k] for k in ("name", "unit", "baseline", "target")} == {
        "name": "Workers reached",
        "unit": "workers",
        "baseline": 0,
        "target": 4000,
    }
    listed = await client.get(
        f"/v1/initiatives/{initiative['id']}/indicators", headers=brand.headers
    )
    assert [i["total"] for i in listed.json()["items"]] == [4657]


@pytest.mark.parametrize(
    ("body", "field", "status"),
    [
        ({"breakdown": {"in_factory_training": 10, "elearning": 5}}, "breakdown", 422),
        ({"breakdown": {"in_factory_training": 16}}, "breakdown", 422),
        ({"breakdown": {"in_factory_training": 10, "radio": 6}}, "breakdown", 422),
        ({"period_end": "2024-12-31"}, "period_end", 422),
        ({"value": -1}, "value", 422),
        ({"value": "16"}, "value", 400),
        ({"tenant_id": str(uuid.uuid4())}, "tenant_id", 400),
    ],
)
async def test_bad_results(client, fund, body, field, status):
    initiative = await open_initiative(client, fund)
    indicator = await _indicator(client, fund, initiative)
    payload = {"period_start": "2025-01-01", "period_end": "2025-06-30", "value": 16, **body}
    response = await client.post(
        f"/v1/indicators/{indicator['id']}/results", json=payload, headers=fund.facilitator.headers
    )
    assert field in error_fields(assert_problem(response, status))


async def test_indicators_are_facilitators_to_define_and_hidden_outside(client, fund):
    initiative = await open_initiative(client, fund)
    brand = fund.brands[0]
    response = await client.post(
        f"/v1/initiatives/{initiative['id']}/indicators", json=WORKERS, headers=brand.headers
    )
    assert_problem(response, 403)
    indicator = await _indicator(client, fund, initiative)
    response = await client.post(
        f"/v1/indicators/{indicator['id']}/results",
        json={"period_start": "2025-01-01", "period_end": "2025-06-30", "value": 1},
        headers=brand.headers,
    )
    assert_problem(response, 403)
    theirs = await client.get(f"/v1/indicators/{indicator['id']}", headers=fund.outsider.headers)
    random = await client.get(f"/v1/indicators/{uuid.uuid4()}", headers=fund.outsider.headers)
    assert_problem(theirs, 404)
    assert theirs.json() == random.json()
    draft = await create_initiative(client, fund)
    hidden = await _indicator(client, fund, draft)
    response = await client.get(f"/v1/indicators/{hidden['id']}", headers=brand.headers)
    assert response.json() == random.json()
    duplicate = await client.post(
        f"/v1/initiatives/{initiative['id']}/indicators",
        json={**WORKERS, "breakdown": ["a", "a"]},
        headers=fund.facilitator.headers,
    )
    assert "breakdown" in error_fields(assert_problem(duplicate, 422))


async def test_the_cost_split_adds_up_with_ties_to_the_lower_tenant_id(client, fund):
    initiative = await open_initiative(client, fund, budget=money(1_000_000))
    funders = sorted(fund.brands[:3], key=lambda a: str(a.id))
    body = {"funders": [{"tenant_id": str(f.id), "weight": 1} for f in reversed(funders)]}
    response = await client.post(
        f"/v1/initiatives/{initiative['id']}/cost-split",
        json=body,
        headers=fund.observer.headers,
    )
    assert response.status_code == 200, response.text
    shares = {s["tenant_id"]: s["amount"] for s in response.json()["shares"]}
    assert shares == {
        str(funders[0].id): money(333_334),
        str(funders[1].id): money(333_333),
        str(funders[2].id): money(333_333),
    }
    weighted = await client.post(
        f"/v1/initiatives/{initiative['id']}/cost-split",
        json={
            "funders": [
                {"tenant_id": str(fund.brands[0].id), "weight": 3},
                {"tenant_id": str(fund.facilitator.id), "weight": 1},
            ],
            "amount": money(1001, "JPY"),
        },
        headers=fund.brands[3].headers,
    )
    assert [s["amount"] for s in weighted.json()["shares"]] == [
        money(751, "JPY"),
        money(250, "JPY"),
    ]
    after = await client.get(
        f"/v1/initiatives/{initiative['id']}", headers=fund.facilitator.headers
    )
    assert after.json()["funding"]["committed"] == money(0)


@pytest.mark.parametrize(
    ("funders", "field", "status"),
    [
        ("observer", "funders[0].tenant_id", 422),
        ("outsider", "funders[0].tenant_id", 422),
        ("twice", "funders[1].tenant_id", 422),
        ("weight0", "funders[0].weight", 422),
        ("empty", "funders", 422),
        ("currency", "amount.currency", 422),
    ],
)
async def test_bad_cost_splits(client, fund, funders, field, status):
    initiative = await open_initiative(client, fund)
    brand = fund.brands[0]
    entry = {"tenant_id": str(brand.id), "weight": 1}
    body = {
        "observer": {"funders": [{"tenant_id": str(fund.observer.id), "weight": 1}]},
        "outsider": {"funders": [{"tenant_id": str(fund.outsider.id), "weight": 1}]},
        "twice": {"funders": [entry, entry]},
        "weight0": {"funders": [{**entry, "weight": 0}]},
        "empty": {"funders": []},
        "currency": {"funders": [entry], "amount": money(5, "XTS")},
    }[funders]
    response = await client.post(
        f"/v1/initiatives/{initiative['id']}/cost-split", json=body, headers=brand.headers
    )
    assert field in error_fields(assert_problem(response, status))
