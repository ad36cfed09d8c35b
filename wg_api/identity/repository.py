"""Every identity query."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncConnection

from wg_api.identity.models import (
    api_clients,
    audit_log,
    identity_providers,
    tenant_aliases,
    tenants,
    users,
)
from wg_api.identity.tokens import ClientRecord
from wg_api.platform.database import driver_fetch
from wg_api.platform.models import Record


async def client_for_token(session: AsyncConnection, client_id: str) -> ClientRecord | None:
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


async def active_client_name(session: AsyncConnection, client_uuid: uuid.UUID) -> str | None:
    """The client's name while it is not revoked; None when revoked or not found."""
    name: str | None = await session.scalar(
        sa.select(api_clients.c.name).where(
            api_clients.c.id == client_uuid, api_clients.c.revoked_at.is_(None)
        )
    )
    return name


@dataclass(frozen=True)
class ProviderRecord:
    id: uuid.UUID
    tenant_id: uuid.UUID
    issuer: str
    audience: str
    jwks_uri: str | None
    role_claim: str | None
    default_role: str


async def provider_for_issuer(session: AsyncConnection, issuer: str) -> ProviderRecord | None:
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
    session: AsyncConnection,
    *,
    tenant_id: uuid.UUID,
    provider_id: uuid.UUID,
    issuer: str,
    subject: str,
    name: str,
    email: str | None,
    role: str,
) -> tuple[uuid.UUID, str | None]:
    """Create the person on first sight, or refresh name, role and last-seen time.

    Answers the user's id and the role it had before (None for a new person).
    """
    statement = insert(users).values(
        tenant_id=tenant_id,
        identity_provider_id=provider_id,
        issuer=issuer,
        subject=subject,
        name=name,
        email=email,
        role=role,
    )
    # Subqueries in RETURNING see the table as it was before this statement.
    previous_role = (
        sa.select(users.c.role)
        .where(users.c.tenant_id == tenant_id, users.c.issuer == issuer, users.c.subject == subject)
        .scalar_subquery()
    )
    upsert = statement.on_conflict_do_update(
        index_elements=[users.c.tenant_id, users.c.issuer, users.c.subject],
        set_={
            "identity_provider_id": statement.excluded.identity_provider_id,
            "name": statement.excluded.name,
            "email": statement.excluded.email,
            "role": statement.excluded.role,
            "last_seen_at": sa.func.now(),
        },
    ).returning(users.c.id, previous_role.label("previous_role"))
    row = (await session.execute(upsert)).one()
    return row.id, row.previous_role


async def tenant_by_slug(session: AsyncConnection, slug: str) -> Record | None:
    return (await session.execute(sa.select(tenants).where(tenants.c.slug == slug))).one_or_none()


# Every /v1/me reads this: straight to the driver, with no statement to build or compile.
_TENANTS_BY_ID = "SELECT id, slug, name, kind FROM tenants WHERE id = ANY($1::uuid[])"


async def tenants_by_id(session: AsyncConnection, ids: list[uuid.UUID]) -> list[Any]:
    """The tenants' directory rows (asyncpg records: `row["slug"]`)."""
    return await driver_fetch(session, _TENANTS_BY_ID, ids)


async def tenant_directory(
    session: AsyncConnection, q: str | None, after_slug: str | None, limit: int
) -> list[Record]:
    """Up to `limit` directory entries ordered by slug, after `after_slug`, matching `q` (part of a
    name, any case, or of a slug; LIKE's wildcards in `q` are literal)."""
    statement = sa.select(tenants.c.id, tenants.c.slug, tenants.c.name, tenants.c.kind)
    if q:
        pattern = (
            "%" + q.lower().replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
        )
        statement = statement.where(
            sa.or_(sa.func.lower(tenants.c.name).like(pattern), tenants.c.slug.like(pattern))
        )
    if after_slug is not None:
        statement = statement.where(tenants.c.slug > after_slug)
    return list((await session.execute(statement.order_by(tenants.c.slug).limit(limit))).all())


async def working_times(session: AsyncConnection, ids: list[uuid.UUID]) -> list[Record]:
    """Directory entries with zone, country and working hours (the `tenants` row is public)."""
    statement = sa.select(
        tenants.c.id,
        tenants.c.slug,
        tenants.c.name,
        tenants.c.timezone,
        tenants.c.country,
        tenants.c.working_hours,
    ).where(tenants.c.id == sa.func.any(sa.cast(ids, sa.ARRAY(sa.Uuid))))
    return list((await session.execute(statement)).all())


async def create_tenant(
    session: AsyncConnection,
    *,
    slug: str,
    name: str,
    kind: str,
    timezone: str,
    country: str | None,
    aliases: list[str],
) -> Record:
    """Through the owner's function (migrations 0008, 0011): no role but the owner may insert a
    tenant or its first aliases, and only the system role may call it."""
    row: Record = (
        await session.execute(
            sa.text(
                "SELECT * FROM create_tenant(:slug, :name, :kind, :timezone, :country, "
                "CAST(:aliases AS text[]))"
            ),
            {
                "slug": slug,
                "name": name,
                "kind": kind,
                "timezone": timezone,
                "country": country,
                "aliases": aliases,
            },
        )
    ).one()
    return row


async def tenant_by_id(
    session: AsyncConnection, tenant_id: uuid.UUID, *, for_update: bool = False
) -> Record | None:
    statement = sa.select(tenants).where(tenants.c.id == tenant_id)
    if for_update:
        statement = statement.with_for_update()
    return (await session.execute(statement)).one_or_none()


async def update_tenant(
    session: AsyncConnection, tenant_id: uuid.UUID, values: dict[str, Any]
) -> None:
    """Only `timezone`, `country` and `working_hours`: the app role may change nothing else."""
    await session.execute(sa.update(tenants).where(tenants.c.id == tenant_id).values(**values))


async def aliases_of(session: AsyncConnection, tenant_id: uuid.UUID) -> list[str]:
    rows = await session.scalars(
        sa.select(tenant_aliases.c.alias)
        .where(tenant_aliases.c.tenant_id == tenant_id)
        .order_by(tenant_aliases.c.position)
    )
    return list(rows)


async def replace_aliases(
    session: AsyncConnection, tenant_id: uuid.UUID, aliases: list[str]
) -> None:
    await session.execute(sa.delete(tenant_aliases).where(tenant_aliases.c.tenant_id == tenant_id))
    if aliases:
        await session.execute(
            sa.insert(tenant_aliases),
            [
                {"tenant_id": tenant_id, "position": position, "alias": alias}
                for position, alias in enumerate(aliases)
            ],
        )


async def names_taken(session: AsyncConnection, terms: list[str]) -> set[str]:
    """The terms that are another tenant's name, slug or alias (the caller's own are not)."""
    if not terms:
        return set()
    rows = await session.scalars(
        sa.text(
            "SELECT term FROM unnest(CAST(:terms AS text[])) AS term WHERE tenant_name_taken(term)"
        ),
        {"terms": terms},
    )
    return set(rows)


async def create_client(
    session: AsyncConnection,
    *,
    tenant_id: uuid.UUID,
    client_id: str,
    name: str,
    role: str,
    scopes: list[str],
    secret_hash: bytes,
) -> Record:
    row: Record = (
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


async def client_by_id(
    session: AsyncConnection, tenant_id: uuid.UUID, client_uuid: uuid.UUID
) -> Record | None:
    return (
        await session.execute(
            sa.select(api_clients).where(
                api_clients.c.tenant_id == tenant_id, api_clients.c.id == client_uuid
            )
        )
    ).one_or_none()


async def list_clients(
    session: AsyncConnection,
    tenant_id: uuid.UUID,
    *,
    limit: int,
    after: tuple[datetime, uuid.UUID] | None,
) -> Sequence[Record]:
    """Oldest first, keyset on (created_at, id); up to `limit` rows."""
    statement = sa.select(api_clients).where(api_clients.c.tenant_id == tenant_id)
    if after is not None:
        statement = statement.where(
            sa.tuple_(api_clients.c.created_at, api_clients.c.id) > sa.tuple_(*after)
        )
    statement = statement.order_by(api_clients.c.created_at, api_clients.c.id).limit(limit)
    return (await session.execute(statement)).all()


async def revoke_client(
    session: AsyncConnection, tenant_id: uuid.UUID, client_uuid: uuid.UUID
) -> Record | None:
    """Mark the client revoked; None when it was revoked already (or does not exist)."""
    row: Record | None = (
        await session.execute(
            sa.update(api_clients)
            .where(
                api_clients.c.tenant_id == tenant_id,
                api_clients.c.id == client_uuid,
                api_clients.c.revoked_at.is_(None),
            )
            .values(revoked_at=sa.func.now())
            .returning(api_clients)
        )
    ).one_or_none()
    return row


async def replace_client_secret(
    session: AsyncConnection, tenant_id: uuid.UUID, client_uuid: uuid.UUID, secret_hash: bytes
) -> Record | None:
    """Swap the secret of a live client; None when the client is revoked (or does not exist)."""
    row: Record | None = (
        await session.execute(
            sa.update(api_clients)
            .where(
                api_clients.c.tenant_id == tenant_id,
                api_clients.c.id == client_uuid,
                api_clients.c.revoked_at.is_(None),
            )
            .values(secret_hash=secret_hash, secret_rotated_at=sa.func.now())
            .returning(api_clients)
        )
    ).one_or_none()
    return row


async def create_provider(
    session: AsyncConnection,
    *,
    tenant_id: uuid.UUID,
    issuer: str,
    audience: str,
    jwks_uri: str | None,
    role_claim: str | None,
    default_role: str,
) -> Record | None:
    """Register an issuer; None when some tenant (this one or another) has registered it."""
    statement = (
        insert(identity_providers)
        .values(
            tenant_id=tenant_id,
            issuer=issuer,
            audience=audience,
            jwks_uri=jwks_uri,
            role_claim=role_claim,
            default_role=default_role,
        )
        .on_conflict_do_nothing(index_elements=[identity_providers.c.issuer])
        .returning(identity_providers)
    )
    row: Record | None = (await session.execute(statement)).one_or_none()
    return row


async def provider_by_id(
    session: AsyncConnection, tenant_id: uuid.UUID, provider_id: uuid.UUID
) -> Record | None:
    return (
        await session.execute(
            sa.select(identity_providers).where(
                identity_providers.c.tenant_id == tenant_id,
                identity_providers.c.id == provider_id,
            )
        )
    ).one_or_none()


async def list_providers(
    session: AsyncConnection,
    tenant_id: uuid.UUID,
    *,
    limit: int,
    after: tuple[datetime, uuid.UUID] | None,
) -> Sequence[Record]:
    statement = sa.select(identity_providers).where(identity_providers.c.tenant_id == tenant_id)
    if after is not None:
        statement = statement.where(
            sa.tuple_(identity_providers.c.created_at, identity_providers.c.id) > sa.tuple_(*after)
        )
    statement = statement.order_by(identity_providers.c.created_at, identity_providers.c.id).limit(
        limit
    )
    return (await session.execute(statement)).all()


async def delete_provider(
    session: AsyncConnection, tenant_id: uuid.UUID, provider_id: uuid.UUID
) -> Record | None:
    row: Record | None = (
        await session.execute(
            sa.delete(identity_providers)
            .where(
                identity_providers.c.tenant_id == tenant_id,
                identity_providers.c.id == provider_id,
            )
            .returning(identity_providers)
        )
    ).one_or_none()
    return row


async def record_audit(
    session: AsyncConnection,
    *,
    tenant_id: uuid.UUID,
    actor_type: str,
    actor_id: uuid.UUID | None,
    actor_name: str,
    action: str,
    target_type: str,
    target_id: uuid.UUID | None,
    details: dict[str, Any],
) -> None:
    await session.execute(
        sa.insert(audit_log).values(
            tenant_id=tenant_id,
            actor_type=actor_type,
            actor_id=actor_id,
            actor_name=actor_name,
            action=action,
            target_type=target_type,
            target_id=target_id,
            details=details,
        )
    )


async def list_audit(
    session: AsyncConnection, tenant_id: uuid.UUID, *, limit: int, before_seq: int | None
) -> Sequence[Record]:
    """Newest first, keyset on the sequence number; up to `limit` rows."""
    statement = sa.select(audit_log).where(audit_log.c.tenant_id == tenant_id)
    if before_seq is not None:
        statement = statement.where(audit_log.c.seq < before_seq)
    statement = statement.order_by(audit_log.c.seq.desc()).limit(limit)
    return (await session.execute(statement)).all()


async def names_to_scrub(
    session: AsyncConnection, tenant_id: uuid.UUID
) -> tuple[list[str], list[str]]:
    tenant = (
        await session.execute(
            sa.select(tenants.c.name, tenants.c.slug).where(tenants.c.id == tenant_id)
        )
    ).one_or_none()
    people = await session.scalars(
        sa.select(users.c.name).where(users.c.tenant_id == tenant_id).distinct()
    )
    own = [tenant.name, tenant.slug, *await aliases_of(session, tenant_id)] if tenant else []
    return own, [p for p in people if p]
