"""The scopes and roles of api.md, in one place."""

from __future__ import annotations

from typing import Literal

SCOPES: tuple[str, ...] = (
    "findings:read",
    "findings:write",
    "sharing:write",
    "working-groups:read",
    "working-groups:write",
    "meetings:read",
    "meetings:write",
    "funding:read",
    "funding:write",
    "events:read",
    "webhooks:manage",
    "admin",
)

TenantRole = Literal["admin", "editor", "viewer"]
TENANT_ROLES: tuple[str, ...] = ("admin", "editor", "viewer")
ROLE_RANK = {"viewer": 0, "editor": 1, "admin": 2}

# What a role may hold at most; a token's effective scopes are its own intersected with these.
ROLE_SCOPES: dict[str, frozenset[str]] = {
    "admin": frozenset(SCOPES),
    "editor": frozenset(s for s in SCOPES if s not in {"admin", "webhooks:manage"}),
    "viewer": frozenset(s for s in SCOPES if s.endswith(":read")),
}


def parse_scopes(raw: str | None) -> list[str]:
    return sorted({s for s in (raw or "").split() if s})


def unknown_scopes(scopes: list[str]) -> list[str]:
    return [s for s in scopes if s not in SCOPES]
