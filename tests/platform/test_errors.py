"""Every error is RFC 9457 problem+json with a stable type, and never exposes internals."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
import sqlalchemy.exc

from tests.platform.conftest import WIDGET_CREATED, count_events
from wg_api.platform.errors import to_problem_error

PROBLEM = "application/problem+json"
ONE_MIB = 1024 * 1024


def assert_problem(response, status: int, kind: str) -> Any:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == PROBLEM
    body = response.json()
    assert body["type"] == f"/problems/{kind}"
    assert body["status"] == status
    assert body["title"]
    assert body["detail"]
    return body


async def test_unknown_route_is_a_404_problem(client):
    response = await client.get("/no-such-thing")
    body = assert_problem(response, 404, "not-found")
    assert set(body) == {"type", "title", "status", "detail"}


async def test_problem_types_resolve_to_a_description(client):
    kind = (await client.get("/no-such-thing")).json()["type"]
    response = await client.get(kind)
    assert response.status_code == 200
    assert response.json()["type"] == kind
    assert response.json()["description"]


@pytest.mark.parametrize(
    ("method", "path", "allowed"),
    [("DELETE", "/healthz", {"GET"}), ("PUT", "/v1/me", {"GET"})],
)
async def test_undeclared_method_is_405_with_allow(client, make_tenant, method, path, allowed):
    tenant = await make_tenant()
    response = await client.request(method, path, headers=await tenant.headers())
    assert_problem(response, 405, "method-not-allowed")
    allow = {m.strip() for m in response.headers["allow"].split(",")}
    assert allowed <= allow
    assert method not in allow


async def test_body_over_one_mib_is_413_and_changes_nothing(test_app_client, make_tenant, database):
    tenant = await make_tenant()
    headers = {**await tenant.headers(), "content-type": "application/json"}
    big = b'{"name": "big", "note": "' + b"x" * ONE_MIB + b'"}'
    response = await test_app_client.post("/v1/test/widgets", headers=headers, content=big)
    assert_problem(response, 413, "payload-too-large")
    # The idempotency path reads the body itself; it must enforce the same limit.
    response = await test_app_client.post(
        "/v1/test/widgets", headers={**headers, "Idempotency-Key": "big-body"}, content=big
    )
    assert_problem(response, 413, "payload-too-large")
    assert await count_events(database, tenant.id, WIDGET_CREATED) == 0


async def test_body_just_under_the_limit_is_accepted(test_app_client, make_tenant):
    tenant = await make_tenant()
    headers = {**await tenant.headers(), "content-type": "application/json"}
    padding = ONE_MIB - len(b'{"name": "fits", "note": ""}')
    body = b'{"name": "fits", "note": "' + b"x" * padding + b'"}'
    assert len(body) == ONE_MIB
    response = await test_app_client.post("/v1/test/widgets", headers=headers, content=body)
    assert response.status_code == 201, response.text


@pytest.mark.parametrize("content_type", ["text/plain", "application/x-www-form-urlencoded", None])
async def test_wrong_content_type_is_415(test_app_client, make_tenant, database, content_type):
    tenant = await make_tenant()
    headers = await tenant.headers()
    if content_type:
        headers["content-type"] = content_type
    response = await test_app_client.post(
        "/v1/test/widgets", headers=headers, content=b'{"name": "a"}'
    )
    assert_problem(response, 415, "unsupported-media-type")
    assert await count_events(database, tenant.id, WIDGET_CREATED) == 0


async def test_json_with_charset_is_accepted(test_app_client, make_tenant):
    tenant = await make_tenant()
    headers = {**await tenant.headers(), "content-type": "application/json; charset=utf-8"}
    response = await test_app_client.post(
        "/v1/test/widgets", headers=headers, content=b'{"name": "a"}'
    )
    assert response.status_code == 201, response.text


@pytest.mark.parametrize(
    ("payload", "field", "message"),
    [
        ({"name": "a", "tenant_id": str(uuid.uuid4())}, "tenant_id", "unknown field"),
        ({"name": "a", "quantity": "3"}, "quantity", "Expected `int`, got `str`"),
        ({"name": 7}, "name", "Expected `str`, got `int`"),
        ([{"name": "a"}], "body", "Expected `object`, got `array`"),
    ],
)
async def test_malformed_body_is_400_with_field_errors(
    test_app_client, make_tenant, database, payload, field, message
):
    tenant = await make_tenant()
    response = await test_app_client.post(
        "/v1/test/widgets", headers=await tenant.headers(), json=payload
    )
    body = assert_problem(response, 400, "invalid-request")
    assert len(body["errors"]) == 1
    assert body["errors"][0]["field"] == field
    assert message in body["errors"][0]["message"]
    assert await count_events(database, tenant.id, WIDGET_CREATED) == 0


@pytest.mark.parametrize("content", [b'{"name": ', b"{'name': 'a'}", b"\xff\xfe"])
async def test_invalid_json_is_400(test_app_client, make_tenant, content):
    tenant = await make_tenant()
    headers = {**await tenant.headers(), "content-type": "application/json"}
    response = await test_app_client.post("/v1/test/widgets", headers=headers, content=content)
    body = assert_problem(response, 400, "invalid-request")
    assert body["detail"] == "The request body is not valid JSON."


async def test_missing_body_is_400(test_app_client, make_tenant):
    tenant = await make_tenant()
    headers = {**await tenant.headers(), "content-type": "application/json"}
    response = await test_app_client.post("/v1/test/widgets", headers=headers, content=b"")
    body = assert_problem(response, 400, "invalid-request")
    assert body["errors"] == [{"field": "body", "message": "is required"}]


@pytest.mark.parametrize(
    ("payload", "field", "message"),
    [
        ({"name": "a", "quantity": 1000}, "quantity", "<= 100"),
        ({"name": "a", "quantity": 0}, "quantity", ">= 1"),
        ({"name": ""}, "name", "length >= 1"),
        ({"quantity": 2}, "name", "is required"),
    ],
)
async def test_unacceptable_value_is_422_with_field_errors(
    test_app_client, make_tenant, database, payload, field, message
):
    tenant = await make_tenant()
    response = await test_app_client.post(
        "/v1/test/widgets", headers=await tenant.headers(), json=payload
    )
    body = assert_problem(response, 422, "validation-failed")
    assert body["errors"] == [{"field": field, "message": body["errors"][0]["message"]}]
    assert message in body["errors"][0]["message"]
    assert await count_events(database, tenant.id, WIDGET_CREATED) == 0


async def test_bad_query_parameter_is_400(client, make_tenant):
    tenant = await make_tenant()
    response = await client.get("/v1/tenants?limit=many", headers=await tenant.headers())
    body = assert_problem(response, 400, "invalid-request")
    assert body["errors"][0]["field"] == "limit"


async def test_unhandled_error_is_500_without_internals(test_app_client, make_tenant):
    tenant = await make_tenant()
    response = await test_app_client.get("/v1/test/crash", headers=await tenant.headers())
    body = assert_problem(response, 500, "internal-error")
    assert set(body) == {"type", "title", "status", "detail"}
    for leak in ("ZeroDivisionError", "Traceback", "secret", "settings.py", "line 42"):
        assert leak not in response.text


async def test_failed_write_is_500_and_rolled_back(test_app_client, make_tenant, database):
    tenant = await make_tenant()
    response = await test_app_client.post(
        "/v1/test/failing-widgets", headers=await tenant.headers(), json={"name": "doomed"}
    )
    assert_problem(response, 500, "internal-error")
    assert "hunter2" not in response.text
    assert "RuntimeError" not in response.text
    # The handler recorded an event before failing; the request's transaction rolled it back.
    assert await count_events(database, tenant.id, WIDGET_CREATED) == 0


async def test_missing_token_is_401_problem_with_challenge(client):
    response = await client.get("/v1/me")
    assert_problem(response, 401, "unauthorized")
    assert response.headers["www-authenticate"].startswith("Bearer")


@pytest.mark.parametrize(
    ("sqlstate", "status", "kind"),
    [
        ("40P01", 503, "try-again"),  # deadlock detected
        ("40001", 503, "try-again"),  # serialization failure
        ("55P03", 503, "try-again"),  # lock not available
        ("53200", 503, "try-again"),  # out of shared memory (the lock table full)
        ("23505", 409, "conflict"),  # unique violation: a race a check before the write lost
    ],
)
async def test_a_write_that_meets_a_concurrent_one_says_so_and_changes_nothing(
    test_app_client, make_tenant, database, sqlstate, status, kind
):
    tenant = await make_tenant()
    response = await test_app_client.post(
        f"/v1/test/contended-widgets/{sqlstate}",
        headers=await tenant.headers(),
        json={"name": "contended"},
    )
    body = assert_problem(response, status, kind)
    assert "contended" not in body["detail"]
    if status == 503:
        assert response.headers["retry-after"] == "1"
    assert await count_events(database, tenant.id, WIDGET_CREATED) == 0


def test_no_free_connection_in_time_is_try_again():
    """The pool's timeout (every connection busy) reads to a client as a busy database."""
    error = to_problem_error(sqlalchemy.exc.TimeoutError("QueuePool limit reached"))
    assert (error.status, error.kind, error.headers) == (503, "try-again", {"Retry-After": "1"})
    assert "QueuePool" not in (error.detail or "")
