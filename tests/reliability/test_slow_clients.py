"""A client that trickles its body, or never finishes it, does not hold the server forever: the
body must arrive within WG_BODY_TIMEOUT_SECONDS of the request's start (408), and the server
goes on answering everyone else meanwhile."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import time

import httpx
import pytest

from tests.reliability.conftest import PROBLEM_JSON, new_caller, serve_on_socket
from wg_api.app import asgi_app
from wg_api.platform.database import Database
from wg_api.settings import Settings

BODY_TIMEOUT = 1.5


@pytest.fixture
async def served(settings: Settings, database: Database):
    impatient = dataclasses.replace(settings, body_timeout_seconds=BODY_TIMEOUT)
    async with serve_on_socket(asgi_app(impatient, database)) as base_url:
        yield base_url


async def _raw_request(base_url: str, head: bytes, body_parts: list[bytes], gap: float) -> bytes:
    """Send `head`, then each part of the body `gap` seconds apart, until the server answers and
    closes; answer what came back."""
    host, port = base_url.removeprefix("http://").split(":")
    reader, writer = await asyncio.open_connection(host, int(port))
    received = bytearray()

    async def read_all() -> None:
        with contextlib.suppress(ConnectionError):
            while chunk := await reader.read(65536):
                received.extend(chunk)

    reading = asyncio.create_task(read_all())
    try:
        writer.write(head)
        for part in body_parts:
            await asyncio.sleep(gap)
            if reading.done() or writer.is_closing():
                break
            writer.write(part)
        await asyncio.wait_for(reading, 10)
        return bytes(received)
    finally:
        writer.close()


def _head(path: str, token: str, length: int, extra: str = "") -> bytes:
    return (
        f"POST {path} HTTP/1.1\r\nHost: testserver\r\nAuthorization: Bearer {token}\r\n"
        f"Content-Type: application/json\r\nContent-Length: {length}\r\n{extra}\r\n"
    ).encode()


async def _token(base_url: str, database: Database) -> tuple[str, dict[str, str]]:
    caller = await new_caller(database)
    async with httpx.AsyncClient(base_url=base_url) as http:
        headers = await caller.headers(http)
    return headers["Authorization"].removeprefix("Bearer "), headers


@pytest.mark.parametrize("idempotent", [False, True])
async def test_a_body_sent_byte_by_byte_is_cut_off_with_408(served, database, idempotent):
    token, headers = await _token(served, database)
    body = b'{"name": "Trickle Garments Ltd", "country": "VN"}'
    extra = "Idempotency-Key: trickle-1\r\n" if idempotent else ""
    started = time.monotonic()
    reading = asyncio.create_task(
        _raw_request(
            served,
            _head("/v1/suppliers", token, len(body), extra),
            [bytes([b]) for b in body],
            gap=0.2,
        )
    )
    # Everyone else is answered meanwhile.
    async with httpx.AsyncClient(base_url=served) as http:
        for _ in range(3):
            assert (await http.get("/v1/me", headers=headers)).status_code == 200
            await asyncio.sleep(0.2)
    answer = await reading
    elapsed = time.monotonic() - started
    status_line, _, rest = answer.partition(b"\r\n")
    assert status_line.startswith(b"HTTP/1.1 408"), answer[:300]
    assert PROBLEM_JSON.encode() in rest
    assert b"/problems/request-timeout" in rest
    assert elapsed < BODY_TIMEOUT + 3, f"answered after {elapsed:.2f} s"
    async with httpx.AsyncClient(base_url=served) as http:
        listed = await http.get("/v1/suppliers", headers=headers)
    assert listed.json()["items"] == []


async def test_a_body_never_finished_is_cut_off_with_408(served, database):
    token, _ = await _token(served, database)
    started = time.monotonic()
    answer = await _raw_request(served, _head("/v1/findings", token, 500) + b'{"kind":', [], 0)
    elapsed = time.monotonic() - started
    assert answer.startswith(b"HTTP/1.1 408"), answer[:300]
    assert BODY_TIMEOUT - 0.1 < elapsed < BODY_TIMEOUT + 3, f"answered after {elapsed:.2f} s"


async def test_the_token_endpoint_is_bounded_too(served):
    started = time.monotonic()
    head = (
        b"POST /oauth/token HTTP/1.1\r\nHost: testserver\r\n"
        b"Content-Type: application/x-www-form-urlencoded\r\nContent-Length: 200\r\n\r\n"
        b"grant_type=client_"
    )
    answer = await _raw_request(served, head, [], 0)
    assert answer.startswith(b"HTTP/1.1 408"), answer[:300]
    assert time.monotonic() - started < BODY_TIMEOUT + 3
