"""HTTP helpers every domain uses: strict body decoding, ETags and If-Match."""

from __future__ import annotations

import hashlib
from typing import Any, Generic, TypeVar

import msgspec
from litestar import Request
from litestar.dto import MsgspecDTO

from wg_api.platform.errors import PreconditionFailed, UnsupportedMediaType

S = TypeVar("S", bound=msgspec.Struct)


class Body(MsgspecDTO[S], Generic[S]):
    """Decodes a request body straight into its Struct with msgspec in strict mode.

    Litestar's default conversion is lax (it would turn "3" into 3); a public API should not be.
    Use as `data_dto=Body[CreateThing]`; errors become 400 (types, unknown fields) or 422 (values).
    """

    def decode_bytes(self, value: bytes) -> Any:
        content_type = self.asgi_connection.headers.get("content-type", "")
        media_type = content_type.split(";", 1)[0].strip().lower()
        if media_type != "application/json" and not media_type.endswith("+json"):
            raise UnsupportedMediaType("Send the body as application/json.")
        return msgspec.json.decode(value, type=self.model_type, strict=True)


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
