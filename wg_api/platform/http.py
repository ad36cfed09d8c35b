"""HTTP helpers every domain uses: strict body decoding, ETags and If-Match, and the guard that
refuses text PostgreSQL cannot store wherever it arrives."""

from __future__ import annotations

import base64
import binascii
import hashlib
from collections.abc import Iterator, Sequence
from datetime import date, datetime
from typing import Any, Generic, TypeVar
from urllib.parse import parse_qsl, unquote

import msgspec
from litestar import Controller, Litestar, Request, Router
from litestar.dto import MsgspecDTO
from litestar.handlers import HTTPRouteHandler
from litestar.openapi.spec import Reference, Schema
from litestar.routes import HTTPRoute
from litestar.types import ControllerRouterHandler, Empty
from litestar.typing import FieldDefinition

from wg_api.platform.asgi import ASGIApp, Message, Receive, Scope, Send, send_problem
from wg_api.platform.errors import (
    FieldError,
    InvalidRequest,
    PreconditionFailed,
    ProblemError,
    UnsupportedMediaType,
    ValidationFailed,
)
from wg_api.platform.validation import UNSTORABLE_MESSAGE, is_storable_text, unstorable_path

S = TypeVar("S", bound=msgspec.Struct)

BODY_OPT_KEY = "data_dto"
# A handler's query parameters read strictly, name -> format ("" for none): Litestar's lax
# conversion (msgspec's) would read the word `null` as None for a nullable parameter that is not
# free text, and a number as a timestamp. Set by openapi.py from the document; the middleware
# refuses what the document does not allow.
STRICT_QUERY_OPT_KEY = "strict_query"
# Formats whose query values are read strictly (Litestar would take `0.5` as a timestamp).
STRICT_FORMATS: dict[str, tuple[type, str]] = {
    "date-time": (datetime, "must be an RFC 3339 timestamp"),
    "date": (date, "must be a date, YYYY-MM-DD"),
}


class Body(MsgspecDTO[S], Generic[S]):
    """Decodes a request body straight into its Struct with msgspec in strict mode.

    Litestar's default conversion is lax (it would turn "3" into 3); a public API should not be.
    Use as `data_dto=Body[CreateThing]` in the route decorator (`strict_bodies` hands it to
    Litestar as the handler's request DTO); errors become 400 (types, unknown fields) or 422
    (values), and a body that is not JSON is 415.
    """

    def decode_bytes(self, value: bytes) -> Any:
        content_type = self.asgi_connection.headers.get("content-type", "")
        media_type = content_type.split(";", 1)[0].strip().lower()
        if media_type != "application/json" and not media_type.endswith("+json"):
            raise UnsupportedMediaType("Send the body as application/json.")
        try:
            decoded = msgspec.json.decode(value, type=self.model_type, strict=True)
        except msgspec.ValidationError as exc:
            # JSON has numbers, not integers: `2.0` is the integer 2 (JSON Schema agrees). Only
            # a body that failed is decoded again, with integral numbers as integers.
            if "Expected `int" not in str(exc) or "got `float`" not in str(exc):
                raise
            decoded = msgspec.convert(
                integral_numbers(msgspec.json.decode(value)), self.model_type, strict=True
            )
        # A NUL can only arrive escaped (a raw one is not JSON; msgspec refuses lone surrogates).
        if b"\\u0000" in value:
            where = unstorable_path(msgspec.json.decode(value))
            if where is not None:
                raise unstorable(where)
        return decoded

    @classmethod
    def create_openapi_schema(
        cls, field_definition: FieldDefinition, handler_id: str, schema_creator: Any
    ) -> Reference | Schema:
        # Document the Struct itself (its name and constraints), not a generated DTO model.
        schema: Reference | Schema = schema_creator.for_field_definition(
            FieldDefinition.from_annotation(cls.model_type)
        )
        return schema


def _http_handlers(handler: ControllerRouterHandler) -> Iterator[HTTPRouteHandler]:
    if isinstance(handler, HTTPRouteHandler):
        yield handler
    elif isinstance(handler, type) and issubclass(handler, Controller):
        for name in dir(handler):
            member = getattr(handler, name, None)
            if isinstance(member, HTTPRouteHandler):
                yield member
    elif isinstance(handler, Router):
        for route in handler.routes:
            for route_handler in getattr(route, "route_handlers", ()):
                if isinstance(route_handler, HTTPRouteHandler):
                    yield route_handler


def strict_bodies(handlers: Sequence[ControllerRouterHandler]) -> list[ControllerRouterHandler]:
    """Give every handler declared with `data_dto=Body[X]` that DTO for its request body only.

    Litestar's decorators take `dto=`/`return_dto=` and keep any other keyword in `opt`, so
    `data_dto=` would otherwise be silently ignored and the body decoded laxly.
    """
    for handler in handlers:
        for route_handler in _http_handlers(handler):
            body = route_handler.opt.pop(BODY_OPT_KEY, None)
            if body is None:
                continue
            if not (isinstance(body, type) and issubclass(body, Body)):
                raise TypeError(f"{route_handler}: data_dto must be Body[SomeStruct]")
            route_handler.dto = body
            if route_handler.return_dto is Empty:
                route_handler.return_dto = None
    return list(handlers)


def etag_of(resource: msgspec.Struct) -> str:
    return '"' + hashlib.sha256(msgspec.json.encode(resource)).hexdigest()[:32] + '"'


def check_if_match(request: Request[Any, Any, Any], current_etag: str) -> None:
    """Honour If-Match on PATCH and DELETE: a stale ETag is 412, `*` matches anything."""
    header = request.headers.get("if-match")
    if header is None:
        return
    candidates = {tag.strip().removeprefix("W/") for tag in header.split(",")}
    if "*" in candidates or current_etag in candidates:
        return
    raise PreconditionFailed("The resource changed since you read it; fetch it and retry.")


def integral_numbers(value: Any) -> Any:
    """A decoded JSON value with every float that has no fractional part made an int."""
    if isinstance(value, float):
        return int(value) if value.is_integer() else value
    if isinstance(value, list):
        return [integral_numbers(item) for item in value]
    if isinstance(value, dict):
        return {key: integral_numbers(item) for key, item in value.items()}
    return value


def unstorable(field: str) -> InvalidRequest:
    return InvalidRequest(
        "The request has text PostgreSQL cannot store.",
        errors=[FieldError(field, UNSTORABLE_MESSAGE)],
    )


FORM_MEDIA_TYPE = "application/x-www-form-urlencoded"
FORM_MEDIA_TYPES = frozenset({FORM_MEDIA_TYPE.encode(), b"multipart/form-data"})
# Values the service reads from headers (credentials, keys, preconditions): checked byte-wise.
_FORM_SCAN_LIMIT = 4 * 1024 * 1024


def _query_problem(query_string: bytes) -> InvalidRequest | None:
    # Percent-decoding with replacement makes no lone surrogate: only a NUL can get through.
    if b"%00" not in query_string and b"\x00" not in query_string:
        return None
    # Decoded as Litestar does (percent-decoding, UTF-8 with replacement): what handlers see.
    for name, value in parse_qsl(query_string.decode("latin-1"), keep_blank_values=True):
        if not (is_storable_text(name) and is_storable_text(value)):
            return unstorable(name if is_storable_text(name) else "query")
    return None


def _header_problem(headers: Sequence[tuple[bytes, bytes]]) -> InvalidRequest | None:
    for raw_name, raw_value in headers:
        name = raw_name.decode("latin-1").lower()
        if b"\x00" in raw_value:
            return unstorable(name)
        if name == "authorization" and raw_value[:6].lower() == b"basic ":
            try:
                decoded = base64.b64decode(raw_value[6:].strip(), validate=True).decode()
            except (binascii.Error, UnicodeDecodeError):
                continue  # the token endpoint answers this one itself
            if not all(is_storable_text(unquote(part)) for part in decoded.split(":", 1)):
                return unstorable(name)
    return None


def _strict_query_problem(scope: Scope) -> ProblemError | None:
    """Query values Litestar's lax conversion would take although the document refuses them:
    the word `null` for a parameter that is not free text, a number for a timestamp or a day."""
    handler = scope.get("route_handler")
    strict: dict[str, str] = getattr(handler, "opt", {}).get(STRICT_QUERY_OPT_KEY, {})
    if not strict or not scope.get("query_string"):
        return None
    for name, value in parse_qsl(scope["query_string"].decode("latin-1"), keep_blank_values=True):
        if name not in strict:
            continue
        message = None
        if value == "null":
            message = "`null` is not a value of this parameter; leave it out"
        elif (kind := STRICT_FORMATS.get(strict[name])) is not None:
            try:
                msgspec.json.decode(msgspec.json.encode(value), type=kind[0], strict=True)
            except msgspec.ValidationError:
                message = kind[1]
        if message is not None:
            # As Litestar answers a date that is not one: a value outside the vocabulary (422).
            return ValidationFailed(
                "Some values are not acceptable.", errors=[FieldError(name, message)]
            )
    return None


def _path_problem(scope: Scope) -> InvalidRequest | None:
    for name, value in (scope.get("path_params") or {}).items():
        if isinstance(value, str) and not is_storable_text(value):
            return unstorable(name)
    path = scope.get("path", "")
    if isinstance(path, str) and not is_storable_text(path):
        return unstorable("path")
    return None


class StorableTextMiddleware:
    """Refuses, with a 400 naming the parameter, any text from outside that PostgreSQL cannot
    store (NUL, lone surrogates): in the query, the path's parameters, header values and
    form bodies. JSON bodies are checked by `Body` (it names the field). Runs after routing
    (Litestar's app middleware), so path parameters have their names; nothing is touched first.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        problem = (
            _query_problem(scope.get("query_string", b""))
            or _strict_query_problem(scope)
            or _path_problem(scope)
            or _header_problem(scope.get("headers", ()))
        )
        if problem is not None:
            await send_problem(send, problem)
            return
        if (form := _form_kind(scope)) is not None:
            receive = _checked_form(receive, form)
        await self.app(scope, receive, send)


def _form_kind(scope: Scope) -> bytes | None:
    """The media type of a form body (urlencoded or multipart), else None."""
    for name, value in scope.get("headers", ()):
        if name.lower() == b"content-type":
            media_type: bytes = value.split(b";", 1)[0].strip().lower()
            return media_type if media_type in FORM_MEDIA_TYPES else None
    return None


def _checked_form(receive: Receive, media_type: bytes) -> Receive:
    """A `receive` that checks a form body once it is complete (the size limit is Litestar's:
    past a generous bound, the scan stops and the body is left to it). A multipart field
    holds its text as it is, so there any NUL byte is refused."""
    seen = bytearray()

    async def checked() -> Message:
        message = await receive()
        if message.get("type") != "http.request" or len(seen) > _FORM_SCAN_LIMIT:
            return message
        seen.extend(message.get("body", b""))
        if not message.get("more_body", False):
            if media_type == FORM_MEDIA_TYPE.encode():
                problem = _query_problem(bytes(seen))
            else:
                problem = unstorable("body") if b"\x00" in seen else None
            if problem is not None:
                raise problem
        return message

    return checked


def fix_options_allow(app: Litestar) -> None:
    """Make every automatic OPTIONS answer list all of its path's methods.

    Litestar makes the OPTIONS handler with the first route built for a path and, when more
    handlers of the same path join, builds a new route but keeps that handler: its `Allow`
    would list only the first handlers' methods. Point each one at the route that serves it.
    """
    for route in app.routes:
        if not isinstance(route, HTTPRoute):
            continue
        for handler in route.route_handlers:
            fn = handler.fn
            if handler.http_methods != {"OPTIONS"} or fn.__name__ != "options_handler":
                continue
            names = fn.__code__.co_freevars
            if "self" in names and fn.__closure__ is not None:
                cell = fn.__closure__[names.index("self")]
                if isinstance(cell.cell_contents, HTTPRoute):
                    cell.cell_contents = route
