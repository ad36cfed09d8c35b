"""What each /v1 route requires of its caller (a scope, a role), and the check of it."""

from __future__ import annotations

from typing import Any

from litestar.handlers.base import BaseRouteHandler

from wg_api.identity.principal import Principal
from wg_api.identity.scopes import ROLE_RANK, SCOPES
from wg_api.platform.errors import Forbidden, Unauthorized


def requires(scope: str | None, *, role: str | None = None) -> dict[str, Any]:
    """Route decorator arguments: the access a route needs, and its OpenAPI security entry.

    `scope=None` means any authenticated caller (e.g. GET /v1/me). A scope or role that does not
    exist fails at import time, so a typo cannot make a route unreachable or open. The /v1
    router checks it for every request (`check_access`, after the tenant's rate limit, before
    anything else of the route runs); `tests/identity/test_route_access.py` finds any /v1 route
    that declares nothing.
    """
    if scope is not None and scope not in SCOPES:
        raise ValueError(f"unknown scope {scope!r}")
    if role is not None and role not in ROLE_RANK:
        raise ValueError(f"unknown role {role!r}")
    return {
        "security": [{"bearerAuth": [scope] if scope else []}],
        "opt": {"access": {"scope": scope, "role": role}},
    }


def check_access(principal: object, handler: BaseRouteHandler | None) -> None:
    """403 unless the principal has what the route requires (`requires`); 401 without one.

    Not a Litestar guard: Litestar hands each guard a copy of the route handler, about 40 µs of
    CPU on every request (bench/README.md), for a check of two values."""
    if not isinstance(principal, Principal):
        raise Unauthorized()
    access = access_of(handler) if handler is not None else None
    if access is None:
        return
    scope, role = access["scope"], access["role"]
    if scope is not None and not principal.has_scope(scope):
        raise Forbidden(f"This operation needs the `{scope}` scope.")
    if role is not None and ROLE_RANK.get(principal.role, -1) < ROLE_RANK[role]:
        raise Forbidden(f"This operation needs the `{role}` role in your tenant.")


def access_of(handler: BaseRouteHandler) -> dict[str, Any] | None:
    access: dict[str, Any] | None = handler.opt.get("access")
    return access
