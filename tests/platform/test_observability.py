"""Liveness, readiness, metrics, request ids, JSON logs and the published OpenAPI document."""

from __future__ import annotations

import json
import logging
import re

from tests.conftest import serve_in_loop
from wg_api.app import create_app
from wg_api.platform.migrate import head_revision
from wg_api.platform.observability import JsonFormatter

REQUEST_ID = "x-request-id"


async def test_healthz(client):
    response = await client.get("/healthz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


async def test_readyz_reports_the_migration_head(client, settings):
    response = await client.get("/readyz")
    assert response.status_code == 200, response.text
    assert response.json() == {
        "status": "ok",
        "database": "ok",
        "migration": head_revision(settings),
    }


async def test_readyz_is_503_when_the_database_is_at_another_revision(settings, database):
    app = create_app(settings, database)
    app.state["migration_head"] = "9999_from_the_future"
    async with serve_in_loop(app) as http:
        response = await http.get("/readyz")
    assert response.status_code == 503
    assert response.headers["content-type"] == "application/problem+json"
    body = response.json()
    assert body["type"] == "/problems/service-unavailable"
    assert "9999_from_the_future" in body["detail"]


def requests_total(metrics: str, route: str, status: str) -> float:
    pattern = re.compile(
        r'^wg_http_requests_total\{method="GET",route="'
        + re.escape(route)
        + r'",status="'
        + status
        + r'"\} (?P<value>\S+)$',
        re.MULTILINE,
    )
    match = pattern.search(metrics)
    return float(match["value"]) if match else 0.0


async def test_metrics_count_requests_in_prometheus_text(client):
    before = requests_total((await client.get("/metrics")).text, "/healthz", "200")
    for _ in range(3):
        await client.get("/healthz")
    response = await client.get("/metrics")
    assert response.status_code == 200
    content_type = response.headers["content-type"]
    assert content_type.startswith("text/plain")
    assert content_type.count("charset") == 1
    assert "# TYPE wg_http_requests_total counter" in response.text
    assert "# TYPE wg_http_request_duration_seconds histogram" in response.text
    assert requests_total(response.text, "/healthz", "200") == before + 3


async def test_metrics_label_routes_by_template_not_by_path(client, make_tenant):
    tenant = await make_tenant()
    await client.get("/v1/tenants", params={"q": "x"}, headers=await tenant.headers())
    await client.get("/no-such-page-1234")
    metrics = (await client.get("/metrics")).text
    assert requests_total(metrics, "/v1/tenants", "200") >= 1
    assert requests_total(metrics, "unmatched", "404") >= 1
    assert "no-such-page-1234" not in metrics


async def test_a_valid_request_id_is_echoed(client):
    response = await client.get("/healthz", headers={REQUEST_ID: "req-42.abc:DEF_9"})
    assert response.headers[REQUEST_ID] == "req-42.abc:DEF_9"


async def test_a_request_id_is_generated_when_absent_or_invalid(client):
    generated = [
        (await client.get("/healthz")).headers[REQUEST_ID],
        (await client.get("/healthz", headers={REQUEST_ID: "has spaces"})).headers[REQUEST_ID],
        (await client.get("/healthz", headers={REQUEST_ID: "x" * 129})).headers[REQUEST_ID],
        (await client.get("/healthz", headers={REQUEST_ID: "<script>"})).headers[REQUEST_ID],
    ]
    for request_id in generated:
        assert re.fullmatch(r"[0-9a-f]{32}", request_id), request_id
    assert len(set(generated)) == len(generated)


async def test_request_id_on_errors(client):
    not_found = await client.get("/nowhere", headers={REQUEST_ID: "trace-404"})
    assert not_found.status_code == 404
    assert not_found.headers[REQUEST_ID] == "trace-404"
    unauthorized = await client.get("/v1/me")
    assert unauthorized.status_code == 401
    assert re.fullmatch(r"[0-9a-f]{32}", unauthorized.headers[REQUEST_ID])


async def test_access_log_is_one_json_line_with_the_request_id(client, make_tenant, caplog):
    tenant = await make_tenant()
    headers = {**await tenant.headers(), REQUEST_ID: "log-line-1"}
    with caplog.at_level(logging.INFO, logger="wg_api.access"):
        response = await client.get("/v1/me", headers=headers)
    assert response.status_code == 200
    records = [r for r in caplog.records if getattr(r, "request_id", None) == "log-line-1"]
    assert len(records) == 1
    entry = json.loads(JsonFormatter().format(records[0]))
    assert entry["level"] == "info"
    assert entry["request_id"] == "log-line-1"
    assert entry["method"] == "GET"
    assert entry["path"] == "/v1/me"
    assert entry["status"] == 200
    assert entry["tenant_id"] == str(tenant.id)
    assert entry["time"].endswith("Z")
    assert "authorization" not in json.dumps(entry).lower()


async def test_docs_ui_is_served_at_schema(client):
    response = await client.get("/schema")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")
    assert "<html" in response.text.lower()
    assert "/schema/openapi.json" in response.text


async def test_openapi_document_is_3_1_with_bearer_auth(client):
    response = await client.get("/schema/openapi.json")
    assert response.status_code == 200
    document = response.json()
    assert document["openapi"].startswith("3.1")
    scheme = document["components"]["securitySchemes"]["bearerAuth"]
    assert scheme["flows"]["clientCredentials"]["tokenUrl"] == "/oauth/token"
    assert "events:read" in scheme["flows"]["clientCredentials"]["scopes"]
    assert {"bearerAuth": []} in document["security"]
    assert "/v1/me" in document["paths"]
    assert "/v1/tenants" in document["paths"]


async def test_a_served_app_freezes_what_start_up_made(settings, database):
    """`wg-api serve`'s processes hide start-up's objects from the collector (full collections
    walked them all: 85-110 ms pauses under load); apps made elsewhere (tests) do not."""
    import gc

    from wg_api.app import asgi_app

    gc.unfreeze()
    try:
        async with serve_in_loop(asgi_app(settings, database)) as http:
            assert (await http.get("/healthz")).status_code == 200
            assert gc.get_freeze_count() == 0
        async with serve_in_loop(asgi_app(settings, database, freeze_after_startup=True)) as http:
            assert (await http.get("/healthz")).status_code == 200
            assert gc.get_freeze_count() > 50_000
    finally:
        gc.unfreeze()
