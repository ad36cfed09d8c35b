"""Identity rules: creating tenants and clients, answering token requests."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from wg_api.identity import repository
from wg_api.identity.scopes import ROLE_SCOPES, SCOPES, TENANT_ROLES, parse_scopes, unknown_scopes
from wg_api.identity.tokens import hash_secret, new_client_id, new_client_secret
from wg_api.platform.errors import FieldError, NotFound, ValidationFailed
from wg_api.platform.validation import is_valid_timezone, slug_error

TENANT_KINDS = ("brand", "facilitator")


async def create_tenant(
    session: AsyncSession, *, slug: str, name: str, kind: str, timezone: str
) -> dict[str, Any]:
    errors: list[FieldError] = []
    if message := slug_error(slug):
        errors.append(FieldError("slug", message))
    if not 1 <= len(name.strip()) <= 200:
        errors.append(FieldError("name", "must be 1 to 200 characters"))
    if kind not in TENANT_KINDS:
        errors.append(FieldError("kind", f"must be one of {', '.join(TENANT_KINDS)}"))
    if not is_valid_timezone(timezone):
        errors.append(FieldError("timezone", "must be an IANA time zone such as Asia/Hong_Kong"))
    if errors:
        raise ValidationFailed("The tenant is not valid.", errors=errors)
    if await repository.tenant_by_slug(session, slug) is not None:
        raise ValidationFailed(
            "The tenant is not valid.", errors=[FieldError("slug", "is already taken")]
        )
    row = await repository.create_tenant(
        session, slug=slug, name=name.strip(), kind=kind, timezone=timezone
    )
    return dict(row._mapping)


@dataclass(frozen=True)
class NewClient:
    id: uuid.UUID
    tenant_id: uuid.UUID
    client_id: str
    client_secret: str
    name: str
    role: str
    scopes: list[str]
    created_at: Any


def default_scopes(role: str) -> list[str]:
    return sorted(ROLE_SCOPES[role])


def check_client_fields(name: str, role: str, scopes: list[str]) -> list[FieldError]:
    errors: list[FieldError] = []
    if not 1 <= len(name.strip()) <= 100:
        errors.append(FieldError("name", "must be 1 to 100 characters"))
    if role not in TENANT_ROLES:
        errors.append(FieldError("role", f"must be one of {', '.join(TENANT_ROLES)}"))
    elif unknown := unknown_scopes(scopes):
        errors.append(FieldError("scopes", f"unknown scopes: {' '.join(unknown)}"))
    elif extra := sorted(set(scopes) - ROLE_SCOPES[role]):
        errors.append(FieldError("scopes", f"a {role} client cannot hold: {' '.join(extra)}"))
    return errors


async def create_client(
    session: AsyncSession,
    *,
    tenant_id: uuid.UUID,
    name: str,
    role: str,
    scopes: list[str] | None,
) -> NewClient:
    chosen = (
        sorted(set(scopes))
        if scopes is not None
        else default_scopes(role)
        if role in TENANT_ROLES
        else []
    )
    if errors := check_client_fields(name, role, chosen):
        raise ValidationFailed("The client is not valid.", errors=errors)
    secret = new_client_secret()
    row = await repository.create_client(
        session,
        tenant_id=tenant_id,
        client_id=new_client_id(),
        name=name.strip(),
        role=role,
        scopes=chosen,
        secret_hash=hash_secret(secret),
    )
    return NewClient(
        id=row.id,
        tenant_id=tenant_id,
        client_id=row.client_id,
        client_secret=secret,
        name=row.name,
        role=row.role,
        scopes=list(row.scopes),
        created_at=row.created_at,
    )


async def tenant_for_cli(session: AsyncSession, slug: str) -> uuid.UUID:
    row = await repository.tenant_by_slug(session, slug)
    if row is None:
        raise NotFound(f"No tenant with slug {slug!r}.")
    tenant_id: uuid.UUID = row.id
    return tenant_id


__all__ = ["SCOPES", "NewClient", "create_client", "create_tenant", "parse_scopes"]
