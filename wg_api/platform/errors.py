"""RFC 9457 problem details: an exception class per kind of error, and the handler that renders it.

Every error the API answers is `application/problem+json` with a stable `type` URI
(`/problems/<kind>`, served by the API itself with a description), `title`, `status` and `detail`;
validation errors add `errors: [{"field", "message"}]`. Internals never reach the client.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping
from typing import Any, ClassVar

import msgspec
from litestar import MediaType, Request, Response
from litestar.exceptions import HTTPException, ValidationException
from sqlalchemy.exc import DBAPIError
from sqlalchemy.exc import TimeoutError as PoolTimeout

PROBLEM_MEDIA_TYPE = "application/problem+json"

log = logging.getLogger("wg_api.errors")


class FieldError(msgspec.Struct, frozen=True):
    field: str
    message: str


class Problem(msgspec.Struct, omit_defaults=True):
    """The body of every error response."""

    type: str
    title: str
    status: int
    detail: str
    errors: list[FieldError] | None = None


PROBLEM_KINDS: dict[str, str] = {}


def problem_type(kind: str) -> str:
    return f"/problems/{kind}"


class ProblemError(Exception):
    """An error that knows its own HTTP status and problem type."""

    status: ClassVar[int] = 500
    kind: ClassVar[str] = "internal-error"
    title: ClassVar[str] = "Internal server error"
    description: ClassVar[str] = "The server failed to answer; nothing about the cause is exposed."

    def __init__(
        self,
        detail: str | None = None,
        *,
        errors: list[FieldError] | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        self.detail = detail or self.title
        self.errors = errors
        self.headers = dict(headers or {})
        super().__init__(self.detail)

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        PROBLEM_KINDS[cls.kind] = f"{cls.title}. {cls.description}"

    def to_problem(self) -> Problem:
        return Problem(
            type=problem_type(self.kind),
            title=self.title,
            status=self.status,
            detail=self.detail,
            errors=self.errors,
        )


PROBLEM_KINDS[ProblemError.kind] = f"{ProblemError.title}. {ProblemError.description}"


class InvalidRequest(ProblemError):
    status = 400
    kind = "invalid-request"
    title = "Invalid request"
    description = "The request is malformed: bad JSON, a wrong type, an unknown field or parameter."


class ValidationFailed(ProblemError):
    status = 422
    kind = "validation-failed"
    title = "Validation failed"
    description = "The request is well-formed but some values are not acceptable; see `errors`."


class Unauthorized(ProblemError):
    status = 401
    kind = "unauthorized"
    title = "Unauthorized"
    description = "No valid bearer token was presented."

    def __init__(self, detail: str | None = None, *, error: str = "invalid_token") -> None:
        challenge = f'Bearer realm="wg-api", error="{error}"'
        if detail:
            challenge += f', error_description="{detail}"'
        super().__init__(detail, headers={"WWW-Authenticate": challenge})


class Forbidden(ProblemError):
    status = 403
    kind = "forbidden"
    title = "Forbidden"
    description = "The credentials are valid but lack the scope or role this operation needs."


class NotFound(ProblemError):
    status = 404
    kind = "not-found"
    title = "Not found"
    description = (
        "No such resource for this caller. A resource of another tenant answers exactly the same."
    )


class MethodNotAllowed(ProblemError):
    status = 405
    kind = "method-not-allowed"
    title = "Method not allowed"
    description = "The resource does not support this method; see the Allow header."


class Conflict(ProblemError):
    status = 409
    kind = "conflict"
    title = "Conflict"
    description = "The request conflicts with the current state of the resource."


class Gone(ProblemError):
    status = 410
    kind = "gone"
    title = "Gone"
    description = "The resource or cursor existed but has expired."


class PreconditionFailed(ProblemError):
    status = 412
    kind = "precondition-failed"
    title = "Precondition failed"
    description = "If-Match did not match the resource's current ETag; fetch it again."


class RequestTimeout(ProblemError):
    status = 408
    kind = "request-timeout"
    title = "Request timeout"
    description = (
        "The request body did not arrive in time (`WG_BODY_TIMEOUT_SECONDS`); nothing changed."
    )

    def __init__(
        self,
        detail: str | None = None,
        *,
        errors: list[FieldError] | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        # The rest of the body may still be on its way: this connection cannot carry another.
        super().__init__(detail, errors=errors, headers={**(headers or {}), "Connection": "close"})


class PayloadTooLarge(ProblemError):
    status = 413
    kind = "payload-too-large"
    title = "Payload too large"
    description = "The request body is over the size limit (1 MiB unless configured otherwise)."


class UnsupportedMediaType(ProblemError):
    status = 415
    kind = "unsupported-media-type"
    title = "Unsupported media type"
    description = "Send request bodies as application/json."


class RateLimited(ProblemError):
    status = 429
    kind = "rate-limited"
    title = "Too many requests"
    description = "The tenant's request budget for this window is spent; retry after Retry-After."


class IdempotencyKeyInUse(ProblemError):
    status = 409
    kind = "idempotency-key-in-use"
    title = "Idempotency key in use"
    description = "A request with this Idempotency-Key is still being processed; retry later."


class IdempotencyKeyReused(ProblemError):
    status = 422
    kind = "idempotency-key-reused"
    title = "Idempotency key reused"
    description = "This Idempotency-Key was used with a different request; use a new key."


class ServiceUnavailable(ProblemError):
    status = 503
    kind = "service-unavailable"
    title = "Service unavailable"
    description = "A dependency (the database) is not ready."


class TryAgain(ProblemError):
    status = 503
    kind = "try-again"
    title = "Try again"
    description = (
        "The request ran into concurrent ones (a deadlock or serialization failure in the "
        "database, no database connection free in time, a statement over the time limit) or "
        "lost its database connection (a restart or failover), and was rolled back: nothing "
        "changed. Retry it after Retry-After, with the same Idempotency-Key if it had one."
    )


# PostgreSQL errors that say the request met concurrent ones, rather than that it is wrong:
# serialization failure, deadlock, lock not available, out of (lock table) shared memory.
_TRANSIENT_SQLSTATES = frozenset({"40001", "40P01", "55P03", "53200"})
# The server went away or is not accepting work yet: admin/crash shutdown, cannot connect now,
# too many connections, and the whole class 08 (connection exception); a statement cancelled by
# `statement_timeout` (57014) is load, not a wrong request.
_UNAVAILABLE_SQLSTATES = frozenset({"57P01", "57P02", "57P03", "53300", "57014"})
_UNIQUE_VIOLATION = "23505"


def _causes(exc: BaseException) -> list[BaseException]:
    """`exc` and what it wraps: SQLAlchemy's `orig` and the chain of causes (the driver's error
    is two or three levels down)."""
    found: list[BaseException] = []
    pending: list[BaseException | None] = [exc]
    while pending and len(found) < 8:
        candidate = pending.pop(0)
        if candidate is None or any(candidate is seen for seen in found):
            continue
        found.append(candidate)
        pending += [getattr(candidate, "orig", None), candidate.__cause__]
    return found


def _sqlstate(exc: BaseException) -> str | None:
    """The SQLSTATE of a database error, raised by the driver or wrapped by SQLAlchemy."""
    for candidate in _causes(exc):
        sqlstate = getattr(candidate, "sqlstate", None)
        if isinstance(sqlstate, str):
            return sqlstate
    return None


def _connection_lost(exc: BaseException) -> bool:
    """The database connection broke under the request (or could not be made): a restart, a
    failover, a reset socket. Raised by asyncpg itself (the driver paths) or wrapped by
    SQLAlchemy, which then has invalidated the connection so the pool drops it."""
    if isinstance(exc, DBAPIError) and exc.connection_invalidated:
        return True
    for candidate in _causes(exc):
        if isinstance(candidate, OSError):  # ConnectionRefused/Reset, socket timeouts
            return True
        module = type(candidate).__module__
        name = type(candidate).__name__
        if module.startswith("asyncpg") and name in _ASYNCPG_CONNECTION_ERRORS:
            return True
        # The driver's (or SQLAlchemy's adapted) InterfaceError for a socket that is gone;
        # other InterfaceErrors are misuse, and stay 500.
        if name == "InterfaceError" and _CLOSED_CONNECTION.search(str(candidate)):
            return True
    return False


_CLOSED_CONNECTION = re.compile(r"connection (is|was|has been) closed")
_ASYNCPG_CONNECTION_ERRORS = frozenset(
    {
        "ConnectionDoesNotExistError",
        "ConnectionFailureError",
        "CannotConnectNowError",
        "AdminShutdownError",
        "CrashShutdownError",
        "TooManyConnectionsError",
    }
)


def _from_database(exc: Exception) -> ProblemError | None:
    sqlstate = _sqlstate(exc)
    # No connection free in the pool within its timeout: as busy as a deadlock, to the client.
    if sqlstate in _TRANSIENT_SQLSTATES or isinstance(exc, PoolTimeout):
        return TryAgain(headers={"Retry-After": "1"})
    if (
        sqlstate in _UNAVAILABLE_SQLSTATES
        or (sqlstate is not None and sqlstate.startswith("08"))
        or _connection_lost(exc)
    ):
        return TryAgain(headers={"Retry-After": "1"})
    if sqlstate == _UNIQUE_VIOLATION:
        # Checks before writes answer their own 409s; this is the race one of them lost.
        return Conflict("A concurrent change took a value this request needs; nothing changed.")
    return None


_HTTP_KINDS: dict[int, type[ProblemError]] = {
    cls.status: cls
    for cls in (
        InvalidRequest,
        Unauthorized,
        Forbidden,
        NotFound,
        MethodNotAllowed,
        Gone,
        PreconditionFailed,
        RequestTimeout,
        PayloadTooLarge,
        UnsupportedMediaType,
        RateLimited,
        ServiceUnavailable,
    )
}

PAGING_PARAMETERS = frozenset({"limit", "cursor", "after"})
_TYPE_MISMATCH = re.compile(r"^Expected `[^`]+`, got `[^`]+`$")
_AT_PATH = re.compile(r"^(?P<message>.*?)(?: - at `\$(?P<path>[^`]*)`)?$", re.DOTALL)
_UNKNOWN_FIELD = re.compile(r"^Object contains unknown field `(?P<name>.*)`$", re.DOTALL)
_MISSING_FIELD = re.compile(r"^Object missing required field `(?P<name>[^`]+)`$")


def _join(path: str, name: str) -> str:
    return f"{path}.{name}" if path else name


def field_error_from_msgspec(raw: str) -> tuple[int, FieldError]:
    """Turn one msgspec message into (status, field error): type errors are 400, values 422."""
    match = _AT_PATH.match(raw)
    assert match is not None
    message = match["message"]
    path = (match["path"] or "").lstrip(".")
    if unknown := _UNKNOWN_FIELD.match(message):
        return 400, FieldError(_join(path, unknown["name"]), "unknown field")
    if missing := _MISSING_FIELD.match(message):
        return 422, FieldError(_join(path, missing["name"]), "is required")
    status = 400 if _TYPE_MISMATCH.match(message) else 422
    return status, FieldError(path or "body", message)


def problem_from_msgspec(exc: msgspec.MsgspecError) -> ProblemError:
    if isinstance(exc, msgspec.DecodeError) and not isinstance(exc, msgspec.ValidationError):
        return InvalidRequest("The request body is not valid JSON.")
    status, field_error = field_error_from_msgspec(str(exc))
    if status == 400:
        return InvalidRequest("The request body does not match the schema.", errors=[field_error])
    return ValidationFailed("Some values are not acceptable.", errors=[field_error])


def _problem_from_litestar_validation(exc: ValidationException) -> ProblemError:
    errors: list[FieldError] = []
    statuses: set[int] = set()
    extra = exc.extra if isinstance(exc.extra, list) else []
    for item in extra:
        if not isinstance(item, dict):
            continue
        message = str(item.get("message", "invalid"))
        key = str(item.get("key", ""))
        from_body = item.get("source", "body") == "body"
        if from_body and key == "data" and message == "'data'":
            return InvalidRequest(
                "The request needs a JSON body.", errors=[FieldError("body", "is required")]
            )
        status, field_error = field_error_from_msgspec(message)
        errors.append(FieldError(key or field_error.field, field_error.message))
        # One rule for bodies and parameters: a wrong type is 400, a well-formed value outside
        # its vocabulary or range is 422. Paging is the exception api.md fixes: `?limit=201` is 400.
        statuses.add(400 if key in PAGING_PARAMETERS else status)
    if statuses == {422}:
        return ValidationFailed("Some values are not acceptable.", errors=errors or None)
    return InvalidRequest("The request has invalid parameters or body.", errors=errors or None)


def to_problem_error(exc: Exception) -> ProblemError:
    if isinstance(exc, ProblemError):
        return exc
    if isinstance(exc, msgspec.MsgspecError):
        return problem_from_msgspec(exc)
    if isinstance(exc, ValidationException):
        return _problem_from_litestar_validation(exc)
    if (from_database := _from_database(exc)) is not None:
        return from_database
    if isinstance(exc, HTTPException):
        cls = _HTTP_KINDS.get(exc.status_code)
        headers = dict(exc.headers or {})
        if exc.status_code == 405 and "allow" in {h.lower() for h in headers}:
            allow = next(v for k, v in headers.items() if k.lower() == "allow")
            headers = {"Allow": allow}
        if cls is Unauthorized:
            return Unauthorized()
        if cls is not None:
            detail = None if exc.status_code >= 500 else _safe_detail(exc)
            return cls(detail, headers=headers)
        if 400 <= exc.status_code < 500:
            error = InvalidRequest(_safe_detail(exc), headers=headers)
            return error
    return ProblemError()


def _safe_detail(exc: HTTPException) -> str | None:
    detail = exc.detail
    if not detail or detail == exc.__class__.__name__:
        return None
    return str(detail)


def problem_response(error: ProblemError) -> Response[bytes]:
    return Response(
        content=msgspec.json.encode(error.to_problem()),
        status_code=error.status,
        media_type=PROBLEM_MEDIA_TYPE,
        headers=error.headers,
    )


def log_server_error(method: str, path: str, exc: Exception, error: ProblemError) -> None:
    """One log line for an answer of 500 or more: the traceback when nothing explains it, only
    the kind of database error for a 503 (its text may carry the statement's parameters)."""
    if error.status < 500:
        return
    if isinstance(exc, ProblemError | HTTPException):
        log.error("server error on %s %s: %s", method, path, exc)
    elif error.kind == TryAgain.kind:
        log.warning(
            "database unavailable or busy on %s %s: %s (sqlstate %s)",
            method,
            path,
            type(exc).__name__,
            _sqlstate(exc),
        )
    else:
        log.exception("unhandled error on %s %s", method, path, exc_info=exc)


def handle_exception(request: Request[Any, Any, Any], exc: Exception) -> Response[bytes]:
    error = to_problem_error(exc)
    log_server_error(request.method, request.url.path, exc, error)
    return problem_response(error)


def problem_kinds_text() -> dict[str, str]:
    return dict(sorted(PROBLEM_KINDS.items()))


__all__ = [
    "PROBLEM_MEDIA_TYPE",
    "Conflict",
    "FieldError",
    "Forbidden",
    "Gone",
    "IdempotencyKeyInUse",
    "IdempotencyKeyReused",
    "InvalidRequest",
    "MediaType",
    "NotFound",
    "PayloadTooLarge",
    "PreconditionFailed",
    "Problem",
    "ProblemError",
    "RateLimited",
    "RequestTimeout",
    "ServiceUnavailable",
    "Unauthorized",
    "UnsupportedMediaType",
    "ValidationFailed",
    "handle_exception",
]
