"""One database transaction per request, committed before the response leaves, plus Idempotency-Key.

Writes are buffered until the transaction commits, so a client never sees a 201 for a change that
was rolled back. An `Idempotency-Key` belongs to its caller: it is stored under the principal and
its scopes (two integrations with the same deterministic keys never meet), and it is claimed only
after the route's guards passed (`replay_idempotent`, the /v1 router's `before_request`), so a
caller who may not make the request never receives anyone's stored answer. The claim takes a
transaction-level advisory lock (a second request with the same key while the first runs gets 409)
and the response is stored in the same transaction as the change it describes, so a replay can
never disagree with the database.
"""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, TypeAlias, cast

import msgspec
import sqlalchemy as sa
from litestar import Request, Response
from litestar.di import NamedDependency
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncConnection

from wg_api.platform.asgi import ASGIApp, Message, Receive, Scope, Send, send_problem
from wg_api.platform.database import Database
from wg_api.platform.errors import (
    IdempotencyKeyInUse,
    IdempotencyKeyReused,
    InvalidRequest,
    PayloadTooLarge,
    ProblemError,
    TryAgain,
    log_server_error,
    to_problem_error,
)
from wg_api.platform.models import idempotency_keys
from wg_api.settings import Settings

SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
REPLAYED_HEADERS = ("content-type", "location", "etag")
TX_SCOPE_KEY = "wg.tx"
IDEMPOTENCY_SCOPE_KEY = "wg.idempotency"
# Secrets are shown once and stored only as hashes: a stored replay never keeps them.
SECRET_FIELDS = frozenset({"client_secret", "secret"})
# The opt key a route handler sets (`streamed_body=True` in its decorator) to read its own body.
STREAMED_BODY = "streamed_body"


class RequestTransaction:
    """The lazily opened connection of one request, bound to the caller's tenant."""

    def __init__(
        self, database: Database, tenant_id: uuid.UUID | None, shared_event_delay_seconds: float
    ) -> None:
        self.database = database
        self.tenant_id = tenant_id
        self.shared_event_delay_seconds = shared_event_delay_seconds
        self._connection: AsyncConnection | None = None
        self._slot = False

    async def session(self) -> AsyncConnection:
        """The request's connection: a slot taken now (in arrival order), the pooled connection
        at its first statement, which begins the transaction and binds the tenant."""
        if self._connection is None:
            slots = self.database.request_slots
            if slots is not None and not self._slot:
                # In arrival order: no request starves while others take turns (FairGate).
                if not await slots.acquire(self.database.request_wait_seconds):
                    raise TryAgain(headers={"Retry-After": "1"})
                self._slot = True
            self._connection = self.database.connection(
                self.tenant_id, shared_event_delay_seconds=self.shared_event_delay_seconds
            )
        return self._connection

    async def commit(self) -> None:
        if self._connection is not None:
            await self._connection.commit()

    async def close(self) -> None:
        try:
            if self._connection is not None:
                await self._connection.close()
                self._connection = None
        finally:
            if self._slot and self.database.request_slots is not None:
                self._slot = False
                self.database.request_slots.release()


class StoredResponse(msgspec.Struct):
    status: int
    headers: dict[str, str]
    body: bytes


@dataclass
class PendingKey:
    """An Idempotency-Key read by the middleware, claimed (or replayed) after the guards."""

    key: str
    request_hash: bytes
    stored_key: str | None = None
    replayed: bool = False
    # A streamed body: the digest is computed as the handler reads it; `earlier` is the answer
    # stored under the key, compared once the digest is known.
    streamed: bool = False
    digest: Any = field(default=None, repr=False)
    earlier: tuple[bytes, StoredResponse] | None = None
    # Top-level fields of the answer kept as null for replays: secrets shown once (a route whose
    # answer holds another secret, such as a feed's URL, adds its field).
    secret_fields: frozenset[str] = SECRET_FIELDS


def caller_tenant(scope: Scope) -> uuid.UUID | None:
    tenant_id = getattr(scope.get("user"), "tenant_id", None)
    return tenant_id if isinstance(tenant_id, uuid.UUID) else None


DbSession: TypeAlias = NamedDependency[AsyncConnection]


async def provide_db_session(request: Request[Any, Any, Any]) -> AsyncConnection:
    """Litestar dependency: the request's connection (its transaction is the middleware's)."""
    tx: RequestTransaction = cast(Scope, request.scope)[TX_SCOPE_KEY]
    return await tx.session()


def caller_key(scope: Scope, key: str) -> str | None:
    """The key as stored: the client's key within its caller (the principal's
    `idempotency_scope`: who it is and what its token may do); None without a caller."""
    caller = getattr(scope.get("user"), "idempotency_scope", None)
    if not isinstance(caller, str):
        return None
    return hashlib.sha256(f"{caller}\n{key}".encode()).hexdigest()


def _lock_key(tenant_id: uuid.UUID, key: str) -> int:
    digest = hashlib.blake2b(f"{tenant_id}:{key}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big", signed=True)


def _idempotency_key(scope: Scope) -> str | None:
    for name, value in scope["headers"]:
        if name == b"idempotency-key":
            key: str = value.decode("latin-1")
            if not 1 <= len(key) <= 255 or not key.isprintable():
                raise InvalidRequest(
                    "Idempotency-Key must be 1 to 255 printable characters.",
                )
            return key
    return None


class TransactionMiddleware:
    """Pure ASGI middleware; it must sit inside authentication so the tenant is known."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        state = scope["litestar_app"].state
        settings: Settings = state["settings"]
        tx = RequestTransaction(
            state["database"], caller_tenant(scope), settings.shared_event_delay_seconds
        )
        scope[TX_SCOPE_KEY] = tx
        try:
            if scope["method"] in SAFE_METHODS:
                await self.app(scope, receive, send)
            else:
                await self._write(scope, receive, send, tx, state["settings"])
        finally:
            await tx.close()

    async def _write(
        self, scope: Scope, receive: Receive, send: Send, tx: RequestTransaction, settings: Settings
    ) -> None:
        try:
            key = _idempotency_key(scope) if scope["method"] == "POST" else None
            streamed = key is not None and _streams_body(scope)
            body = (
                await _read_body(receive, settings.max_body_bytes) if key and not streamed else None
            )
        except ProblemError as error:
            await send_problem(send, error)
            return
        pending: PendingKey | None = None
        if key is not None and tx.tenant_id is not None and streamed:
            digest = hashlib.sha256(
                b"\n".join(
                    [scope["method"].encode(), scope["raw_path"], scope["query_string"], b""]
                )
            )
            pending = scope[IDEMPOTENCY_SCOPE_KEY] = PendingKey(
                key, b"", streamed=True, digest=digest
            )
        elif key is not None and tx.tenant_id is not None and body is not None:
            request_hash = hashlib.sha256(
                b"\n".join(
                    [scope["method"].encode(), scope["raw_path"], scope["query_string"], body]
                )
            ).digest()
            pending = scope[IDEMPOTENCY_SCOPE_KEY] = PendingKey(key, request_hash)
            receive = _replay_body(body)

        messages: list[Message] = []

        async def capture(message: Message) -> None:
            messages.append(message)

        await self.app(scope, receive, capture)
        status = next((m["status"] for m in messages if m["type"] == "http.response.start"), 500)
        if status < 400:
            try:
                stored_key = pending.stored_key if pending and not pending.replayed else None
                # A streamed body the handler did not read to its end has no digest: nothing to
                # keep.
                if stored_key is not None and pending is not None and not pending.request_hash:
                    stored_key = None
                if stored_key is not None and tx.tenant_id is not None and pending is not None:
                    ttl = timedelta(hours=settings.idempotency_ttl_hours)
                    await store_response(
                        await tx.session(),
                        tx.tenant_id,
                        stored_key,
                        pending.request_hash,
                        messages,
                        ttl,
                        pending.secret_fields,
                    )
                await tx.commit()
            except Exception as exc:
                # The handler's answer is in hand but not sent: Litestar already counts the
                # response as started, so the failure (a lost connection at commit: 503, and
                # with an Idempotency-Key a retry replays whatever did commit) is answered here.
                failure = to_problem_error(exc)
                log_server_error(scope["method"], scope["path"], exc, failure)
                await send_problem(send, failure)
                return
        for message in messages:
            await send(message)


async def replay_idempotent(request: Request[Any, Any, Any]) -> Response[bytes] | None:
    """`before_request` of /v1: runs after the guards; answers a replay or claims the key."""
    scope = cast(Scope, request.scope)
    pending: PendingKey | None = scope.get(IDEMPOTENCY_SCOPE_KEY)
    tx: RequestTransaction | None = scope.get(TX_SCOPE_KEY)
    if pending is None or tx is None or tx.tenant_id is None:
        return None
    stored_key = caller_key(scope, pending.key)
    if stored_key is None:
        return None
    if pending.streamed:
        pending.earlier = await claim_streamed(await tx.session(), tx.tenant_id, stored_key)
        pending.stored_key = stored_key
        return None
    stored = await claim(await tx.session(), tx.tenant_id, stored_key, pending.request_hash)
    if stored is None:
        pending.stored_key = stored_key
        return None
    pending.replayed = True
    return _replayed(stored)


def _streams_body(scope: Scope) -> bool:
    handler = scope.get("route_handler")
    opt = getattr(handler, "opt", None)
    return isinstance(opt, dict) and bool(opt.get(STREAMED_BODY))


async def stream_body(request: Request[Any, Any, Any], limit: int) -> AsyncIterator[bytes]:
    """The body of a `streamed_body` route, chunk by chunk: 413 past `limit` bytes (at once when
    Content-Length says so), and the Idempotency-Key digest computed on the way."""
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise PayloadTooLarge(f"The body is over the limit of {limit} bytes.")
    pending: PendingKey | None = cast(Scope, request.scope).get(IDEMPOTENCY_SCOPE_KEY)
    digest = pending.digest if pending is not None and pending.streamed else None
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise PayloadTooLarge(f"The body is over the limit of {limit} bytes.")
        if digest is not None:
            digest.update(chunk)
        yield chunk
    if pending is not None and digest is not None:
        pending.request_hash = digest.digest()


def replay_streamed(request: Request[Any, Any, Any]) -> Response[bytes] | None:
    """After `stream_body` was read to its end, before any write: the stored answer for this
    key and body (a replay), 422 for this key with another body, or None to go on."""
    pending: PendingKey | None = cast(Scope, request.scope).get(IDEMPOTENCY_SCOPE_KEY)
    if pending is None or not pending.streamed or pending.earlier is None:
        return None
    request_hash, stored = pending.earlier
    if not pending.request_hash or request_hash != pending.request_hash:
        raise IdempotencyKeyReused()
    pending.replayed = True
    return _replayed(stored)


def _replayed(stored: StoredResponse) -> Response[bytes]:
    headers = {k: v for k, v in stored.headers.items() if k.lower() != "content-type"}
    return Response(
        stored.body,
        status_code=stored.status,
        media_type=stored.headers.get("content-type", "application/json"),
        headers={**headers, "Idempotent-Replayed": "true"},
    )


async def claim_streamed(
    session: AsyncConnection, tenant_id: uuid.UUID, key: str
) -> tuple[bytes, StoredResponse] | None:
    """`claim` for a streamed body, whose digest is not known yet: lock the key and answer what
    is stored under it with its request digest, for `replay_streamed` to compare."""
    locked = await session.scalar(
        sa.select(sa.func.pg_try_advisory_xact_lock(_lock_key(tenant_id, key)))
    )
    if not locked:
        raise IdempotencyKeyInUse()
    row = (
        await session.execute(
            sa.select(
                idempotency_keys.c.request_hash,
                idempotency_keys.c.status_code,
                idempotency_keys.c.headers,
                idempotency_keys.c.body,
            ).where(
                idempotency_keys.c.tenant_id == tenant_id,
                idempotency_keys.c.key == key,
                idempotency_keys.c.expires_at > sa.func.now(),
            )
        )
    ).one_or_none()
    if row is None:
        return None
    stored = StoredResponse(status=row.status_code, headers=row.headers, body=bytes(row.body))
    return bytes(row.request_hash), stored


async def claim(
    session: AsyncConnection, tenant_id: uuid.UUID, key: str, request_hash: bytes
) -> StoredResponse | None:
    """Lock the stored key for this transaction; its stored answer when the same request was
    answered before (409 while another request holds it, 422 when the body differs)."""
    earlier = await claim_streamed(session, tenant_id, key)
    if earlier is None:
        return None
    if earlier[0] != request_hash:
        raise IdempotencyKeyReused()
    return earlier[1]


async def store_response(
    session: AsyncConnection,
    tenant_id: uuid.UUID,
    key: str,
    request_hash: bytes,
    messages: list[Message],
    ttl: timedelta,
    secret_fields: frozenset[str] = SECRET_FIELDS,
) -> None:
    start = next(m for m in messages if m["type"] == "http.response.start")
    headers = {
        name.decode("latin-1"): value.decode("latin-1")
        for name, value in start.get("headers", [])
        if name.decode("latin-1").lower() in REPLAYED_HEADERS
    }
    body = _without_secrets(
        b"".join(m.get("body", b"") for m in messages if m["type"] == "http.response.body"),
        secret_fields,
    )
    expires_at = datetime.now(UTC) + ttl
    statement = insert(idempotency_keys).values(
        tenant_id=tenant_id,
        key=key,
        request_hash=request_hash,
        status_code=start["status"],
        headers=headers,
        body=body,
        expires_at=expires_at,
    )
    # An expired row with the same key may still be waiting for the purge job.
    await session.execute(
        statement.on_conflict_do_update(
            index_elements=[idempotency_keys.c.tenant_id, idempotency_keys.c.key],
            set_={
                "request_hash": statement.excluded.request_hash,
                "status_code": statement.excluded.status_code,
                "headers": statement.excluded.headers,
                "body": statement.excluded.body,
                "created_at": sa.func.now(),
                "expires_at": statement.excluded.expires_at,
            },
        )
    )


def _replay_body(body: bytes) -> Receive:
    sent = False

    async def receive() -> Message:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        return {"type": "http.disconnect"}

    return receive


async def _read_body(receive: Receive, limit: int) -> bytes:
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] != "http.request":
            break
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            raise PayloadTooLarge()
        chunks.append(chunk)
        if not message.get("more_body", False):
            break
    return b"".join(chunks)


def _without_secrets(body: bytes, secret_fields: frozenset[str] = SECRET_FIELDS) -> bytes:
    """The response body to keep for replays: top-level secret fields become null."""
    if not any(field.encode() in body for field in secret_fields):
        return body
    try:
        document = msgspec.json.decode(body)
    except msgspec.DecodeError:
        return body
    if not isinstance(document, dict):
        return body
    return msgspec.json.encode(
        {k: (None if k in secret_fields else v) for k, v in document.items()}
    )
