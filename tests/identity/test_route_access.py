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
from wg_api.identity.auth import access_of, requires


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
    """Handlers under /v1 with no access requirement, or whose guard is missing."""
    bad = []
    for path, handler in v1_handlers(app):
        access = access_of(handler)
        if access is None or not handler.guards:
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
