"""Every co-sourcing query. Rooms span tenants: the app role reads a room it is invited to, and
participants, messages and action items of rooms it is in; everything across tenants (alerts,
introductions, matching, reminders) is done by the owner's functions of migration 0015."""

from __future__ import annotations

import uuid
from datetime import date, datetime
from typing import Any

import msgspec
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from wg_api.platform.models import Record

_MY_ROOMS = """
    SELECT r.id, r.kind, r.supplier_id, r.working_group_id, r.shared_finding_id,
           r.window_start, r.window_end, r.deadline_at, i.reason, i.planned_audit_id,
           i.created_at,
           EXISTS (SELECT 1 FROM cosourcing_opt_ins o
                   WHERE o.room_id = r.id AND o.tenant_id = i.tenant_id) AS opted_in,
           EXISTS (SELECT 1 FROM cosourcing_participants p
                   WHERE p.room_id = r.id AND p.tenant_id = i.tenant_id) AS introduced
    FROM cosourcing_invitations i
    JOIN cosourcing_rooms r ON r.id = i.room_id
    WHERE i.tenant_id = :tenant_id AND r.kind = :kind
      AND (CAST(:room_id AS uuid) IS NULL OR r.id = CAST(:room_id AS uuid))
      AND (CAST(:supplier_id AS uuid) IS NULL OR r.supplier_id = CAST(:supplier_id AS uuid))
      AND (CAST(:after_at AS timestamptz) IS NULL
           OR (i.created_at, r.id) < (CAST(:after_at AS timestamptz), CAST(:after_id AS uuid)))
    ORDER BY i.created_at DESC, r.id DESC
    LIMIT :limit
"""


async def my_rooms(
    session: AsyncConnection,
    tenant_id: uuid.UUID,
    kind: str,
    *,
    room_id: uuid.UUID | None = None,
    supplier_id: uuid.UUID | None = None,
    after: tuple[Any, ...] | None = None,
    limit: int = 1,
) -> list[Record]:
    """The rooms of `kind` the tenant is invited to, newest invitation first, with its own
    opt-in and whether it has been introduced."""
    after_at, after_id = after if after else (None, None)
    rows = await session.execute(
        sa.text(_MY_ROOMS),
        {
            "tenant_id": tenant_id,
            "kind": kind,
            "room_id": room_id,
            "supplier_id": supplier_id,
            "after_at": after_at,
            "after_id": after_id,
            "limit": limit,
        },
    )
    return list(rows.all())


async def participants(session: AsyncConnection, room_ids: list[uuid.UUID]) -> list[Record]:
    """The participants of those rooms the caller is in (RLS shows no other)."""
    if not room_ids:
        return []
    rows = await session.execute(
        sa.text(
            "SELECT p.room_id, t.id, t.slug, t.name FROM cosourcing_participants p "
            "JOIN tenants t ON t.id = p.tenant_id "
            "WHERE p.room_id = ANY(CAST(:ids AS uuid[])) ORDER BY p.room_id, t.name, t.id"
        ),
        {"ids": room_ids},
    )
    return list(rows.all())


async def open_remediation_room(
    session: AsyncConnection, shared_id: uuid.UUID, alert: dict[str, Any]
) -> uuid.UUID:
    room = await session.scalar(
        sa.text("SELECT cosourcing_open_remediation_room(:id, CAST(:alert AS jsonb))"),
        {"id": shared_id, "alert": msgspec.json.encode(alert).decode()},
    )
    assert isinstance(room, uuid.UUID)
    return room


async def opt_in(session: AsyncConnection, tenant_id: uuid.UUID, room_id: uuid.UUID) -> None:
    await session.execute(
        sa.text(
            "INSERT INTO cosourcing_opt_ins (tenant_id, room_id) VALUES (:tenant_id, :room_id) "
            "ON CONFLICT DO NOTHING"
        ),
        {"tenant_id": tenant_id, "room_id": room_id},
    )


async def introduce(session: AsyncConnection, room_id: uuid.UUID) -> bool:
    """The one way in: true when the caller is (now) a participant; before two opt-ins,
    false and nothing changed."""
    return bool(await session.scalar(sa.text("SELECT cosourcing_introduce(:id)"), {"id": room_id}))


async def withdraw_opt_in(session: AsyncConnection, room_id: uuid.UUID) -> bool:
    """False when the caller has already been introduced (too late to leave no trace)."""
    return bool(
        await session.scalar(sa.text("SELECT cosourcing_withdraw_opt_in(:id)"), {"id": room_id})
    )


async def group_rooms(
    session: AsyncConnection, group_id: uuid.UUID, after: uuid.UUID | None, limit: int
) -> list[Record]:
    rows = await session.execute(
        sa.text(
            "SELECT room_id, shared_finding_id, participants, deadline_at "
            "FROM cosourcing_group_rooms(:group_id) "
            "WHERE CAST(:after AS uuid) IS NULL OR room_id > CAST(:after AS uuid) "
            "ORDER BY room_id LIMIT :limit"
        ),
        {"group_id": group_id, "after": after, "limit": limit},
    )
    return list(rows.all())


async def publish_room_event(
    session: AsyncConnection, room_id: uuid.UUID, type: str, data: dict[str, Any]
) -> None:
    """`type` into the feeds of the room's other participants."""
    await session.execute(
        sa.text("SELECT cosourcing_publish_room_event(:id, :type, CAST(:data AS jsonb))"),
        {"id": room_id, "type": type, "data": msgspec.json.encode(data).decode()},
    )


async def in_room(session: AsyncConnection, room_id: uuid.UUID) -> bool:
    return bool(await session.scalar(sa.text("SELECT cosourcing_in_room(:id)"), {"id": room_id}))


_MESSAGE = """
    SELECT m.id, m.room_id, m.body, m.created_at, t.id AS tenant_id, t.slug, t.name
    FROM cosourcing_messages m JOIN tenants t ON t.id = m.tenant_id
"""


async def insert_message(
    session: AsyncConnection, tenant_id: uuid.UUID, room_id: uuid.UUID, body: str
) -> Record:
    message_id = uuid.uuid4()
    await session.execute(
        sa.text(
            "INSERT INTO cosourcing_messages (room_id, id, tenant_id, body) "
            "VALUES (:room_id, :id, :tenant_id, :body)"
        ),
        {"room_id": room_id, "id": message_id, "tenant_id": tenant_id, "body": body},
    )
    row = (
        await session.execute(
            sa.text(_MESSAGE + "WHERE m.room_id = :room_id AND m.id = :id"),
            {"room_id": room_id, "id": message_id},
        )
    ).one()
    return row


async def messages(
    session: AsyncConnection, room_id: uuid.UUID, after: tuple[Any, ...] | None, limit: int
) -> list[Record]:
    after_at, after_id = after if after else (None, None)
    rows = await session.execute(
        sa.text(
            _MESSAGE + "WHERE m.room_id = :room_id AND (CAST(:after_at AS timestamptz) IS NULL "
            "OR (m.created_at, m.id) > (CAST(:after_at AS timestamptz), CAST(:after_id AS uuid))) "
            "ORDER BY m.created_at, m.id LIMIT :limit"
        ),
        {"room_id": room_id, "after_at": after_at, "after_id": after_id, "limit": limit},
    )
    return list(rows.all())


_ACTION = (
    "SELECT id, room_id, title, owner_tenant_id, due_on, status, created_at, updated_at "
    "FROM cosourcing_action_items "
)


async def insert_action_item(
    session: AsyncConnection,
    room_id: uuid.UUID,
    title: str,
    owner_tenant_id: uuid.UUID | None,
    due_on: date | None,
) -> Record:
    item_id = uuid.uuid4()
    await session.execute(
        sa.text(
            "INSERT INTO cosourcing_action_items (room_id, id, title, owner_tenant_id, due_on) "
            "VALUES (:room_id, :id, :title, :owner, :due_on)"
        ),
        {
            "room_id": room_id,
            "id": item_id,
            "title": title,
            "owner": owner_tenant_id,
            "due_on": due_on,
        },
    )
    row = await action_item(session, room_id, item_id)
    assert row is not None
    return row


async def action_item(
    session: AsyncConnection, room_id: uuid.UUID, item_id: uuid.UUID, *, for_update: bool = False
) -> Record | None:
    sql = _ACTION + "WHERE room_id = :room_id AND id = :id" + (" FOR UPDATE" if for_update else "")
    return (await session.execute(sa.text(sql), {"room_id": room_id, "id": item_id})).one_or_none()


async def update_action_item(
    session: AsyncConnection, room_id: uuid.UUID, item_id: uuid.UUID, changes: dict[str, Any]
) -> Record:
    assignments = ", ".join(f"{column} = :{column}" for column in changes)
    # Only the fixed column names of ActionItemPatch are joined in.
    await session.execute(
        sa.text(
            f"UPDATE cosourcing_action_items SET {assignments}, updated_at = clock_timestamp() "  # noqa: S608
            "WHERE room_id = :room_id AND id = :id"
        ),
        {**changes, "room_id": room_id, "id": item_id},
    )
    row = await action_item(session, room_id, item_id)
    assert row is not None
    return row


async def action_items(
    session: AsyncConnection, room_id: uuid.UUID, after: tuple[Any, ...] | None, limit: int
) -> list[Record]:
    after_at, after_id = after if after else (None, None)
    rows = await session.execute(
        sa.text(
            _ACTION + "WHERE room_id = :room_id AND (CAST(:after_at AS timestamptz) IS NULL "
            "OR (created_at, id) > (CAST(:after_at AS timestamptz), CAST(:after_id AS uuid))) "
            "ORDER BY created_at, id LIMIT :limit"
        ),
        {"room_id": room_id, "after_at": after_at, "after_id": after_id, "limit": limit},
    )
    return list(rows.all())


_AUDIT = (
    "SELECT id, supplier_id, window_start, window_end, scheme, open_to_joint_audit, note, "
    "created_at FROM planned_audits "
)


async def insert_planned_audit(
    session: AsyncConnection, tenant_id: uuid.UUID, values: dict[str, Any]
) -> Record:
    audit_id = uuid.uuid4()
    await session.execute(
        sa.text(
            "INSERT INTO planned_audits (tenant_id, id, supplier_id, window_start, window_end, "
            "scheme, open_to_joint_audit, note) VALUES (:tenant_id, :id, :supplier_id, "
            ":window_start, :window_end, :scheme, :open_to_joint_audit, :note)"
        ),
        {**values, "tenant_id": tenant_id, "id": audit_id},
    )
    row = await planned_audit(session, tenant_id, audit_id)
    assert row is not None
    return row


async def planned_audit(
    session: AsyncConnection, tenant_id: uuid.UUID, audit_id: uuid.UUID
) -> Record | None:
    return (
        await session.execute(
            sa.text(_AUDIT + "WHERE tenant_id = :tenant_id AND id = :id"),
            {"tenant_id": tenant_id, "id": audit_id},
        )
    ).one_or_none()


async def planned_audits(
    session: AsyncConnection,
    tenant_id: uuid.UUID,
    supplier_id: uuid.UUID | None,
    after: tuple[Any, ...] | None,
    limit: int,
) -> list[Record]:
    after_day, after_id = after if after else (None, None)
    rows = await session.execute(
        sa.text(
            _AUDIT + "WHERE tenant_id = :tenant_id "
            "AND (CAST(:supplier_id AS uuid) IS NULL OR supplier_id = CAST(:supplier_id AS uuid)) "
            "AND (CAST(:after_day AS date) IS NULL "
            "OR (window_start, id) > (CAST(:after_day AS date), CAST(:after_id AS uuid))) "
            "ORDER BY window_start, id LIMIT :limit"
        ),
        {
            "tenant_id": tenant_id,
            "supplier_id": supplier_id,
            "after_day": after_day,
            "after_id": after_id,
            "limit": limit,
        },
    )
    return list(rows.all())


async def delete_planned_audit(
    session: AsyncConnection, tenant_id: uuid.UUID, audit_id: uuid.UUID
) -> bool:
    await session.execute(sa.text("SELECT cosourcing_forget_planned_audit(:id)"), {"id": audit_id})
    result = await session.execute(
        sa.text("DELETE FROM planned_audits WHERE tenant_id = :tenant_id AND id = :id"),
        {"tenant_id": tenant_id, "id": audit_id},
    )
    return bool(result.rowcount)


# The worker's work (system role), through the owner's functions.


async def send_alerts(
    session: AsyncConnection,
    min_link_age_days: int,
    max_delay_seconds: float,
    limit: int,
    room_id: uuid.UUID | None,
) -> tuple[int, int]:
    row = (
        await session.execute(
            sa.text(
                "SELECT rooms, alerts FROM cosourcing_send_alerts(:days, :delay, :limit, :room)"
            ),
            {
                "days": min_link_age_days,
                "delay": max_delay_seconds,
                "limit": limit,
                "room": room_id,
            },
        )
    ).one()
    return int(row.rooms), int(row.alerts)


async def match_planned_audits(
    session: AsyncConnection, min_link_age_days: int, max_delay_seconds: float
) -> int:
    found = await session.scalar(
        sa.text("SELECT cosourcing_match_planned_audits(:days, :delay)"),
        {"days": min_link_age_days, "delay": max_delay_seconds},
    )
    return int(found or 0)


async def send_room_reminders(session: AsyncConnection, now: datetime, limit: int) -> int:
    written = await session.scalar(
        sa.text("SELECT cosourcing_send_room_reminders(:now, :limit)"),
        {"now": now, "limit": limit},
    )
    return int(written or 0)
