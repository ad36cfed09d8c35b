"""Sharing endpoints: the owner's shares of a finding; a group's shared findings and insights."""

from __future__ import annotations

import uuid
from typing import Annotated, Any

from litestar import Controller, Request, Response, delete, get, post
from litestar.params import FromPath, JSONBody, QueryParameter

from wg_api.findings.schemas import AREAS
from wg_api.identity.access import requires
from wg_api.identity.principal import Principal
from wg_api.platform.http import Body, etag_of
from wg_api.platform.pagination import Pagination, page_response
from wg_api.platform.transaction import DbSession
from wg_api.sharing import service
from wg_api.sharing.schemas import (
    Insights,
    Share,
    SharedFinding,
    SharedFindingPage,
    ShareIn,
    SharePreview,
)
from wg_api.sharing.service import KINDS, SEVERITIES

# Filter values are checked by the service, so a value outside its vocabulary is a 422 like
# every other well-formed but unacceptable value; the enums here document them.
SupplierQuery = Annotated[uuid.UUID | None, QueryParameter(name="supplier_id")]
AreaQuery = Annotated[str | None, QueryParameter(name="area", enum=list(AREAS))]
SeverityQuery = Annotated[str | None, QueryParameter(name="severity", enum=list(SEVERITIES))]
CountryQuery = Annotated[
    str | None, QueryParameter(name="country", description="ISO 3166-1 alpha-2, such as CN.")
]
PeriodQuery = Annotated[
    str | None, QueryParameter(name="period", description="A quarter: 2026-Q3.")
]
KindQuery = Annotated[str | None, QueryParameter(name="kind", enum=list(KINDS))]


class SharesController(Controller):
    path = "/findings/{finding_id:uuid}/shares"
    tags = ["Sharing"]

    @post(
        summary="Share a finding into a working group",
        data_dto=Body[ShareIn],
        **requires("sharing:write"),
    )
    async def create(
        self,
        request: Request[Principal, Any, Any],
        data: JSONBody[ShareIn],
        db_session: DbSession,
        finding_id: FromPath[uuid.UUID],
    ) -> Share:
        """Publishes an anonymised copy of the finding to the group: no contributor, the quarter
        instead of the date, a head-count band, scrubbed text. Members and facilitators only;
        409 when the group has fewer member tenants than its anonymity threshold."""
        return await service.share(db_session, request.user.tenant_id, finding_id, data)

    @post(
        "/preview",
        summary="Preview a share: exactly what the group would see",
        status_code=200,
        data_dto=Body[ShareIn],
        **requires("sharing:write"),
    )
    async def preview(
        self,
        request: Request[Principal, Any, Any],
        data: JSONBody[ShareIn],
        db_session: DbSession,
        finding_id: FromPath[uuid.UUID],
    ) -> SharePreview:
        """The shared finding the group would see if you shared now (`id` null, `is_own` true),
        with `redactions`: the kind of each thing scrubbing removed, per field, never the removed
        text. Creates nothing. The rules of sharing apply (404, 403, 409 group too small or
        linkable share), except that a finding already shared into the group still answers:
        the preview is then what that share publishes."""
        return await service.preview(db_session, request.user.tenant_id, finding_id, data)

    @get(summary="The shares of one of your findings", **requires("findings:read"))
    async def list_shares(
        self,
        request: Request[Principal, Any, Any],
        db_session: DbSession,
        finding_id: FromPath[uuid.UUID],
    ) -> list[Share]:
        """Only you see these: the link from a share to its shared record is yours alone."""
        return await service.list_shares(db_session, request.user.tenant_id, finding_id)

    @delete("/{share_id:uuid}", summary="Withdraw a share", **requires("sharing:write"))
    async def withdraw(
        self,
        request: Request[Principal, Any, Any],
        db_session: DbSession,
        finding_id: FromPath[uuid.UUID],
        share_id: FromPath[uuid.UUID],
    ) -> None:
        """The shared record disappears for everyone at once. Works after leaving the group."""
        await service.withdraw(db_session, request.user.tenant_id, finding_id, share_id)


class SharedFindingsController(Controller):
    path = "/working-groups/{group_id:uuid}"
    tags = ["Sharing"]

    @get("/shared-findings", summary="A group's shared findings", **requires("working-groups:read"))
    async def list_shared(
        self,
        request: Request[Principal, Any, Any],
        db_session: DbSession,
        page: Pagination,
        group_id: FromPath[uuid.UUID],
        supplier_id: SupplierQuery = None,
        area: AreaQuery = None,
        severity: SeverityQuery = None,
        country: CountryQuery = None,
        period: PeriodQuery = None,
        kind: KindQuery = None,
    ) -> Response[SharedFindingPage]:
        """Ordered by supplier, then newest quarter first; never by when they were shared.
        While the group has fewer member tenants that can share than its anonymity threshold,
        no items and `group_below_threshold` true."""
        filters = service.shared_filters(
            supplier_id=supplier_id,
            area=area,
            severity=severity,
            country=country,
            period=period,
            kind=kind,
        )
        result = await service.list_shared(
            db_session,
            request.user.tenant_id,
            group_id,
            filters,
            after=page.after,
            limit=page.limit,
        )
        return page_response(request, result)

    @get(
        "/shared-findings/{shared_finding_id:uuid}",
        summary="One shared finding",
        **requires("working-groups:read"),
    )
    async def get_shared(
        self,
        request: Request[Principal, Any, Any],
        db_session: DbSession,
        group_id: FromPath[uuid.UUID],
        shared_finding_id: FromPath[uuid.UUID],
    ) -> Response[SharedFinding]:
        """404, like a random id, while the group is below its anonymity threshold."""
        shared = await service.get_shared(
            db_session, request.user.tenant_id, group_id, shared_finding_id
        )
        return Response(shared, headers={"ETag": etag_of(shared)})

    @get(
        "/insights",
        summary="Aggregates over a group's shared findings",
        **requires("working-groups:read"),
    )
    async def insights(
        self,
        request: Request[Principal, Any, Any],
        db_session: DbSession,
        group_id: FromPath[uuid.UUID],
        group_by: Annotated[
            str | None,
            QueryParameter(
                name="group_by",
                max_length=100,
                description="Comma-separated subset of area, country, period, severity, kind.",
            ),
        ] = None,
        supplier_id: SupplierQuery = None,
        area: AreaQuery = None,
        severity: SeverityQuery = None,
        country: CountryQuery = None,
        period: PeriodQuery = None,
        kind: KindQuery = None,
    ) -> Insights:
        """A cell is published only when at least `threshold` distinct contributors stand behind
        it and none accounts for more than 85 % of its findings; counts are rounded to
        `rounding_base`; suppressed cells are counted, never listed. While the group has fewer
        member tenants that can share than its anonymity threshold, no cells and
        `group_below_threshold` true."""
        dimensions, filters = service.insight_query(
            group_by,
            supplier_id=supplier_id,
            area=area,
            severity=severity,
            country=country,
            period=period,
            kind=kind,
        )
        return await service.insights(
            db_session, request.user.tenant_id, group_id, dimensions, filters
        )
