"""Helpers for the fault tests: the app on a real socket, a route that holds the database, and
tenants made on any `Database` (the restart test has a server of its own)."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import socket
import uuid
from collections.abc import AsyncIterator
from typing import Annotated, Any

import httpx
import msgspec
import sqlalchemy as sa
import uvicorn
from litestar import Controller, get
from litestar.params import Parameter

from wg_api.identity import service
from wg_api.identity.access import requires
from wg_api.platform.database import Database
from wg_api.platform.transaction import DbSession

PROBLEM_JSON = "application/problem+json"


class SleepController(Controller):
    """Test-only: a request whose one statement sleeps in the database, holding its connection."""

    path = "/test"
    include_in_schema = False

    @get("/sleep", **requires(None))
    async def sleep(
        self,
        db_session: DbSession,
        seconds: Annotated[float, Parameter(ge=0, le=30)],
    ) -> dict[str, float]:
        await db_session.execute(sa.text("SELECT pg_sleep(:s)"), {"s": seconds})
        return {"slept": seconds}


@contextlib.asynccontextmanager
async def serve_on_socket(app: Any, **config: Any) -> AsyncIterator[str]:
    """`app` served by uvicorn (httptools) on a free port of 127.0.0.1, in this event loop;
    answers its base URL."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    server = uvicorn.Server(
        uvicorn.Config(
            app,
            http="httptools",
            lifespan="on",
            log_config=None,
            access_log=False,
            timeout_graceful_shutdown=5,
            **config,
        )
    )
    # In-loop: the signal handlers are the test runner's, not uvicorn's.
    task = asyncio.create_task(server._serve(sockets=[sock]))
    try:
        async with asyncio.timeout(60):
            while not server.started:
                if task.done():
                    task.result()
                await asyncio.sleep(0.05)
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        await asyncio.wait_for(task, 30)
        sock.close()


class Caller(msgspec.Struct):
    tenant_id: uuid.UUID
    client_id: str
    client_secret: str

    async def headers(self, http: httpx.AsyncClient) -> dict[str, str]:
        basic = base64.b64encode(f"{self.client_id}:{self.client_secret}".encode()).decode()
        response = await http.post(
            "/oauth/token",
            data={"grant_type": "client_credentials"},
            headers={"Authorization": f"Basic {basic}"},
        )
        assert response.status_code == 200, response.text
        return {"Authorization": f"Bearer {response.json()['access_token']}"}


async def new_caller(database: Database) -> Caller:
    """A brand with an admin client, made on `database` (not necessarily the suite's)."""
    slug = f"t-{uuid.uuid4().hex[:10]}"
    async with database.system_transaction() as session:
        tenant = await service.create_tenant(
            session, slug=slug, name=f"Tenant {slug}", kind="brand", timezone="Asia/Hong_Kong"
        )
    async with database.transaction(tenant["id"]) as session:
        made = await service.create_client(
            session, tenant_id=tenant["id"], name="tests", role="admin", scopes=None
        )
    return Caller(tenant["id"], made.client_id, made.client_secret)


def assert_try_again(response: httpx.Response) -> None:
    assert response.status_code == 503, response.text
    assert response.headers["content-type"] == PROBLEM_JSON
    assert response.json()["type"] == "/problems/try-again"
    assert int(response.headers["retry-after"]) >= 1
