"""Regression tests for what schemathesis found (`make fuzz`), each through HTTP."""

from __future__ import annotations

import re
from typing import Any

import httpx
import pytest

from tests.contract.test_storable_text import PROBLEM_JSON, assert_refused
from tests.findings.conftest import finding_body
from tests.funding.conftest import create_initiative, fund, new_actor  # noqa: F401 (fixtures)
from tests.suppliers.conftest import new_supplier


@pytest.fixture
async def brand(client: httpx.AsyncClient, make_tenant: Any) -> dict[str, str]:
    tenant = await make_tenant()
    headers: dict[str, str] = await tenant.headers()
    return headers


async def test_an_integral_number_is_an_integer(client, brand):
    """JSON has numbers: `3.0` is the integer 3 (as JSON Schema says); `3.5` is not."""
    body = {"name": "Integral numbers", "anonymity_threshold": 3.0}
    response = await client.post("/v1/working-groups", json=body, headers=brand)
    assert response.status_code == 201, response.text
    assert response.json()["anonymity_threshold"] == 3
    body = {"name": "Fractions", "anonymity_threshold": 3.5}
    response = await client.post("/v1/working-groups", json=body, headers=brand)
    assert_refused(response, "anonymity_threshold")


async def test_an_integral_number_in_a_nested_body(client, brand):
    supplier = await new_supplier(client, brand)
    body = finding_body(supplier["id"], affected_workers=40.0)
    response = await client.post("/v1/findings", json=body, headers=brand)
    assert response.status_code == 201, response.text
    assert response.json()["affected_workers"] == 40


async def test_an_unknown_field_with_an_empty_name_is_a_400(client, brand):
    response = await client.post(
        "/v1/working-groups", json={"name": "Empty key", "": 1}, headers=brand
    )
    assert response.status_code == 400, response.text
    assert response.json()["errors"][0]["message"] == "unknown field"


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ("updated_since=0.5", "updated_since"),
        ("updated_since=null", "updated_since"),
        ("observed_from=0.5", "observed_from"),
        ("status=null", "status"),
        ("supplier_id=null", "supplier_id"),
    ],
)
async def test_a_query_value_the_document_refuses_is_a_422(client, brand, query, field):
    """Litestar's lax conversion read `0.5` as a timestamp and `null` as no filter; like a
    date that is not one (`yesterday`), they are values outside the parameter's vocabulary."""
    response = await client.get(f"/v1/findings?{query}", headers=brand)
    assert response.status_code == 422, response.text
    assert response.headers["content-type"] == PROBLEM_JSON
    assert [e["field"] for e in response.json()["errors"]] == [field]


async def test_free_text_null_is_a_word(client, brand):
    response = await client.get("/v1/supplier-registry?q=null", headers=brand)
    assert response.status_code == 200, response.text


async def test_a_real_timestamp_filter_still_works(client, brand):
    response = await client.get(
        "/v1/findings", params={"updated_since": "2026-01-01T00:00:00Z"}, headers=brand
    )
    assert response.status_code == 200, response.text


async def test_event_types_declare_their_length(client, brand):
    """`types` allows 1000 characters, but a type is at most 100 (400): the document says so."""
    document = (await client.get("/schema/openapi.json")).json()
    (types,) = [
        p for p in document["paths"]["/v1/events"]["get"]["parameters"] if p["name"] == "types"
    ]
    pattern = re.compile(types["schema"]["pattern"])
    assert pattern.match("finding.created," + "x" * 100)
    assert not pattern.match("finding.created," + "x" * 101)
    response = await client.get("/v1/events", params={"types": "x" * 101}, headers=brand)
    assert response.status_code == 400, response.text


@pytest.mark.parametrize(
    ("path", "methods"),
    [
        ("/v1/findings", {"GET", "POST"}),
        ("/v1/findings/00000000-0000-4000-8000-000000000000", {"GET", "PATCH", "DELETE"}),
        ("/v1/tenant", {"GET", "PATCH"}),
        ("/v1/api-clients/00000000-0000-4000-8000-000000000000", {"GET", "DELETE"}),
    ],
)
async def test_options_allows_every_method_of_the_path(client, brand, path, methods):
    response = await client.options(path, headers=brand)
    assert response.status_code == 204
    allowed = {m.strip() for m in response.headers["allow"].split(",")}
    assert allowed == methods | {"OPTIONS"}


async def test_the_csv_statement_names_its_charset_once(client, fund):  # noqa: F811
    """It answered `text/csv; charset=utf-8; charset=utf-8`, a media type no document declares."""
    initiative = await create_initiative(client, fund)
    path = f"/v1/initiatives/{initiative['id']}/statement"
    response = await client.get(f"{path}?format=csv", headers=fund.facilitator.headers)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "text/csv; charset=utf-8"
    document = (await client.get("/schema/openapi.json")).json()
    answer = document["paths"]["/v1/initiatives/{initiative_id}/statement"]["get"]["responses"]
    assert set(answer["200"]["content"]) == {"application/json", "text/csv"}


async def test_an_empty_cursor_is_the_first_page(client, brand):
    first = await client.get("/v1/tenants?limit=1", headers=brand)
    empty = await client.get("/v1/tenants?limit=1&cursor=", headers=brand)
    assert empty.status_code == 200, empty.text
    assert [t["id"] for t in empty.json()["items"]] == [t["id"] for t in first.json()["items"]]
