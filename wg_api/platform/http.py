"""HTTP helpers every domain uses: strict body decoding, ETags and If-Match."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator, Sequence
from typing import Any, Generic, TypeVar

import msgspec
from litestar import Controller, Request, Router
from litestar.dto import MsgspecDTO
from litestar.handlers import HTTPRouteHandler
from litestar.openapi.spec import Reference, Schema
from litestar.types import ControllerRouterHandler, Empty
from litestar.typing import FieldDefinition

from wg_api.platform.errors import PreconditionFailed, UnsupportedMediaType

S = TypeVar("S", bound=msgspec.Struct)

BODY_OPT_KEY = "data_dto"


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
        return msgspec.json.decode(value, type=self.model_type, strict=True)

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
