"""The OpenAPI document as tools trust it: every error answer each operation really gives, as our
problem details, and parameters declared as strictly as the service checks them.

Litestar documents the success answer and, for a handler with parameters, a 400 with its own
validation schema as `application/json`; the service answers every error as
`application/problem+json` (errors.py). `refine_openapi` rewrites the built document once, from
what each route declares: its access (authenticated: 401, 429, 503; a scope or role: 403), its
path parameters (404), its body (400, 413, 415, 422), its method (unsafe: 409 and 422 for
`Idempotency-Key`; If-Match: 412). The few answers no declaration reveals are in `EXTRA_STATUSES`.
"""

from __future__ import annotations

import inspect
from collections.abc import Iterator
from typing import Any

import msgspec
from litestar import Litestar
from litestar.handlers import HTTPRouteHandler
from litestar.openapi.spec import (
    OpenAPI,
    OpenAPIMediaType,
    OpenAPIResponse,
    OpenAPIType,
    Operation,
    Parameter,
    Reference,
    Schema,
)
from litestar.routes import HTTPRoute

from wg_api.platform.errors import PROBLEM_KINDS, PROBLEM_MEDIA_TYPE, ProblemError
from wg_api.platform.http import STRICT_FORMATS, STRICT_QUERY_OPT_KEY, Body

PROBLEM_REF = Reference(ref="#/components/schemas/Problem")
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})

# What `CursorCipher.seal` produces: unpadded base64url of a 12-byte nonce, the sealed JSON
# (at least `[]`) and a 16-byte tag, so at least 40 characters; the service reads up to the
# parameter's maximum. A well-formed cursor the service did not issue is still a 400.
# An empty value is no cursor (the first page), as the service reads it.
CURSOR_PATTERN = r"^(?:[A-Za-z0-9_-]{40,})?$"
CURSOR_PARAMETERS = frozenset({"cursor", "after"})
NO_NUL_PATTERN = r"^[^\u0000]*$"

# Answers no declaration shows, by (method, path as documented).
EXTRA_STATUSES: dict[tuple[str, str], frozenset[int]] = {
    ("GET", "/v1/events"): frozenset({410}),
    ("GET", "/readyz"): frozenset({503}),
    # A supplier filter naming a supplier the caller does not link to: as an unknown one.
    ("GET", "/v1/audit-overlaps"): frozenset({404}),
    # The streamed body's size and media type are checked by the route itself.
    ("POST", "/v1/findings/import"): frozenset({413, 415}),
}
# Operations with a second success status, answered with the same body as the documented one.
EXTRA_SUCCESS: dict[tuple[str, str], tuple[int, str]] = {
    ("POST", "/v1/suppliers"): (200, "Linked to a supplier already in the registry"),
    ("PUT", "/v1/findings/by-external-id/{external_id}"): (201, "Created"),
}
# Operations answering another media type on request (`?format=`), beside their JSON.
EXTRA_MEDIA_TYPES: dict[tuple[str, str], tuple[str, ...]] = {
    ("GET", "/v1/initiatives/{initiative_id}/statement"): ("text/csv",),
    ("GET", "/v1/findings/export"): ("application/x-ndjson", "text/csv"),
}
# Rules of a parameter its annotation does not carry, by (method, path, name).
PARAMETER_PATTERNS: dict[tuple[str, str, str], str] = {
    # Comma-separated event types of at most 100 characters each (longer: 400).
    ("GET", "/v1/events", "types"): r"^[^,\u0000]{0,100}(,[^,\u0000]{0,100})*$",
}
TOKEN_PATH = "/oauth/token"  # noqa: S105 (a path, not a secret)

_TITLES = {
    400: "Invalid request",
    401: "Unauthorized",
    403: "Forbidden",
    404: "Not found",
    409: "Conflict, or an Idempotency-Key still in use",
    410: "Gone",
    412: "Precondition failed",
    413: "Payload too large",
    415: "Unsupported media type",
    422: "Validation failed, or an Idempotency-Key reused with another request",
    429: "Too many requests",
    503: "Service unavailable, or try again",
}


def problem_schemas() -> dict[str, Schema]:
    kinds = sorted(PROBLEM_KINDS)
    return {
        "FieldError": Schema(
            type=OpenAPIType.OBJECT,
            required=["field", "message"],
            properties={
                "field": Schema(type=OpenAPIType.STRING),
                "message": Schema(type=OpenAPIType.STRING),
            },
        ),
        "Problem": Schema(
            type=OpenAPIType.OBJECT,
            description="RFC 9457 problem details: the body of every error answer. `type` "
            "resolves to a description of the kind: " + ", ".join(kinds) + ".",
            required=["type", "title", "status", "detail"],
            properties={
                "type": Schema(type=OpenAPIType.STRING, description="`/problems/<kind>`"),
                "title": Schema(type=OpenAPIType.STRING),
                "status": Schema(type=OpenAPIType.INTEGER),
                "detail": Schema(type=OpenAPIType.STRING),
                "errors": Schema(
                    type=OpenAPIType.ARRAY,
                    items=Reference(ref="#/components/schemas/FieldError"),
                    description="Which fields or parameters were refused, and why.",
                ),
            },
        ),
    }


def oauth_schemas() -> dict[str, Schema]:
    text = Schema(type=OpenAPIType.STRING)
    return {
        "TokenRequest": Schema(
            type=OpenAPIType.OBJECT,
            description="RFC 6749 §4.4; the client may authenticate with HTTP Basic instead.",
            required=["grant_type"],
            properties={
                "grant_type": Schema(type=OpenAPIType.STRING, enum=["client_credentials"]),
                "scope": Schema(
                    type=OpenAPIType.STRING, description="Space-separated; default: all granted."
                ),
                "client_id": text,
                "client_secret": text,
            },
        ),
        "TokenResponse": Schema(
            type=OpenAPIType.OBJECT,
            required=["access_token", "token_type", "expires_in"],
            properties={
                "access_token": text,
                "token_type": Schema(type=OpenAPIType.STRING, enum=["Bearer"]),
                "expires_in": Schema(type=OpenAPIType.INTEGER),
                "scope": text,
            },
        ),
        "OAuthError": Schema(
            type=OpenAPIType.OBJECT,
            description="RFC 6749 §5.2.",
            required=["error"],
            properties={"error": text, "error_description": text},
        ),
    }


def _schema_ref(name: str) -> Reference:
    return Reference(ref=f"#/components/schemas/{name}")


def _document_token_endpoint(operation: Operation) -> None:
    """The token endpoint speaks RFC 6749 (form in, `application/json` errors out); only a
    request the service refuses before reading it (text it cannot store, a database that is
    not there) is problem details."""
    from litestar.openapi.spec import RequestBody

    operation.request_body = RequestBody(
        required=True,
        content={
            "application/x-www-form-urlencoded": OpenAPIMediaType(
                schema=_schema_ref("TokenRequest")
            )
        },
    )
    oauth_error = OpenAPIMediaType(schema=_schema_ref("OAuthError"))
    operation.responses = {
        "200": OpenAPIResponse(
            description="An access token",
            content={"application/json": OpenAPIMediaType(schema=_schema_ref("TokenResponse"))},
        ),
        "400": OpenAPIResponse(
            description="invalid_request, unsupported_grant_type or invalid_scope",
            content={
                "application/json": oauth_error,
                PROBLEM_MEDIA_TYPE: OpenAPIMediaType(schema=PROBLEM_REF),
            },
        ),
        "401": OpenAPIResponse(
            description="invalid_client", content={"application/json": oauth_error}
        ),
        "413": problem_response(413),
        "429": OpenAPIResponse(
            description="slow_down: too many token requests",
            content={"application/json": oauth_error},
        ),
        "503": problem_response(503),
    }


def problem_response(status: int) -> OpenAPIResponse:
    return OpenAPIResponse(
        description=_TITLES.get(status, ProblemError.title),
        content={PROBLEM_MEDIA_TYPE: OpenAPIMediaType(schema=PROBLEM_REF)},
    )


def _honours_if_match(handler: HTTPRouteHandler) -> bool:
    try:
        source = inspect.getsource(handler.fn)
    except (OSError, TypeError):
        return False
    return "check_if_match(" in source


def error_statuses(path: str, method: str, handler: HTTPRouteHandler) -> set[int]:
    """The error statuses one operation answers, from what its route declares."""
    # Any request may carry text the database cannot store, or a malformed parameter.
    statuses = {400}
    access = handler.opt.get("access")
    if access is not None:
        statuses |= {401, 429, 503}
        if access.get("scope") or access.get("role"):
            statuses.add(403)
    if "{" in path:
        statuses.add(404)
    dto = handler.dto
    has_body = isinstance(dto, type) and issubclass(dto, Body)
    if has_body:
        statuses |= {413, 415, 422}
    if method not in SAFE_METHODS and access is not None:
        statuses |= {409, 422}
    if method in {"PATCH", "PUT", "DELETE"} and _honours_if_match(handler):
        statuses.add(412)
    signature = handler.parsed_fn_signature.parameters
    if any(name not in {"request", "db_session", "data"} for name in signature):
        # Query values outside their vocabulary or range are 422; paging and types are 400.
        statuses.add(422)
    statuses |= EXTRA_STATUSES.get((method, path), frozenset())
    return statuses


def _operations(
    app: Litestar, openapi: OpenAPI
) -> Iterator[tuple[str, str, HTTPRouteHandler, Operation]]:
    for route in app.routes:
        if not isinstance(route, HTTPRoute):
            continue
        path = route.path_format or "/"
        item = (openapi.paths or {}).get(path)
        if item is None:
            continue
        for handler in route.route_handlers:
            if not handler.resolve_include_in_schema():
                continue
            for method in handler.http_methods:
                operation = getattr(item, method.lower(), None)
                if isinstance(operation, Operation):
                    yield path, method, handler, operation


def _without_null(schema: Schema) -> Schema:
    """A parameter is absent or a string: it is never JSON `null`."""
    if schema.one_of:
        branches = [b for b in schema.one_of if not (isinstance(b, Schema) and b.type == "null")]
        if len(branches) == 1 and isinstance(branches[0], Schema):
            merged = msgspec_replace(branches[0], description=schema.description)
            for name in ("max_length", "min_length", "pattern", "maximum", "minimum"):
                if getattr(schema, name) is not None and getattr(merged, name) is None:
                    setattr(merged, name, getattr(schema, name))
            return merged
    if isinstance(schema.type, list) and OpenAPIType.NULL in schema.type:
        rest = [t for t in schema.type if t != OpenAPIType.NULL]
        schema.type = rest[0] if len(rest) == 1 else rest
        if schema.enum:
            schema.enum = [value for value in schema.enum if value is not None]
    return schema


def msgspec_replace(schema: Schema, **changes: Any) -> Schema:
    from dataclasses import replace

    return replace(schema, **{k: v for k, v in changes.items() if v is not None})


def _is_free_text(schema: Schema) -> bool:
    types = schema.type if isinstance(schema.type, list) else [schema.type]
    return OpenAPIType.STRING in types and not (schema.format or schema.enum or schema.const)


def _reads_null(schema: Schema) -> bool:
    """Whether Litestar would read the query value `null` as None for this parameter: it is
    nullable and not free text (where `null` is a word like any other)."""
    if schema.one_of:
        branches = [b for b in schema.one_of if isinstance(b, Schema)]
        nullable = any(b.type == OpenAPIType.NULL for b in branches)
        rest = [b for b in branches if b.type != OpenAPIType.NULL]
        return nullable and not any(_is_free_text(b) for b in rest)
    if isinstance(schema.type, list) and OpenAPIType.NULL in schema.type:
        return not _is_free_text(schema) or bool(schema.enum)
    return False


def _forbid_nul(schema: Any, seen: set[int] | None = None) -> None:
    """Free text never holds NUL (PostgreSQL refuses it; the service answers 400): say so."""
    seen = set() if seen is None else seen
    if not isinstance(schema, Schema) or id(schema) in seen:
        return
    seen.add(id(schema))
    if _is_free_text(schema) and schema.pattern is None:
        schema.pattern = NO_NUL_PATTERN
    if isinstance(schema.additional_properties, Schema) and schema.property_names is None:
        schema.property_names = Schema(type=OpenAPIType.STRING, pattern=NO_NUL_PATTERN)
    children: list[Any] = [schema.items, schema.additional_properties, schema.schema_not]
    children += [*(schema.one_of or []), *(schema.any_of or []), *(schema.all_of or [])]
    children += [*(schema.prefix_items or []), *(schema.properties or {}).values()]
    for child in children:
        _forbid_nul(child, seen)


def _refine_parameter(parameter: Parameter | Reference, strict_query: dict[str, str]) -> None:
    if not isinstance(parameter, Parameter) or parameter.param_in == "cookie":
        return
    if isinstance(parameter.schema, Schema):
        reads_null = _reads_null(parameter.schema)
        parameter.schema = _without_null(parameter.schema)
        _forbid_nul(parameter.schema)
        if parameter.param_in == "query":
            declared = parameter.schema.format
            kind = str(getattr(declared, "value", declared or ""))
            if kind in STRICT_FORMATS or reads_null:
                strict_query[parameter.name] = kind if kind in STRICT_FORMATS else ""
    if parameter.param_in != "query":
        return
    if parameter.name in CURSOR_PARAMETERS and isinstance(parameter.schema, Schema):
        limit = parameter.schema.max_length or 1024
        parameter.schema = Schema(
            type=OpenAPIType.STRING,
            pattern=CURSOR_PATTERN,
            max_length=limit,
            description=parameter.schema.description,
        )


def _any_of_for_unions(schema: Any) -> None:
    """A success body that is one of several objects is documented as `anyOf`: an object
    schema allows other properties, so a richer body is valid under a poorer branch too."""
    if isinstance(schema, Schema) and schema.one_of and not schema.discriminator:
        schema.any_of, schema.one_of = schema.one_of, None


def _strict_structs() -> Iterator[type[msgspec.Struct]]:
    """Every Struct of ours that refuses unknown fields (the request bodies and their parts)."""
    pending: list[type[msgspec.Struct]] = [msgspec.Struct]
    seen: set[type[msgspec.Struct]] = set()
    while pending:
        cls = pending.pop()
        for sub in cls.__subclasses__():
            if sub in seen:
                continue
            seen.add(sub)
            pending.append(sub)
            if sub.__module__.startswith("wg_api.") and sub.__struct_config__.forbid_unknown_fields:
                yield sub


def _close_strict_objects(schemas: dict[str, Schema]) -> None:
    """`additionalProperties: false` on the components of Structs that refuse unknown fields:
    a generated body with another property is invalid data, and the service says so (400)."""
    for cls in _strict_structs():
        parts = [*cls.__module__.split("."), cls.__qualname__]
        for size in range(1, len(parts) + 1):
            schema = schemas.get("_".join(parts[-size:]))
            if schema is not None and schema.properties is not None:
                schema.additional_properties = False
                break


def _unique_titles(schemas: dict[str, Schema]) -> None:
    """Two Structs of one name in two domains (funding's and sharing's `Share`) get distinct
    titles, from their component names: generators name their models after titles."""
    by_title: dict[str, list[str]] = {}
    for key, schema in schemas.items():
        if schema.title:
            by_title.setdefault(schema.title, []).append(key)
    for keys in by_title.values():
        if len(keys) < 2:
            continue
        for key in keys:
            parts = [part for part in key.split("_") if part and part != "schemas"]
            schemas[key].title = "".join(part[:1].upper() + part[1:] for part in parts)


def refine_openapi(app: Litestar, openapi: OpenAPI) -> OpenAPI:
    """Rewrite the built document in place (once per app): see the module's docstring."""
    if openapi.components.schemas is None:
        openapi.components.schemas = {}
    _close_strict_objects(openapi.components.schemas)
    openapi.components.schemas.update(problem_schemas())
    openapi.components.schemas.update(oauth_schemas())
    for path, method, handler, operation in _operations(app, openapi):
        if path == TOKEN_PATH:
            _document_token_endpoint(operation)
            continue
        responses = dict(operation.responses or {})
        for status in list(responses):
            if status.startswith(("4", "5")):
                del responses[status]
        success = str(handler.status_code)
        if (extra := EXTRA_SUCCESS.get((method, path))) is not None and success in responses:
            documented = responses[success]
            if isinstance(documented, OpenAPIResponse):
                responses[str(extra[0])] = OpenAPIResponse(
                    description=extra[1], content=documented.content, headers=documented.headers
                )
        for media_type in EXTRA_MEDIA_TYPES.get((method, path), ()):
            main = responses.get(success)
            if isinstance(main, OpenAPIResponse) and main.content is not None:
                main.content[media_type] = OpenAPIMediaType(schema=Schema(type=OpenAPIType.STRING))
        for code in sorted(error_statuses(path, method, handler)):
            responses[str(code)] = problem_response(code)
        for answer in responses.values():
            if isinstance(answer, OpenAPIResponse):
                for media in (answer.content or {}).values():
                    _any_of_for_unions(media.schema)
        operation.responses = responses
        strict_query: dict[str, str] = {}
        for parameter in operation.parameters or []:
            _refine_parameter(parameter, strict_query)
            if isinstance(parameter, Parameter) and isinstance(parameter.schema, Schema):
                pattern = PARAMETER_PATTERNS.get((method, path, parameter.name))
                parameter.schema.pattern = pattern or parameter.schema.pattern
        handler.opt[STRICT_QUERY_OPT_KEY] = strict_query
        if operation.request_body is not None and not isinstance(operation.request_body, Reference):
            for media in operation.request_body.content.values():
                _forbid_nul(media.schema)
    for schema in openapi.components.schemas.values():
        _forbid_nul(schema)
    _unique_titles(openapi.components.schemas)
    return openapi
