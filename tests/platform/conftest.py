"""A second app instance with test-only /v1 routes, built the way real domain routes are built.

The routes use `Body[Struct]` with `forbid_unknown_fields=True` and `Meta` constraints, the request
transaction (`DbSession`), `record_event`, `etag_of` and `check_if_match`, so the platform's HTTP
conventions are proven through the whole stack (auth, rate limit, transaction, idempotency).
"""

from __future__ import annotations

import asyncio
import dataclasses
import uuid
from collections.abc import AsyncIterator
from typing import Annotated, Any

import httpx
import msgspec
import pytest
import sqlalchemy as sa
from litestar import Controller, Request, Response, delete, get, patch, post
from litestar.params import FromPath, JSONBody
from msgspec import Meta
from sqlalchemy.engine import URL

from tests.conftest import serve_in_loop
from wg_api.app import asgi_app
from wg_api.identity.access import requires
from wg_api.identity.principal import Principal
from wg_api.platform.database import Database
from wg_api.platform.errors import NotFound
from wg_api.platform.events import record_event
from wg_api.platform.http import Body, check_if_match, etag_of
from wg_api.platform.transaction import DbSession
from wg_api.settings import Settings

WIDGET_CREATED = "widget.created"


class WidgetIn(msgspec.Struct, forbid_unknown_fields=True):
    name: Annotated[str, Meta(min_length=1, max_length=40)]
    quantity: Annotated[int, Meta(ge=1, le=100)] = 1
    note: Annotated[str, Meta(max_length=2 * 1024 * 1024)] = ""


class WidgetOut(msgspec.Struct):
    id: uuid.UUID
    name: str
    quantity: int


class NoteIn(msgspec.Struct, forbid_unknown_fields=True):
    text: Annotated[str, Meta(min_length=1, max_length=200)]


class NoteOut(msgspec.Struct):
    id: uuid.UUID
    text: str
    version: int


class Gate:
    """Holds a request inside its handler until the test releases it."""

    def __init__(self) -> None:
        self.entered = asyncio.Event()
        self.release = asyncio.Event()


GATES: dict[str, Gate] = {}
NOTES: dict[tuple[uuid.UUID, uuid.UUID], NoteOut] = {}


async def _create_widget(
    request: Request[Principal, Any, Any], db_session: Any, data: WidgetIn
) -> Response[WidgetOut]:
    widget = WidgetOut(id=uuid.uuid4(), name=data.name, quantity=data.quantity)
    await record_event(db_session, request.user.tenant_id, WIDGET_CREATED, widget)
    return Response(
        widget,
        status_code=201,
        headers={"Location": f"/v1/test/widgets/{widget.id}", "ETag": etag_of(widget)},
    )


class PlatformTestController(Controller):
    path = "/test"
    include_in_schema = False

    @post("/widgets", data_dto=Body[WidgetIn], **requires(None))
    async def create_widget(
        self, request: Request[Principal, Any, Any], db_session: DbSession, data: JSONBody[WidgetIn]
    ) -> Response[WidgetOut]:
        return await _create_widget(request, db_session, data)

    @post("/held-widgets", data_dto=Body[WidgetIn], **requires(None))
    async def create_held_widget(
        self, request: Request[Principal, Any, Any], db_session: DbSession, data: JSONBody[WidgetIn]
    ) -> Response[WidgetOut]:
        gate = GATES[data.name]
        gate.entered.set()
        await gate.release.wait()
        return await _create_widget(request, db_session, data)

    @post("/failing-widgets", data_dto=Body[WidgetIn], **requires(None))
    async def create_failing_widget(
        self, request: Request[Principal, Any, Any], db_session: DbSession, data: JSONBody[WidgetIn]
    ) -> Response[WidgetOut]:
        await _create_widget(request, db_session, data)
        raise RuntimeError(f"database password is hunter2 (widget {data.name})")

    @post("/contended-widgets/{sqlstate:str}", data_dto=Body[WidgetIn], **requires(None))
    async def create_contended_widget(
        self,
        request: Request[Principal, Any, Any],
        db_session: DbSession,
        data: JSONBody[WidgetIn],
        sqlstate: FromPath[str],
    ) -> Response[WidgetOut]:
        """Records the widget, then meets a PostgreSQL error with this SQLSTATE (as a deadlock
        or a lost race on a unique index would raise it)."""
        created = await _create_widget(request, db_session, data)
        await db_session.execute(
            sa.text(
                "DO $$ BEGIN RAISE EXCEPTION 'contended' USING ERRCODE = '"
                + sqlstate.replace("'", "")
                + "'; END $$"
            )
        )
        return created

    @get("/crash", **requires(None))
    async def crash(self) -> None:
        raise ZeroDivisionError("secret internal state: /srv/app/settings.py line 42")

    @post("/notes", data_dto=Body[NoteIn], **requires(None))
    async def create_note(
        self, request: Request[Principal, Any, Any], data: JSONBody[NoteIn]
    ) -> Response[NoteOut]:
        note = NoteOut(id=uuid.uuid4(), text=data.text, version=1)
        NOTES[(request.user.tenant_id, note.id)] = note
        return Response(note, status_code=201, headers={"ETag": etag_of(note)})

    @get("/notes/{note_id:uuid}", **requires(None))
    async def get_note(
        self, request: Request[Principal, Any, Any], note_id: FromPath[uuid.UUID]
    ) -> Response[NoteOut]:
        note = _note(request, note_id)
        return Response(note, headers={"ETag": etag_of(note)})

    @patch("/notes/{note_id:uuid}", data_dto=Body[NoteIn], **requires(None))
    async def update_note(
        self,
        request: Request[Principal, Any, Any],
        note_id: FromPath[uuid.UUID],
        data: JSONBody[NoteIn],
    ) -> Response[NoteOut]:
        current = _note(request, note_id)
        check_if_match(request, etag_of(current))
        note = NoteOut(id=current.id, text=data.text, version=current.version + 1)
        NOTES[(request.user.tenant_id, note_id)] = note
        return Response(note, headers={"ETag": etag_of(note)})

    @delete("/notes/{note_id:uuid}", **requires(None))
    async def delete_note(
        self, request: Request[Principal, Any, Any], note_id: FromPath[uuid.UUID]
    ) -> None:
        check_if_match(request, etag_of(_note(request, note_id)))
        del NOTES[(request.user.tenant_id, note_id)]


def _note(request: Request[Principal, Any, Any], note_id: uuid.UUID) -> NoteOut:
    note = NOTES.get((request.user.tenant_id, note_id))
    if note is None:
        raise NotFound("No such note.")
    return note


@pytest.fixture(scope="session")
async def test_app_client(
    settings: Settings, database: Database
) -> AsyncIterator[httpx.AsyncClient]:
    """The full ASGI stack plus PlatformTestController under /v1/test."""
    app = asgi_app(settings, database, extra_v1_handlers=[PlatformTestController])
    async with serve_in_loop(app) as http:
        yield http


async def count_events(database: Database, tenant_id: uuid.UUID, type: str) -> int:
    async with database.transaction(tenant_id) as session:
        count = await session.scalar(
            sa.text("SELECT count(*) FROM events WHERE tenant_id = :t AND type = :type"),
            {"t": tenant_id, "type": type},
        )
    return int(count or 0)


@pytest.fixture
async def one_connection(admin_url: URL, settings: Settings) -> AsyncIterator[Database]:
    """A Database whose app pool holds exactly one connection, so every checkout reuses it."""
    db = Database.connect(admin_url, dataclasses.replace(settings, db_pool_size=1), max_overflow=0)
    try:
        yield db
    finally:
        await db.dispose()
