"""Keyset pagination: `?limit=&cursor=`, `{"items", "next_cursor"}` and a `Link: rel="next"` header.

A cursor is the sort key of the last item of a page, so pages stay stable while rows are inserted
concurrently. What clients get is that key sealed by `CursorCipher` (AES-GCM under a key derived
from the service's signing keys, bound to where it was issued): opaque, and a tampered or foreign
cursor is a 400.
"""

from __future__ import annotations

import base64
import binascii
import os
import re
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Annotated, Any, Generic, TypeAlias, TypeVar
from urllib.parse import unquote_plus, urlencode

import msgspec
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from litestar import Request, Response
from litestar.di import NamedDependency
from litestar.params import QueryParameter
from sqlalchemy.ext.asyncio import AsyncConnection

from wg_api.platform.errors import InvalidRequest

T = TypeVar("T")

PAGE_DEFAULT = 50
BAD_CURSOR = "The cursor is not valid; use next_cursor as given."
PAGE_MAX = 200
CURSOR_CIPHER_STATE_KEY = "cursor_cipher"
_NONCE_BYTES = 12


class CursorCipher:
    """Seals cursor values into opaque tokens and opens them again.

    One AES-256-GCM key per secret (derived with HKDF-SHA256), the first one sealing and all of
    them opening, so cursors survive a key rotation while the older key is kept. `context` (where
    the cursor was issued: the list's path, the tenant) is authenticated, so a cursor used
    elsewhere fails like a tampered one.
    """

    def __init__(self, secrets: Sequence[bytes]) -> None:
        if not secrets:
            raise ValueError("a cursor cipher needs at least one secret")
        self._keys = [
            AESGCM(
                HKDF(
                    algorithm=hashes.SHA256(), length=32, salt=None, info=b"wg-api cursors v1"
                ).derive(secret)
            )
            for secret in secrets
        ]

    def seal(self, values: Sequence[Any], context: str) -> str:
        nonce = os.urandom(_NONCE_BYTES)
        sealed = self._keys[0].encrypt(nonce, msgspec.json.encode(list(values)), context.encode())
        return base64.urlsafe_b64encode(nonce + sealed).rstrip(b"=").decode("ascii")

    def open(self, token: str, context: str, arity: int | None = None) -> tuple[Any, ...]:
        try:
            raw = base64.urlsafe_b64decode((token + "=" * (-len(token) % 4)).encode("ascii"))
        except (binascii.Error, ValueError, UnicodeEncodeError) as exc:
            raise InvalidRequest(BAD_CURSOR) from exc
        nonce, sealed = raw[:_NONCE_BYTES], raw[_NONCE_BYTES:]
        for key in self._keys:
            try:
                plain = key.decrypt(nonce, sealed, context.encode())
            except (InvalidTag, ValueError):
                continue
            return decode_values(plain, arity)
        raise InvalidRequest(BAD_CURSOR)


class Page(msgspec.Struct, Generic[T]):
    items: list[T]
    next_cursor: str | None


# A page, or a domain's page with fields of its own added.
P = TypeVar("P", bound=Page[Any])


@dataclass(frozen=True)
class PageParams:
    limit: int
    after: tuple[Any, ...] | None


Pagination: TypeAlias = NamedDependency[PageParams]


def encode_cursor(values: Sequence[Any]) -> str:
    raw = msgspec.json.encode(list(values))
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


def decode_cursor(cursor: str, arity: int | None = None) -> tuple[Any, ...]:
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        raw = base64.urlsafe_b64decode(padded.encode("ascii"))
    except (binascii.Error, ValueError, UnicodeEncodeError) as exc:
        raise InvalidRequest(BAD_CURSOR) from exc
    return decode_values(raw, arity)


def decode_values(raw: bytes, arity: int | None = None) -> tuple[Any, ...]:
    try:
        values = msgspec.json.decode(raw)
    except msgspec.DecodeError as exc:
        raise InvalidRequest(BAD_CURSOR) from exc
    if not isinstance(values, list) or (arity is not None and len(values) != arity):
        raise InvalidRequest(BAD_CURSOR)
    return tuple(values)


def page_context(request: Request[Any, Any, Any]) -> str:
    """Where a list cursor is valid: this list (its path) for this tenant."""
    tenant_id = getattr(request.scope.get("user"), "tenant_id", None)
    return f"page:{tenant_id}:{request.url.path}"


def provide_page_params(
    request: Request[Any, Any, Any],
    # Unused: it orders the two dependencies. Litestar resolves dependencies that do not depend
    # on each other concurrently, in an anyio task group, which cost every list request about
    # 50 µs of CPU (bench/README.md); one after the other, they cost nothing. Every list reads
    # the database, and the session's transaction begins lazily, at its first statement.
    db_session: NamedDependency[AsyncConnection],
    limit: Annotated[
        int,
        QueryParameter(
            name="limit",
            ge=1,
            le=PAGE_MAX,
            description=f"Page size, 1 to {PAGE_MAX} (default {PAGE_DEFAULT}).",
        ),
    ] = PAGE_DEFAULT,
    cursor: Annotated[
        str | None,
        QueryParameter(
            name="cursor", max_length=1024, description="The `next_cursor` of the previous page."
        ),
    ] = None,
) -> PageParams:
    if not cursor:
        return PageParams(limit=limit, after=None)
    cipher: CursorCipher = request.app.state[CURSOR_CIPHER_STATE_KEY]
    return PageParams(limit=limit, after=cipher.open(cursor, page_context(request)))


def page_response(request: Request[Any, Any, Any], page: P) -> Response[P]:
    """The page as clients get it: its cursor sealed for this list, and the `Link` header."""
    headers: dict[str, str] = {}
    if page.next_cursor is not None:
        cipher: CursorCipher = request.app.state[CURSOR_CIPHER_STATE_KEY]
        sealed = cipher.seal(decode_cursor(page.next_cursor), page_context(request))
        page = msgspec.structs.replace(page, next_cursor=sealed)
        query = _query_with_cursor(request, sealed)
        headers["Link"] = f'<{request.base_url}{request.url.path.lstrip("/")}?{query}>; rel="next"'
    return Response(page, headers=headers)


# Unreserved and sub-delimiter characters, percent escapes and the query's own separators: none
# needs quoting, and none ends the URL in a `Link` header (`>`, `"`, space).
_PLAIN_QUERY = re.compile(rb"(?:[A-Za-z0-9\-._~!$'()*+,;=:@/?&]|%[0-9A-Fa-f]{2})*")


def _query_with_cursor(request: Request[Any, Any, Any], cursor: str) -> str:
    """The request's query without its cursor, then `cursor=` the next one (URL-safe base64).
    The other parameters as the client encoded them when every byte is one a URL may hold as it
    is (a list's hot path: nothing decoded and encoded again); else decoded and encoded anew."""
    raw: bytes = request.scope.get("query_string", b"")
    if _PLAIN_QUERY.fullmatch(raw):
        kept = [
            part
            for part in raw.decode("ascii").split("&")
            if part and unquote_plus(part.partition("=")[0]) != "cursor"
        ]
        return "&".join([*kept, f"cursor={cursor}"])
    query = {k: v for k, v in request.query_params.items() if k != "cursor"}
    query["cursor"] = cursor
    return urlencode(query)


def limit_clause(args: list[Any], rows: int, *, filtered: bool) -> str:
    """The `LIMIT` of a hot list's prepared SELECT that reads `rows` rows (`args` its
    parameters, appended to).

    With a filter the limit is a parameter: PostgreSQL then plans each call with the filter's
    values (a generic plan, made once for every value, walks the list's index past the rows a
    rare value would find through another index). Without one, every call has the same best
    plan, one range of the list's index: a literal limit lets the prepared statement keep its
    generic plan instead of planning each page anew (about 0.3 ms of the database's time for a
    page of shared findings)."""
    if filtered:
        args.append(rows)
        return f"LIMIT ${len(args)}"
    return f"LIMIT {int(rows)}"


def paginate(rows: Sequence[T], limit: int, cursor_of: Any) -> Page[T]:
    """Given up to `limit + 1` rows, answer the page and a cursor if there is more (the plain
    sort key: `page_response` seals it)."""
    items = list(rows[:limit])
    next_cursor = encode_cursor(cursor_of(items[-1])) if len(rows) > limit and items else None
    return Page(items=items, next_cursor=next_cursor)


def text(value: Any) -> str:
    if not isinstance(value, str):
        raise TypeError("not a string")
    return value


def moment(value: Any) -> datetime:
    """An aware timestamp, as `datetime.isoformat()` wrote it into the cursor."""
    parsed = datetime.fromisoformat(text(value))
    if parsed.tzinfo is None:
        raise ValueError("naive timestamp")
    return parsed


def day(value: Any) -> date:
    return date.fromisoformat(text(value))


def whole_number(value: Any) -> int:
    if type(value) is not int:
        raise TypeError("not an integer")
    return value


def identifier(value: Any) -> uuid.UUID:
    return uuid.UUID(text(value))


def keyset(after: tuple[Any, ...] | None, *kinds: Callable[[Any], Any]) -> tuple[Any, ...] | None:
    """The typed sort-key values of a decoded cursor, one converter per position, e.g.
    `keyset(page.after, day, identifier)`; a cursor of any other shape is a 400."""
    if after is None:
        return None
    if len(after) != len(kinds):
        raise InvalidRequest(BAD_CURSOR)
    try:
        return tuple(kind(value) for kind, value in zip(kinds, after, strict=True))
    except (ValueError, TypeError, AttributeError) as exc:
        raise InvalidRequest(BAD_CURSOR) from exc
