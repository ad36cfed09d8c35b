"""Which failures answer 503 try-again (retry them) and which stay 500 (a bug): the pure part of
the fault handling, one case per kind of error the driver and SQLAlchemy raise."""

from __future__ import annotations

import asyncpg
import pytest
from litestar.exceptions import HTTPException
from sqlalchemy.exc import DBAPIError, InterfaceError
from sqlalchemy.exc import TimeoutError as PoolTimeout

from wg_api.platform.errors import to_problem_error


def _wrapped(driver_error: Exception, *, invalidated: bool = False) -> DBAPIError:
    """The error as SQLAlchemy raises it: the adapted error in `orig`, the driver's as its
    cause."""
    adapted = Exception(str(driver_error))
    adapted.__cause__ = driver_error
    wrapped = DBAPIError("SELECT 1", {}, adapted, connection_invalidated=invalidated)
    wrapped.__cause__ = adapted
    return wrapped


RETRYABLE = [
    asyncpg.exceptions.ConnectionDoesNotExistError("connection was closed in the middle"),
    asyncpg.exceptions.AdminShutdownError("terminating connection due to administrator command"),
    asyncpg.exceptions.CannotConnectNowError("the database system is starting up"),
    asyncpg.exceptions.TooManyConnectionsError("too many clients"),
    asyncpg.exceptions.QueryCanceledError("canceling statement due to statement timeout"),
    asyncpg.exceptions.DeadlockDetectedError("deadlock detected"),
    ConnectionRefusedError(111, "Connection refused"),
    ConnectionResetError(104, "Connection reset by peer"),
    asyncpg.exceptions.InterfaceError("connection is closed"),
    PoolTimeout("QueuePool limit of size 10 overflow 0 reached"),
]


@pytest.mark.parametrize("error", RETRYABLE, ids=lambda e: type(e).__name__)
@pytest.mark.parametrize("wrap", [False, True], ids=["raw", "sqlalchemy"])
def test_a_lost_or_busy_database_answers_503_try_again(error, wrap):
    raised = _wrapped(error) if wrap and not isinstance(error, PoolTimeout) else error
    problem = to_problem_error(raised)
    assert problem.status == 503
    assert problem.kind == "try-again"
    assert problem.headers == {"Retry-After": "1"}


def test_an_invalidated_connection_answers_503_whatever_the_driver_said():
    problem = to_problem_error(_wrapped(Exception("unexpected EOF"), invalidated=True))
    assert (problem.status, problem.kind) == (503, "try-again")


@pytest.mark.parametrize(
    "error",
    [
        ZeroDivisionError("a bug"),
        asyncpg.exceptions.InterfaceError("cannot perform operation: another operation is in"),
        InterfaceError("SELECT 1", {}, Exception("cursor already closed?"), False),
        asyncpg.exceptions.UndefinedColumnError('column "nope" does not exist'),
    ],
    ids=lambda e: type(e).__name__,
)
def test_a_bug_stays_a_500(error):
    problem = to_problem_error(error)
    assert (problem.status, problem.kind) == (500, "internal-error")


def test_a_408_from_the_framework_is_a_request_timeout_that_closes_the_connection():
    problem = to_problem_error(HTTPException(status_code=408))
    assert (problem.status, problem.kind) == (408, "request-timeout")
    assert problem.headers["Connection"] == "close"
