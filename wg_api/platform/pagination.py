"""Keyset pagination: `?limit=&cursor=`, `{"items", "next_cursor"}` and a `Link: rel="next"` header.

A cursor is the sort key of the last item of a page, opaque to clients (base64url JSON), so pages
stay stable while rows are inserted concurrently.
"""

from __future__ import annotations

import base64
import binascii
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Annotated, Any, Generic, TypeAlias, TypeVar
from urllib.parse import urlencode

import msgspec
from litestar import Request, Response
from litestar.di import NamedDependency
from litestar.params import QueryParameter

from wg_api.platform.errors import InvalidRequest

T = TypeVar("T")

PAGE_DEFAULT = 50
BAD_CURSOR = "The cursor is not valid; use next_cursor as given."
PAGE_MAX = 200


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
        values = msgspec.json.decode(base64.urlsafe_b64decode(padded.encode("ascii")))
    except (binascii.Error, ValueError, msgspec.DecodeError, UnicodeEncodeError) as exc:
        raise InvalidRequest(BAD_CURSOR) from exc
    if not isinstance(values, list) or (arity is not None and len(values) != arity):
        raise InvalidRequest(BAD_CURSOR)
    return tuple(values)


def provide_page_params(
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
    return PageParams(limit=limit, after=decode_cursor(cursor) if cursor else None)


def page_response(request: Request[Any, Any, Any], page: P) -> Response[P]:
    headers: dict[str, str] = {}
    if page.next_cursor is not None:
        query = {k: v for k, v in request.query_params.items() if k != "cursor"}
        query["cursor"] = page.next_cursor
        url = f"{request.base_url}{request.url.path.lstrip('/')}?{urlencode(query)}"
        headers["Link"] = f'<{url}>; rel="next"'
    return Response(page, headers=headers)


def paginate(rows: Sequence[T], limit: int, cursor_of: Any) -> Page[T]:
    """Given up to `limit + 1` rows, answer the page and a cursor if there is more."""
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
