"""Findings input: wrong shapes are 400, well-formed but unacceptable values are 422; nothing is
written either way."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any

import pytest

from tests.findings.conftest import days_ago, finding_body
from tests.suppliers.conftest import PROBLEM_JSON, new_supplier


def _nested(**changes: Any) -> Callable[[dict[str, Any]], None]:
    def change(body: dict[str, Any]) -> None:
        for dotted, value in changes.items():
            *parents, leaf = dotted.split(".")
            target = body
            for parent in parents:
                target = target[parent]
            target[leaf] = value

    return change


def _without(*fields: str) -> Callable[[dict[str, Any]], None]:
    def change(body: dict[str, Any]) -> None:
        for field in fields:
            del body[field]

    return change


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"tenant_id": str(uuid.uuid4())}, "tenant_id"),
        ({"created_by": "someone"}, "created_by"),
        ({"id": str(uuid.uuid4())}, "id"),
        (_nested(**{"source.url": "https://audit.example"}), "source.url"),
        (_nested(**{"cap.budget": 100}), "cap.budget"),
        ({"affected_workers": "3"}, "affected_workers"),
        ({"affected_workers": 3.5}, "affected_workers"),
        ({"observed_on": 20261101}, "observed_on"),
        ({"title": 5}, "title"),
        ({"source": "smeta"}, "source"),
        ({"child_labour_case": [1, 2]}, "child_labour_case"),
        ({"supplier_id": 42}, "supplier_id"),
    ],
)
async def test_wrong_shapes_are_400(client, make_owner, change, field):
    owner = await make_owner()
    body = finding_body(owner.supplier_id)
    change(body) if callable(change) else body.update(change)
    response = await client.post("/v1/findings", json=body, headers=owner.headers)
    assert response.status_code == 400, response.text
    assert response.headers["content-type"] == PROBLEM_JSON
    problem = response.json()
    assert problem["type"] == "/problems/invalid-request"
    assert [e["field"] for e in problem["errors"]] == [field]
    assert await owner.list() == []


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"kind": "finding"}, "kind"),
        ({"area": "child_rights"}, "area"),
        ({"severity": "high"}, "severity"),
        ({"status": "closed"}, "status"),
        ({"basis": "policy"}, "basis"),
        (_nested(**{"source.scheme": "iso9001"}), "source.scheme"),
        ({"severity": None}, "severity"),
        (_without("severity"), "severity"),
        ({"kind": "observation"}, "severity"),
        ({"kind": "good_practice", "severity": "minor"}, "severity"),
        ({"child_labour_case": {"confirmed_under_min_age": 1}}, "child_labour_case"),
        (
            {"area": "health_and_safety", "child_labour_case": {"age_unconfirmed": 2}},
            "child_labour_case",
        ),
        (
            {"area": "child_labour", "child_labour_case": {"remediation": "cash"}},
            "child_labour_case.remediation",
        ),
        (
            {"area": "child_labour", "child_labour_case": {"confirmed_under_min_age": -1}},
            "child_labour_case.confirmed_under_min_age",
        ),
        ({"observed_on": days_ago(-2)}, "observed_on"),
        ({"observed_on": "2026-13-01"}, "observed_on"),
        (_nested(**{"cap.due_on": days_ago(31)}), "cap.due_on"),
        (_nested(**{"cap.due_on": days_ago(30)}), "cap.due_on"),
        (_without("cap"), None),
        ({"affected_workers": -1}, "affected_workers"),
        ({"title": ""}, "title"),
        ({"title": "   "}, "title"),
        (_without("title"), "title"),
        (_without("supplier_id"), "supplier_id"),
        ({"supplier_id": "not-a-uuid"}, "supplier_id"),
        ({"supplier_id": str(uuid.uuid4())}, "supplier_id"),
        ({"external_id": "has/slash"}, "external_id"),
    ],
)
async def test_unacceptable_values_are_422(client, make_owner, change, field):
    owner = await make_owner()
    body = finding_body(owner.supplier_id)
    change(body) if callable(change) else body.update(change)
    response = await client.post("/v1/findings", json=body, headers=owner.headers)
    if field is None:  # the control: a finding without a CAP is fine
        assert response.status_code == 201, response.text
        return
    assert response.status_code == 422, response.text
    assert response.headers["content-type"] == PROBLEM_JSON
    problem = response.json()
    assert problem["type"] == "/problems/validation-failed"
    assert field in [e["field"] for e in problem["errors"]]
    assert all(e["message"] for e in problem["errors"])
    assert await owner.list() == []


async def test_a_supplier_you_do_not_link_to_is_refused(client, make_owner, make_tenant):
    owner = await make_owner()
    other = await make_tenant()
    theirs = await new_supplier(client, await other.headers())
    for supplier_id in (theirs["id"], str(uuid.uuid4())):
        response = await client.post(
            "/v1/findings", json=finding_body(supplier_id), headers=owner.headers
        )
        assert response.status_code == 422, response.text
        assert response.json()["errors"] == [
            {
                "field": "supplier_id",
                "message": "is not one of your suppliers; link it with POST /v1/suppliers",
            }
        ]
    # The answer is the same whether the supplier exists or not, and once linked it works.
    link = await client.post(
        "/v1/suppliers", json={"supplier_id": theirs["id"]}, headers=owner.headers
    )
    assert link.status_code == 200
    ok = await client.post("/v1/findings", json=finding_body(theirs["id"]), headers=owner.headers)
    assert ok.status_code == 201, ok.text


async def test_several_problems_are_reported_together(client, make_owner):
    owner = await make_owner()
    body = finding_body(
        owner.supplier_id,
        kind="observation",
        severity="major",
        child_labour_case={"age_unconfirmed": 1},
        observed_on=days_ago(-3),
    )
    response = await client.post("/v1/findings", json=body, headers=owner.headers)
    assert response.status_code == 422
    assert {e["field"] for e in response.json()["errors"]} == {
        "severity",
        "child_labour_case",
        "observed_on",
    }


async def test_malformed_bodies(client, make_owner):
    owner = await make_owner()
    for content, content_type, status in (
        (b'{"kind": ', "application/json", 400),
        (b"[]", "application/json", 400),
        (b"", "application/json", 400),
        (b"kind=observation", "application/x-www-form-urlencoded", 415),
    ):
        response = await client.post(
            "/v1/findings",
            content=content,
            headers={**owner.headers, "content-type": content_type},
        )
        assert response.status_code == status, (content, response.text)
        assert response.headers["content-type"] == PROBLEM_JSON
    assert await owner.list() == []
