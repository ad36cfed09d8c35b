"""Every query of the webhooks API (app role, bound to the caller's tenant)."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from wg_api.integrations.webhooks.models import webhook_deliveries, webhook_endpoints
from wg_api.platform.models import Record

_ENDPOINT_COLUMNS = [c for c in webhook_endpoints.c if c.name not in ("secret", "previous_secret")]
_DELIVERY_COLUMNS = [
    webhook_deliveries.c[name]
    for name in (
        "id",
        "event_id",
        "event_type",
        "attempt",
        "status",
        "response_status",
        "duration_ms",
        "error",
        "attempted_at",
        "next_attempt_at",
        "created_at",
    )
]


async def feed_head(session: AsyncConnection, tenant_id: uuid.UUID) -> int:
    """The last position of the tenant's feed, after positioning what is visible now: a new
    endpoint gets the events positioned after it."""
    await session.execute(sa.text("SELECT position_events()"))
    head = await session.scalar(
        sa.text("SELECT max(position) FROM events WHERE tenant_id = :tenant_id"),
        {"tenant_id": tenant_id},
    )
    return int(head or 0)


async def create_endpoint(
    session: AsyncConnection,
    *,
    tenant_id: uuid.UUID,
    endpoint_id: uuid.UUID,
    url: str,
    description: str | None,
    event_types: list[str] | None,
    ordered: bool,
    sealed_secret: bytes,
    feed_position: int,
) -> Record:
    return (
        await session.execute(
            sa.insert(webhook_endpoints)
            .values(
                tenant_id=tenant_id,
                id=endpoint_id,
                url=url,
                description=description,
                event_types=event_types,
                ordered=ordered,
                status="enabled",
                secret=sealed_secret,
                feed_position=feed_position,
            )
            .returning(*_ENDPOINT_COLUMNS)
        )
    ).one()


async def get_endpoint(
    session: AsyncConnection,
    tenant_id: uuid.UUID,
    endpoint_id: uuid.UUID,
    *,
    for_update: bool = False,
) -> Record | None:
    query = sa.select(*_ENDPOINT_COLUMNS).where(
        webhook_endpoints.c.tenant_id == tenant_id, webhook_endpoints.c.id == endpoint_id
    )
    if for_update:
        query = query.with_for_update()
    return (await session.execute(query)).one_or_none()


async def list_endpoints(
    session: AsyncConnection, tenant_id: uuid.UUID, *, limit: int, after: tuple[Any, ...] | None
) -> list[Record]:
    query = sa.select(*_ENDPOINT_COLUMNS).where(webhook_endpoints.c.tenant_id == tenant_id)
    if after is not None:
        query = query.where(
            sa.tuple_(webhook_endpoints.c.created_at, webhook_endpoints.c.id) > sa.tuple_(*after)
        )
    query = query.order_by(webhook_endpoints.c.created_at, webhook_endpoints.c.id).limit(limit + 1)
    return list((await session.execute(query)).all())


async def update_endpoint(
    session: AsyncConnection,
    tenant_id: uuid.UUID,
    endpoint_id: uuid.UUID,
    values: dict[str, Any],
    *,
    touch: bool = True,
) -> Record:
    if touch:
        values = {**values, "updated_at": sa.func.now()}
    return (
        await session.execute(
            sa.update(webhook_endpoints)
            .where(
                webhook_endpoints.c.tenant_id == tenant_id, webhook_endpoints.c.id == endpoint_id
            )
            .values(**values)
            .returning(*_ENDPOINT_COLUMNS)
        )
    ).one()


async def delete_endpoint(
    session: AsyncConnection, tenant_id: uuid.UUID, endpoint_id: uuid.UUID
) -> None:
    await session.execute(
        sa.delete(webhook_endpoints).where(
            webhook_endpoints.c.tenant_id == tenant_id, webhook_endpoints.c.id == endpoint_id
        )
    )


async def list_deliveries(
    session: AsyncConnection,
    tenant_id: uuid.UUID,
    endpoint_id: uuid.UUID,
    *,
    status: str | None,
    limit: int,
    after: tuple[Any, ...] | None,
) -> list[Record]:
    d = webhook_deliveries.c
    query = sa.select(*_DELIVERY_COLUMNS).where(
        d.tenant_id == tenant_id, d.endpoint_id == endpoint_id
    )
    if status is not None:
        query = query.where(d.status == status)
    if after is not None:
        query = query.where(sa.tuple_(d.created_at, d.id) < sa.tuple_(*after))
    query = query.order_by(d.created_at.desc(), d.id.desc()).limit(limit + 1)
    return list((await session.execute(query)).all())


async def get_delivery(
    session: AsyncConnection, tenant_id: uuid.UUID, endpoint_id: uuid.UUID, delivery_id: uuid.UUID
) -> Record | None:
    d = webhook_deliveries.c
    return (
        await session.execute(
            sa.select(*_DELIVERY_COLUMNS, d.event_position).where(
                d.tenant_id == tenant_id, d.endpoint_id == endpoint_id, d.id == delivery_id
            )
        )
    ).one_or_none()


async def schedule_again(
    session: AsyncConnection,
    tenant_id: uuid.UUID,
    endpoint_id: uuid.UUID,
    *,
    event_id: uuid.UUID,
    event_type: str,
    event_position: int,
) -> Record:
    """A new first try of one event, numbered after every attempt the endpoint had of it (the
    caller holds the endpoint's row lock, so two of these never take the same number)."""
    d = webhook_deliveries.c
    attempt = (
        sa.select(sa.func.coalesce(sa.func.max(d.attempt), 0) + 1)
        .where(d.tenant_id == tenant_id, d.endpoint_id == endpoint_id, d.event_id == event_id)
        .scalar_subquery()
    )
    return (
        await session.execute(
            sa.insert(webhook_deliveries)
            .values(
                tenant_id=tenant_id,
                endpoint_id=endpoint_id,
                event_id=event_id,
                event_type=event_type,
                event_position=event_position,
                attempt=attempt,
            )
            .returning(*_DELIVERY_COLUMNS)
        )
    ).one()


_REPLAY = sa.text(
    """
    INSERT INTO webhook_deliveries
        (tenant_id, endpoint_id, event_id, event_type, event_position, attempt)
    SELECT e.tenant_id, :endpoint_id, e.id, e.type, e.position,
           coalesce((SELECT max(d.attempt) FROM webhook_deliveries d
                     WHERE d.tenant_id = e.tenant_id AND d.endpoint_id = :endpoint_id
                       AND d.event_id = e.id), 0) + 1
    FROM events e
    WHERE e.tenant_id = :tenant_id AND e.position IS NOT NULL AND e.occurred_at >= :since
      AND (CAST(:types AS text[]) IS NULL OR e.type = ANY (CAST(:types AS text[])))
    ORDER BY e.position
    """
)


async def replay(
    session: AsyncConnection,
    tenant_id: uuid.UUID,
    endpoint_id: uuid.UUID,
    *,
    since: datetime,
    event_types: list[str] | None,
) -> int:
    await session.execute(sa.text("SELECT position_events()"))
    result = await session.execute(
        _REPLAY,
        {"tenant_id": tenant_id, "endpoint_id": endpoint_id, "since": since, "types": event_types},
    )
    return int(result.rowcount)


async def sealed_secret(
    session: AsyncConnection, tenant_id: uuid.UUID, endpoint_id: uuid.UUID
) -> bytes:
    result = await session.execute(
        sa.select(webhook_endpoints.c.secret).where(
            webhook_endpoints.c.tenant_id == tenant_id, webhook_endpoints.c.id == endpoint_id
        )
    )
    return bytes(result.scalar_one())
