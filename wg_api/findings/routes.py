"""Findings endpoints: private to the caller's tenant."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import date, datetime
from typing import Annotated, Any, Literal, cast

from litestar import Controller, Request, Response, delete, get, patch, post, put
from litestar.openapi.spec import OpenAPIMediaType, Operation, RequestBody, Schema
from litestar.openapi.spec.enums import OpenAPIType
from litestar.params import FromPath, JSONBody, PathParameter, QueryParameter
from litestar.response import Stream

from wg_api.findings import export, import_, service
from wg_api.findings.schemas import (
    Area,
    Finding,
    FindingFields,
    FindingFilters,
    FindingIn,
    FindingPatch,
    ImportResult,
    Severity,
    Status,
)
from wg_api.identity.access import requires
from wg_api.identity.principal import Principal
from wg_api.platform.errors import UnsupportedMediaType
from wg_api.platform.http import Body, check_if_match, etag_of
from wg_api.platform.pagination import Page, Pagination, page_response
from wg_api.platform.transaction import DbSession, replay_streamed, stream_body
from wg_api.settings import Settings


def _with_etag(finding: Finding, status_code: int = 200) -> Response[Finding]:
    return Response(finding, status_code=status_code, headers={"ETag": etag_of(finding)})


@dataclass
class ImportOperation(Operation):
    """The import reads its own body (streamed), so its content types are documented here."""

    def __post_init__(self) -> None:
        text = Schema(type=OpenAPIType.STRING)
        self.request_body = RequestBody(
            required=True,
            description="One finding per row (a `FindingRow`: a finding as `PUT` takes it, "
            "with its `external_id` or the `id` of one of your findings). NDJSON: one JSON "
            "object per line. CSV: a header row, then one row per finding; nested fields as "
            f"`source.scheme`, `cap.due_on`...; an empty cell is an absent field. Columns: "
            f"{', '.join(import_.CSV_COLUMNS)}.",
            content={
                "application/x-ndjson": OpenAPIMediaType(schema=text),
                "text/csv": OpenAPIMediaType(schema=text),
            },
        )


class FindingsController(Controller):
    path = "/findings"
    tags = ["Findings"]

    @post(summary="Record a finding", data_dto=Body[FindingIn], **requires("findings:write"))
    async def create(
        self,
        request: Request[Principal, Any, Any],
        data: JSONBody[FindingIn],
        db_session: DbSession,
    ) -> Response[Finding]:
        """Records a finding about one of your suppliers. With an `external_id` you already
        use, answers 409: use `PUT /v1/findings/by-external-id/{external_id}` to replace."""
        finding = await service.create(db_session, request.user.tenant_id, data)
        return _with_etag(finding, 201)

    @put(
        "/by-external-id/{external_id:str}",
        summary="Create or replace a finding by your external id",
        data_dto=Body[FindingFields],
        **requires("findings:write"),
    )
    async def put_by_external_id(
        self,
        request: Request[Principal, Any, Any],
        data: JSONBody[FindingFields],
        db_session: DbSession,
        external_id: Annotated[
            str, PathParameter(min_length=1, max_length=200, description="Your system's key.")
        ],
    ) -> Response[Finding]:
        """For integrators: 201 with a new finding, or 200 replacing the one with this key (its
        `id` stays the same). Every field is replaced: leave one out and it is cleared."""
        finding, created = await service.put_by_external_id(
            db_session, request.user.tenant_id, external_id, data
        )
        return _with_etag(finding, 201 if created else 200)

    @post(
        "/import",
        summary="Import findings in bulk (NDJSON or CSV)",
        status_code=200,
        operation_class=ImportOperation,
        request_max_body_size=None,
        streamed_body=True,  # STREAMED_BODY: the handler reads its own body
        **requires("findings:write"),
    )
    async def import_findings(
        self,
        request: Request[Principal, Any, Any],
        db_session: DbSession,
        dry_run: Annotated[
            bool, QueryParameter(name="dry_run", description="Check every row; write nothing.")
        ] = False,
        atomic: Annotated[
            bool,
            QueryParameter(name="atomic", description="All or nothing: one bad row writes none."),
        ] = False,
    ) -> Response[ImportResult]:
        """Upserts by `external_id` (or by `id`) like `PUT /v1/findings/by-external-id/{id}`,
        with the same problem messages per row, events and share refreshes. Up to
        `WG_IMPORT_MAX_ROWS` rows and `WG_IMPORT_MAX_BYTES` bytes (413, nothing written). A bad
        row never stops the good ones unless `atomic`. Honours `Idempotency-Key`."""
        format = import_.media_format(request.headers.get("content-type"))
        if format is None:
            raise UnsupportedMediaType("Send the rows as application/x-ndjson or text/csv.")
        settings: Settings = request.app.state["settings"]
        staged = await import_.stage(
            db_session,
            stream_body(request, settings.import_max_bytes),
            format,
            max_rows=settings.import_max_rows,
            max_row_bytes=settings.max_body_bytes,
        )
        replayed = replay_streamed(request)
        if replayed is not None:
            return cast(Response[ImportResult], replayed)
        result = await import_.apply(
            db_session, request.user.tenant_id, staged, dry_run=dry_run, atomic=atomic
        )
        return Response(result, status_code=200)

    @get(
        "/export",
        summary="Export findings (NDJSON or CSV)",
        **requires("findings:read"),
    )
    async def export_findings(
        self,
        request: Request[Principal, Any, Any],
        db_session: DbSession,
        format: Annotated[
            Literal["ndjson", "csv"], QueryParameter(name="format", description="ndjson or csv.")
        ] = "ndjson",
        supplier_id: Annotated[uuid.UUID | None, QueryParameter(name="supplier_id")] = None,
        area: Annotated[Area | None, QueryParameter(name="area")] = None,
        severity: Annotated[Severity | None, QueryParameter(name="severity")] = None,
        status: Annotated[Status | None, QueryParameter(name="status")] = None,
        observed_from: Annotated[date | None, QueryParameter(name="observed_from")] = None,
        observed_to: Annotated[date | None, QueryParameter(name="observed_to")] = None,
        updated_since: Annotated[
            datetime | None,
            QueryParameter(name="updated_since", description="RFC 3339 timestamp."),
        ] = None,
    ) -> Stream:
        """Every matching finding, newest observation first, streamed: with its `id`, in the
        columns the import takes, so importing the file back answers `unchanged` for each."""
        filters = FindingFilters(
            supplier_id=supplier_id,
            area=area,
            severity=severity,
            status=status,
            observed_from=observed_from,
            observed_to=observed_to,
            updated_since=updated_since,
        )
        service.check_filters(filters)
        rows = export.stream(db_session, request.user.tenant_id, filters, format)
        media_type = export.MEDIA_TYPES[format]
        return Stream(
            rows,
            media_type=media_type,
            headers={
                "Content-Disposition": f'attachment; filename="findings.{format}"',
                "Cache-Control": "no-store",
            },
        )

    @get(summary="Your findings", **requires("findings:read"))
    async def list_findings(
        self,
        request: Request[Principal, Any, Any],
        db_session: DbSession,
        page: Pagination,
        supplier_id: Annotated[uuid.UUID | None, QueryParameter(name="supplier_id")] = None,
        area: Annotated[Area | None, QueryParameter(name="area")] = None,
        severity: Annotated[Severity | None, QueryParameter(name="severity")] = None,
        status: Annotated[Status | None, QueryParameter(name="status")] = None,
        observed_from: Annotated[date | None, QueryParameter(name="observed_from")] = None,
        observed_to: Annotated[date | None, QueryParameter(name="observed_to")] = None,
        updated_since: Annotated[
            datetime | None,
            QueryParameter(name="updated_since", description="RFC 3339 timestamp."),
        ] = None,
    ) -> Response[Page[Finding]]:
        """Newest observation first, keyset-paginated."""
        filters = FindingFilters(
            supplier_id=supplier_id,
            area=area,
            severity=severity,
            status=status,
            observed_from=observed_from,
            observed_to=observed_to,
            updated_since=updated_since,
        )
        result = await service.list_page(
            db_session, request.user.tenant_id, filters, after=page.after, limit=page.limit
        )
        return page_response(request, result)

    @get("/{finding_id:uuid}", summary="One finding", **requires("findings:read"))
    async def get_one(
        self,
        request: Request[Principal, Any, Any],
        db_session: DbSession,
        finding_id: FromPath[uuid.UUID],
    ) -> Response[Finding]:
        return _with_etag(await service.get(db_session, request.user.tenant_id, finding_id))

    @patch(
        "/{finding_id:uuid}",
        summary="Change a finding",
        data_dto=Body[FindingPatch],
        **requires("findings:write"),
    )
    async def change(
        self,
        request: Request[Principal, Any, Any],
        data: JSONBody[FindingPatch],
        db_session: DbSession,
        finding_id: FromPath[uuid.UUID],
    ) -> Response[Finding]:
        """Send only what changes; `null` clears an optional field. Honours `If-Match`."""
        tenant_id = request.user.tenant_id
        current = await service.get_for_update(db_session, tenant_id, finding_id)
        check_if_match(request, etag_of(current))
        finding = await service.change(db_session, tenant_id, current, data)
        return _with_etag(finding)

    @delete("/{finding_id:uuid}", summary="Delete a finding", **requires("findings:write"))
    async def remove(
        self,
        request: Request[Principal, Any, Any],
        db_session: DbSession,
        finding_id: FromPath[uuid.UUID],
    ) -> None:
        """Deletes the finding and withdraws all of its shares. Honours `If-Match`."""
        tenant_id = request.user.tenant_id
        current = await service.get_for_update(db_session, tenant_id, finding_id)
        check_if_match(request, etag_of(current))
        await service.delete(db_session, tenant_id, current)
