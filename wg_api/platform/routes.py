"""Platform endpoints: liveness, readiness, metrics and the problem type descriptions."""

from __future__ import annotations

from typing import Any

import msgspec
import sqlalchemy as sa
from litestar import Controller, Request, Response, get
from litestar.params import FromPath

from wg_api.platform.database import Database
from wg_api.platform.errors import PROBLEM_KINDS, NotFound, ServiceUnavailable, problem_type
from wg_api.platform.observability import metrics_text


class Health(msgspec.Struct):
    status: str


class Readiness(msgspec.Struct):
    status: str
    database: str
    migration: str | None


class ProblemKind(msgspec.Struct):
    type: str
    title: str
    description: str


class PlatformController(Controller):
    tags = ["Platform"]
    security = [{}]

    @get("/healthz", summary="Liveness")
    async def healthz(self) -> Health:
        """Answers 200 while the process serves requests; touches nothing else."""
        return Health(status="ok")

    @get("/readyz", summary="Readiness")
    async def readyz(self, request: Request[Any, Any, Any]) -> Readiness:
        """200 when the database answers and its migrations are at the code's head; else 503."""
        database: Database = request.app.state["database"]
        head: str | None = request.app.state["migration_head"]
        try:
            async with database.transaction() as session:
                current = await session.scalar(sa.text("SELECT version_num FROM alembic_version"))
        except Exception as exc:
            raise ServiceUnavailable("The database is not reachable.") from exc
        if current != head:
            raise ServiceUnavailable(f"The database is at migration {current}, the code at {head}.")
        return Readiness(status="ok", database="ok", migration=current)

    @get("/metrics", summary="Prometheus metrics", media_type="text/plain", include_in_schema=True)
    async def metrics(self) -> Response[bytes]:
        body, content_type = metrics_text()
        # Litestar appends the charset to text/* media types itself; do not send it twice.
        return Response(body, media_type=content_type.replace("; charset=utf-8", ""))

    @get("/problems/{kind:str}", summary="What a problem type means")
    async def problem(self, kind: FromPath[str]) -> ProblemKind:
        """Every error's `type` URI resolves here to a description of that kind of error."""
        if kind not in PROBLEM_KINDS:
            raise NotFound("No such problem type.")
        title, _, description = PROBLEM_KINDS[kind].partition(". ")
        return ProblemKind(type=problem_type(kind), title=title, description=description)
