"""Architecture rule: every request body is decoded strictly into a Struct that forbids unknown
fields, so a wrong type or a mass-assigned `tenant_id` is a 400, never silently accepted."""

from __future__ import annotations

from collections.abc import Iterator

import msgspec
from litestar.handlers import HTTPRouteHandler

from wg_api.app import create_app
from wg_api.platform.http import Body
from wg_api.settings import Settings


def body_handlers(settings: Settings) -> Iterator[tuple[str, HTTPRouteHandler]]:
    app = create_app(settings)
    for route in app.routes:
        for handler in getattr(route, "route_handlers", ()):
            if isinstance(handler, HTTPRouteHandler) and "data" in (
                handler.parsed_fn_signature.parameters
            ):
                yield route.path, handler


def test_every_body_goes_through_body_with_a_strict_struct(settings):
    handlers = list(body_handlers(settings))
    assert handlers, "no route takes a body; the rule checks nothing"
    wrong = []
    for path, handler in handlers:
        where = f"{sorted(handler.http_methods)} {path}"
        dto = handler.resolve_data_dto()
        if dto is None or not issubclass(dto, Body):
            wrong.append(f"{where}: declare data_dto=Body[YourStruct]")
            continue
        struct = dto.model_type
        if not (
            isinstance(struct, type)
            and issubclass(struct, msgspec.Struct)
            and struct.__struct_config__.forbid_unknown_fields
        ):
            wrong.append(f"{where}: {struct} must be a Struct with forbid_unknown_fields=True")
    assert wrong == []
