"""Deny by default: every route under /v1 declares who may call it, and refuses everyone else."""

from __future__ import annotations

import re
import uuid
from typing import Any

import pytest
from litestar import get
from litestar.handlers import HTTPRouteHandler
from litestar.routes import HTTPRoute

from tests.identity.conftest import assert_unauthorized
from wg_api.app import create_app
from wg_api.identity.access import access_of, requires


def v1_handlers(app: Any) -> list[tuple[str, HTTPRouteHandler]]:
    """(path, handler) for every handler the code declares under /v1.

    Litestar's own generated OPTIONS handlers are skipped: they answer `Allow` and nothing else.
    """
    found = []
    for route in app.routes:
        if not isinstance(route, HTTPRoute) or not route.path.startswith("/v1"):
            continue
        for handler in route.route_handlers:
            if handler.fn.__module__.startswith("litestar."):
                continue
            found.append((route.path, handler))
    return found


def undeclared(app: Any) -> list[str]:
    """Handlers under /v1 with no access requirement."""
    bad = []
    for path, handler in v1_handlers(app):
        access = access_of(handler)
        if access is None:
            bad.append(f"{sorted(handler.http_methods)} {path} ({handler.handler_name})")
    return bad


async def test_every_v1_handler_declares_its_access(settings):
    app = create_app(settings)
    assert len(v1_handlers(app)) >= 10
    assert undeclared(app) == []


async def test_the_check_catches_a_handler_without_requirements(settings):
    @get("/forgotten", sync_to_thread=False)
    def forgotten() -> str:
        return "anyone?"

    @get("/declared", sync_to_thread=False, **requires("findings:read"))
    def declared() -> str:
        return "members only"

    app = create_app(settings, extra_v1_handlers=[forgotten, declared])
    assert undeclared(app) == ["['GET'] /v1/forgotten (forgotten)"]


async def test_openapi_declares_each_operations_scope(settings):
    app = create_app(settings)
    paths = app.openapi_schema.to_schema()["paths"]
    for path, handler in v1_handlers(app):
        access = access_of(handler)
        assert access is not None
        openapi_path = re.sub(r"\{(\w+):\w+\}", r"{\1}", path)
        for method in handler.http_methods:
            operation = paths[openapi_path][method.lower()]
            scopes = [access["scope"]] if access["scope"] else []
            assert operation["security"] == [{"bearerAuth": scopes}], (method, path)


def test_a_misspelt_scope_or_role_fails_at_import_time() -> None:
    with pytest.raises(ValueError, match="unknown scope"):
        requires("finding:read")
    with pytest.raises(ValueError, match="unknown role"):
        requires("admin", role="administrator")


def concrete(path: str) -> str:
    return re.sub(r"\{\w+:(\w+)\}", lambda m: str(uuid.uuid4()) if m[1] == "uuid" else "x", path)


async def test_every_v1_route_refuses_a_caller_without_a_token(client, settings):
    app = create_app(settings)
    for path, handler in v1_handlers(app):
        for method in handler.http_methods:
            response = await client.request(method, concrete(path), json={})
            assert_unauthorized(response)


async def test_a_missing_scope_or_role_is_refused_before_anything_runs(client, make_tenant):
    """403 from the access check: a problem, counted against the tenant's rate limit (its
    headers come with it), and nothing of the route runs (no finding is written)."""
    reader = await make_tenant(scopes=["findings:read"])
    headers = await reader.headers()
    first = await client.get("/v1/findings", headers=headers)
    assert first.status_code == 200
    body = {
        "supplier_id": str(uuid.uuid4()),
        "kind": "observation",
        "area": "child_labour",
        "basis": "audit",
        "title": "Never written",
        "observed_on": "2024-01-01",
    }
    refused = await client.post("/v1/findings", json=body, headers=headers)
    assert refused.status_code == 403
    assert refused.headers["content-type"] == "application/problem+json"
    problem = refused.json()
    assert problem["status"] == 403
    assert "findings:write" in problem["detail"]
    assert int(refused.headers["ratelimit-remaining"]) < int(first.headers["ratelimit-remaining"])
    listed = await client.get("/v1/findings", headers=headers)
    assert listed.json()["items"] == []

    viewer = await make_tenant(role="viewer")
    refused = await client.post(
        "/v1/api-clients", json={"name": "x"}, headers=await viewer.headers()
    )
    assert refused.status_code == 403
    assert "admin" in refused.json()["detail"]


def test_the_access_check_on_its_own():
    """No principal: 401; the scope, then the role; a route that declares nothing is left to
    `undeclared` above."""
    from types import SimpleNamespace

    from wg_api.identity.access import check_access
    from wg_api.identity.principal import Principal
    from wg_api.platform.errors import Forbidden, Unauthorized

    handler: Any = SimpleNamespace(opt=requires("webhooks:manage", role="admin")["opt"])

    def principal(role: str, *scopes: str) -> Principal:
        return Principal(
            tenant_id=uuid.uuid4(),
            type="client",
            id=uuid.uuid4(),
            name="c",
            role=role,
            scopes=frozenset(scopes),
        )

    with pytest.raises(Unauthorized):
        check_access(None, handler)
    with pytest.raises(Forbidden, match="`webhooks:manage` scope"):
        check_access(principal("admin", "findings:read"), handler)
    with pytest.raises(Forbidden, match="`admin` role"):
        check_access(principal("editor", "webhooks:manage"), handler)
    check_access(principal("admin", "webhooks:manage"), handler)
    check_access(principal("viewer"), SimpleNamespace(opt={}))  # type: ignore[arg-type]
