"""Findings endpoints: private to the caller's tenant."""

from __future__ import annotations

import uuid
from datetime import date, datetime
from typing import Annotated, Any

from litestar import Controller, Request, Response, delete, get, patch, post, put
from litestar.params import FromPath, JSONBody, PathParameter, QueryParameter

from wg_api.findings import service
from wg_api.findings.schemas import (
    Area,
    Finding,
    FindingFields,
    FindingFilters,
    FindingIn,
    FindingPatch,
    Severity,
    Status,
)
from wg_api.identity.auth import requires
from wg_api.identity.principal import Principal
from wg_api.platform.http import Body, check_if_match, etag_of
from wg_api.platform.pagination import Page, Pagination, page_response
from wg_api.platform.transaction import DbSession


def _with_etag(finding: Finding, status_code: int = 200) -> Response[Finding]:
    return Response(finding, status_code=status_code, headers={"ETag": etag_of(finding)})


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
