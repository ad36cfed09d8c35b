"""Webhook test harness: a real HTTP receiver on 127.0.0.1 (http.server in a thread), a
dispatcher run in the test's loop, endpoints made through the API and events written to feeds."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import threading
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx
import pytest
import sqlalchemy as sa

from tests.conftest import TenantHandle, superuser_transaction
from wg_api.identity.keys import SigningKeys
from wg_api.integrations.webhooks.delivery import WebhookDispatcher
from wg_api.integrations.webhooks.secrets import SecretBox
from wg_api.platform.database import Database
from wg_api.platform.outbound import OutboundClient
from wg_api.settings import Settings

BASE = "/v1/webhook-endpoints"


@dataclass(frozen=True)
class Received:
    path: str
    headers: dict[str, str]
    body: bytes
    at: float


@dataclass(frozen=True)
class Answer:
    status: int = 200
    headers: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0
    # Hold the request until this is set (or 20 s): a receiver that hangs.
    hold: threading.Event | None = None


class Receiver:
    """Records every request; answers each path with its planned answers in turn, the last one
    for every request after (200 when nothing is planned)."""

    def __init__(self) -> None:
        self.requests: list[Received] = []
        self.plans: dict[str, list[Answer]] = {}
        self.in_flight: dict[str, int] = {}
        self.most_in_flight: dict[str, int] = {}
        self.lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self) -> None:
                length = int(self.headers.get("content-length", "0"))
                body = self.rfile.read(length)
                request = Received(
                    self.path, {k.lower(): v for k, v in self.headers.items()}, body, time.time()
                )
                with receiver.lock:
                    receiver.requests.append(request)
                    plan = receiver.plans.get(self.path, [])
                    answer = plan.pop(0) if len(plan) > 1 else (plan[0] if plan else Answer())
                    now = receiver.in_flight[self.path] = receiver.in_flight.get(self.path, 0) + 1
                    most = max(receiver.most_in_flight.get(self.path, 0), now)
                    receiver.most_in_flight[self.path] = most
                try:
                    if answer.hold is not None:
                        answer.hold.wait(20)
                    if answer.delay:
                        time.sleep(answer.delay)
                    self.send_response(answer.status)
                    for name, value in answer.headers.items():
                        self.send_header(name, value)
                    self.send_header("Content-Length", "2")
                    self.send_header("Connection", "close")
                    self.end_headers()
                    self.wfile.write(b"ok")
                finally:
                    with receiver.lock:
                        receiver.in_flight[self.path] -= 1

            do_GET = do_POST

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.server.block_on_close = False
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}{path}"

    def plan(self, path: str, *answers: Answer) -> None:
        with self.lock:
            self.plans[path] = list(answers)

    def at(self, path: str) -> list[Received]:
        with self.lock:
            return [r for r in self.requests if r.path == path]


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    made = Receiver()
    made.thread.start()
    try:
        yield made
    finally:
        made.server.shutdown()
        made.server.server_close()


def quick_settings(settings: Settings, **changes: Any) -> Settings:
    """Retries after 5 s x 0.002 = 10 ms, then 0.6 s, 3.6 s, ...; a 2 s timeout."""
    defaults: dict[str, Any] = {
        "webhook_retry_scale": 0.002,
        "webhook_timeout_seconds": 2.0,
        "webhook_poll_seconds": 0.05,
        "outbound_allow_loopback": True,
    }
    return dataclasses.replace(settings, **{**defaults, **changes})


def dispatcher_for(database: Database, settings: Settings) -> WebhookDispatcher:
    return WebhookDispatcher(
        database,
        settings,
        OutboundClient(allow_loopback=True),
        SecretBox(SigningKeys.load_or_create(settings.key_file).secrets()),
    )


@contextlib.asynccontextmanager
async def running(dispatcher: WebhookDispatcher) -> AsyncIterator[WebhookDispatcher]:
    stop = asyncio.Event()
    task = asyncio.create_task(dispatcher.run(stop))
    try:
        yield dispatcher
    finally:
        stop.set()
        await asyncio.wait_for(task, 30)
        await dispatcher.outbound.aclose()


@pytest.fixture
async def quiet_endpoints(database: Database) -> AsyncIterator[None]:
    """Endpoints of earlier tests are disabled, so their dead receivers cost this test nothing."""
    yield
    async with superuser_transaction(database) as session:
        await session.execute(sa.text("UPDATE webhook_endpoints SET status = 'disabled'"))


async def create_endpoint(tenant: TenantHandle, url: str, **fields: Any) -> dict[str, Any]:
    response = await tenant.http.post(
        BASE, json={"url": url, **fields}, headers=await tenant.headers()
    )
    assert response.status_code == 201, response.text
    made: dict[str, Any] = response.json()
    return made


async def emit(
    database: Database, tenant_id: uuid.UUID, count: int = 1, type: str = "finding.created"
) -> list[str]:
    """`count` events in the tenant's feed, as a domain's write would record them."""
    async with database.transaction(tenant_id) as session:
        rows = await session.execute(
            sa.text(
                "INSERT INTO events (tenant_id, type, data) "
                "SELECT :tenant_id, :type, jsonb_build_object('n', g, 'note', 'event ' || g) "
                "FROM generate_series(1, :count) g RETURNING id"
            ),
            {"tenant_id": tenant_id, "type": type, "count": count},
        )
        return [str(r.id) for r in rows]


async def deliveries(tenant: TenantHandle, endpoint_id: str, **params: Any) -> list[dict[str, Any]]:
    response = await tenant.http.get(
        f"{BASE}/{endpoint_id}/deliveries", params=params, headers=await tenant.headers()
    )
    assert response.status_code == 200, response.text
    items: list[dict[str, Any]] = response.json()["items"]
    return items


async def eventually(probe: Any, *, within: float = 10.0, every: float = 0.05) -> Any:
    deadline = time.monotonic() + within
    while True:
        value = await probe()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"not true within {within} s: {probe.__name__}")
        await asyncio.sleep(every)


async def read_endpoint(tenant: TenantHandle, endpoint_id: str) -> httpx.Response:
    return await tenant.http.get(f"{BASE}/{endpoint_id}", headers=await tenant.headers())
