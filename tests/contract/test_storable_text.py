"""Text PostgreSQL cannot store (NUL, lone surrogates) is a 400 `invalid-request` naming where it
arrived, wherever it arrives, and changes nothing. Found by schemathesis: these answered 500."""

from __future__ import annotations

import base64
from typing import Any

import httpx
import pytest

from tests.findings.conftest import finding_body
from tests.suppliers.conftest import new_supplier

PROBLEM_JSON = "application/problem+json"


def assert_refused(response: httpx.Response, field: str) -> None:
    assert response.status_code == 400, response.text
    assert response.headers["content-type"] == PROBLEM_JSON
    problem = response.json()
    assert problem["type"] == "/problems/invalid-request"
    assert [e["field"] for e in problem["errors"]] == [field], problem


@pytest.fixture
async def owner(client: httpx.AsyncClient, make_tenant: Any) -> tuple[dict[str, str], str]:
    tenant = await make_tenant()
    headers = await tenant.headers()
    supplier = await new_supplier(client, headers)
    return headers, supplier["id"]


async def findings_of(client: httpx.AsyncClient, headers: dict[str, str]) -> list[Any]:
    response = await client.get("/v1/findings", headers=headers)
    assert response.status_code == 200, response.text
    items: list[Any] = response.json()["items"]
    return items


@pytest.mark.parametrize("path", ["/v1/tenants", "/v1/supplier-registry", "/v1/suppliers"])
async def test_nul_in_a_query_parameter(client, owner, path):
    headers, _ = owner
    # Raw, as schemathesis sent it: httpx would re-encode a `params` value.
    response = await client.get(f"{path}?q=a%00b", headers=headers)
    assert_refused(response, "q")


async def test_nul_in_a_parameter_name_and_in_unauthenticated_requests(client):
    assert_refused(await client.get("/v1/tenants?a%00=1"), "query")
    assert_refused(await client.get("/problems/not%00found"), "kind")


async def test_nul_in_an_external_id_changes_nothing(client, owner):
    headers, supplier_id = owner
    body = finding_body(supplier_id)
    response = await client.put("/v1/findings/by-external-id/ext%00one", json=body, headers=headers)
    assert_refused(response, "external_id")
    assert await findings_of(client, headers) == []


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"title": "Overtime\x00above the limit"}, "title"),
        ({"source": {"scheme": "amfori_bsci", "reference": "BSCI\x00"}}, "source.reference"),
        ({"external_id": "\x00"}, "external_id"),
    ],
)
async def test_nul_in_a_body_text_changes_nothing(client, owner, overrides, field):
    headers, supplier_id = owner
    response = await client.post(
        "/v1/findings", json=finding_body(supplier_id, **overrides), headers=headers
    )
    assert_refused(response, field)
    assert await findings_of(client, headers) == []


async def test_nul_in_a_nested_list_is_named_by_its_position(client, owner):
    headers, _ = owner
    response = await client.patch(
        "/v1/tenant", json={"aliases": ["Kestrel", "Kes\x00trel"]}, headers=headers
    )
    assert_refused(response, "aliases[1]")


async def test_an_escaped_backslash_u0000_is_ordinary_text(client, owner):
    headers, supplier_id = owner
    body = finding_body(supplier_id, title="A literal \\u0000 in a title")
    response = await client.post("/v1/findings", json=body, headers=headers)
    assert response.status_code == 201, response.text
    assert response.json()["title"] == "A literal \\u0000 in a title"


@pytest.mark.parametrize("header", ["Idempotency-Key", "If-Match"])
async def test_nul_in_a_header_used_as_a_value(client, owner, header):
    headers, supplier_id = owner
    response = await client.post(
        "/v1/findings",
        json=finding_body(supplier_id),
        headers={**headers, header: "key\x00one"},
    )
    assert_refused(response, header.lower())
    assert await findings_of(client, headers) == []


async def test_nul_in_token_request_credentials(client):
    form = {"grant_type": "client_credentials", "client_id": "a\x00b", "client_secret": "x"}
    assert_refused(await client.post("/oauth/token", data=form), "client_id")
    files = {"client_id": (None, "a\x00b"), "grant_type": (None, "client_credentials")}
    assert_refused(await client.post("/oauth/token", files=files), "body")
    basic = base64.b64encode(b"a%00b:secret").decode()
    response = await client.post(
        "/oauth/token",
        data={"grant_type": "client_credentials"},
        headers={"Authorization": f"Basic {basic}"},
    )
    assert_refused(response, "authorization")
