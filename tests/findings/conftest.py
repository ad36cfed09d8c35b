"""Helpers for the findings tests: a tenant with a supplier, and a valid finding to start from."""

from __future__ import annotations

import dataclasses
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

# The sharing fixtures, for the import test that watches a share follow its finding.
from tests.sharing.conftest import make_group, new_brand  # noqa: F401
from tests.suppliers.conftest import new_supplier


def days_ago(days: int) -> str:
    return (datetime.now(UTC).date() - timedelta(days=days)).isoformat()


def ts(value: str) -> datetime:
    """An RFC 3339 timestamp as the API renders it (UTC, `Z`)."""
    assert value.endswith("Z"), value
    return datetime.fromisoformat(value)


def finding_body(supplier_id: str, **overrides: Any) -> dict[str, Any]:
    """A valid non-compliance finding about working hours, observed 30 days ago."""
    body: dict[str, Any] = {
        "supplier_id": supplier_id,
        "kind": "non_compliance",
        "area": "working_hours",
        "severity": "major",
        "basis": "legal",
        "title": "Overtime above the legal limit in peak season",
        "description": "Sewing line workers averaged 72 hours a week in October.",
        "observed_on": days_ago(30),
        "source": {"scheme": "amfori_bsci", "reference": "BSCI-2026-0117"},
        "status": "open",
        "affected_workers": 40,
        "cap": {
            "root_cause": "Order peaks without capacity planning",
            "planned_actions": "Production planning with buyers; overtime cap of 60 h",
            "due_on": days_ago(-60),
            "contact": "Compliance manager",
        },
    }
    body.update(overrides)
    return body


@dataclasses.dataclass
class Owner:
    """A brand with one supplier, ready to record findings about it."""

    tenant: Any
    headers: dict[str, str]
    supplier_id: str
    http: httpx.AsyncClient

    async def create(self, **overrides: Any) -> dict[str, Any]:
        body = finding_body(overrides.pop("supplier_id", self.supplier_id), **overrides)
        response = await self.http.post("/v1/findings", json=body, headers=self.headers)
        assert response.status_code == 201, response.text
        finding: dict[str, Any] = response.json()
        return finding

    async def list(self, **params: Any) -> list[dict[str, Any]]:
        response = await self.http.get("/v1/findings", params=params, headers=self.headers)
        assert response.status_code == 200, response.text
        items: list[dict[str, Any]] = response.json()["items"]
        return items


@pytest.fixture
async def make_owner(client: httpx.AsyncClient, make_tenant: Any) -> Any:
    async def make(**tenant_kwargs: Any) -> Owner:
        tenant = await make_tenant(**tenant_kwargs)
        headers = await tenant.headers()
        supplier = await new_supplier(client, headers)
        return Owner(tenant=tenant, headers=headers, supplier_id=supplier["id"], http=client)

    return make


def random_finding_path() -> str:
    return f"/v1/findings/{uuid.uuid4()}"
