"""Every identity query."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from wg_api.identity.models import api_clients, tenants, users
from wg_api.identity.tokens import ClientRecord


async def client_for_token(session: AsyncSession, client_id: str) -> ClientRecord | None:
    row = (
        await session.execute(
            sa.text("SELECT * FROM api_client_for_token(:client_id)"), {"client_id": client_id}
        )
    ).one_or_none()
    if row is None:
        return None
    return ClientRecord(
        id=row.id,
        tenant_id=row.tenant_id,
        client_id=client_id,
        name=row.name,
        role=row.role,
        scopes=list(row.scopes),
        secret_hash=bytes(row.secret_hash),
        revoked=row.revoked_at is not None,
    )


async def client_is_active(session: AsyncSession, client_uuid: uuid.UUID) -> bool:
    revoked_at = await session.execute(
        sa.select(api_clients.c.revoked_at).where(api_clients.c.id == client_uuid)
    )
    row = revoked_at.one_or_none()
    return row is not None and row.revoked_at is None


@dataclass(frozen=True)
class ProviderRecord:
    id: uuid.UUID
    tenant_id: uuid.UUID
    issuer: str
    audience: str
    jwks_uri: str | None
    role_claim: str | None
    default_role: str


async def provider_for_issuer(session: AsyncSession, issuer: str) -> ProviderRecord | None:
    row = (
        await session.execute(
            sa.text("SELECT * FROM identity_provider_for_issuer(:issuer)"), {"issuer": issuer}
        )
    ).one_or_none()
    if row is None:
        return None
    return ProviderRecord(
        id=row.id,
        tenant_id=row.tenant_id,
        issuer=row.issuer,
        audience=row.audience,
        jwks_uri=row.jwks_uri,
        role_claim=row.role_claim,
        default_role=row.default_role,
    )


async def record_user_seen(
    session: AsyncSession,
    *,
    tenant_id: uuid.UUID,
    provider_id: uuid.UUID,
    subject: str,
    name: str,
    email: str | None,
    role: str,
) -> uuid.UUID:
    """Create the person on first sight, or refresh name, role and last-seen time."""
    statement = insert(users).values(
        tenant_id=tenant_id,
        identity_provider_id=provider_id,
        subject=subject,
        name=name,
        email=email,
        role=role,
    )
    upsert = statement.on_conflict_do_update(
        index_elements=[users.c.identity_provider_id, users.c.subject],
        set_={
            "name": statement.excluded.name,
            "email": statement.excluded.email,
            "role": statement.excluded.role,
            "last_seen_at": sa.func.now(),
        },
    ).returning(users.c.id)
    user_id: uuid.UUID = (await session.execute(upsert)).scalar_one()
    return user_id


async def tenant_by_slug(session: AsyncSession, slug: str) -> sa.Row[Any] | None:
    return (await session.execute(sa.select(tenants).where(tenants.c.slug == slug))).one_or_none()


async def create_tenant(
    session: AsyncSession, *, slug: str, name: str, kind: str, timezone: str
) -> sa.Row[Any]:
    statement = (
        sa.insert(tenants)
        .values(slug=slug, name=name, kind=kind, timezone=timezone)
        .returning(tenants)
    )
    row: sa.Row[Any] = (await session.execute(statement)).one()
    return row


async def create_client(
    session: AsyncSession,
    *,
    tenant_id: uuid.UUID,
    client_id: str,
    name: str,
    role: str,
    scopes: list[str],
    secret_hash: bytes,
) -> sa.Row[Any]:
    row: sa.Row[Any] = (
        await session.execute(
            sa.insert(api_clients)
            .values(
                tenant_id=tenant_id,
                client_id=client_id,
                name=name,
                role=role,
                scopes=scopes,
                secret_hash=secret_hash,
            )
            .returning(api_clients)
        )
    ).one()
    return row
