"""Funding endpoints: initiatives, pledges, payments, expenses, the statement, the cost split,
outcome indicators.

An initiative, pledge or indicator the caller may not see (another group's, a draft to a member
who is not a facilitator, another tenant's pledge under `totals_only`) answers 404 exactly as a
random id; a member who may see it but not do the action gets 403.
"""

from __future__ import annotations

import csv
import hashlib
import io
import uuid
from collections.abc import AsyncIterator
from typing import Annotated, Any, Literal

import msgspec
from litestar import Controller, Request, Response, get, patch, post
from litestar.params import FromPath, JSONBody, QueryParameter
from litestar.response import Stream
from sqlalchemy.ext.asyncio import AsyncConnection

from wg_api.funding import service
from wg_api.funding.schemas import (
    STATEMENT_COLUMNS,
    CostSplit,
    CostSplitIn,
    Expense,
    ExpenseIn,
    Indicator,
    IndicatorIn,
    Initiative,
    InitiativeIn,
    InitiativePatch,
    Payment,
    PaymentIn,
    Pledge,
    PledgeIn,
    Result,
    ResultIn,
    Reversal,
    Statement,
)
from wg_api.identity.access import requires
from wg_api.identity.principal import Principal
from wg_api.platform.http import Body, check_if_match, etag_of
from wg_api.platform.pagination import Page, Pagination, page_response
from wg_api.platform.transaction import DbSession

READ = "funding:read"
WRITE = "funding:write"


def _with_etag(resource: msgspec.Struct) -> Response[Any]:
    return Response(resource, headers={"ETag": etag_of(resource)})


def _created(resource: msgspec.Struct, location: str) -> Response[Any]:
    return Response(
        resource, status_code=201, headers={"ETag": etag_of(resource), "Location": location}
    )


class GroupInitiativesController(Controller):
    path = "/working-groups/{group_id:uuid}/initiatives"
    tags = ["Funding"]

    @post(summary="Create an initiative", data_dto=Body[InitiativeIn], **requires(WRITE))
    async def create(
        self,
        request: Request[Principal, Any, Any],
        data: JSONBody[InitiativeIn],
        db_session: DbSession,
        group_id: FromPath[uuid.UUID],
    ) -> Response[Initiative]:
        """Facilitators only. Budget and funding target (default: the budget) are in the
        initiative's currency; it starts as a `draft` only facilitators see."""
        initiative = await service.create_initiative(
            db_session, request.user.tenant_id, group_id, data
        )
        return _created(initiative, f"/v1/initiatives/{initiative.id}")

    @get(summary="The group's initiatives", **requires(READ))
    async def list_initiatives(
        self,
        request: Request[Principal, Any, Any],
        db_session: DbSession,
        page: Pagination,
        group_id: FromPath[uuid.UUID],
    ) -> Response[Page[Initiative]]:
        """Newest first. Drafts only for facilitators. Each with its `funding` block."""
        result = await service.list_initiatives(
            db_session, request.user.tenant_id, group_id, after=page.after, limit=page.limit
        )
        return page_response(request, result)


class InitiativesController(Controller):
    path = "/initiatives"
    tags = ["Funding"]

    @get("/{initiative_id:uuid}", summary="One initiative", **requires(READ))
    async def get_one(
        self,
        request: Request[Principal, Any, Any],
        db_session: DbSession,
        initiative_id: FromPath[uuid.UUID],
    ) -> Response[Initiative]:
        """With its `funding` block: under `totals_only`, a member who is not a facilitator sees
        `committed` only behind 3 committed funders and `paid` only as released funders lines."""
        return _with_etag(
            await service.get_initiative(db_session, request.user.tenant_id, initiative_id)
        )

    @patch(
        "/{initiative_id:uuid}",
        summary="Change or move an initiative",
        data_dto=Body[InitiativePatch],
        **requires(WRITE),
    )
    async def change(
        self,
        request: Request[Principal, Any, Any],
        data: JSONBody[InitiativePatch],
        db_session: DbSession,
        initiative_id: FromPath[uuid.UUID],
    ) -> Response[Initiative]:
        """Facilitators only; honours `If-Match`. Fields change while `draft`; `status` moves
        `draft -> open`, `funded -> active`, `active -> completed`, or to `cancelled` from any
        state but `completed`. `open -> funded` happens by itself. Other moves: 409."""
        tenant_id = request.user.tenant_id
        current = await service.initiative_for_change(db_session, tenant_id, initiative_id)
        check_if_match(request, etag_of(current))
        return _with_etag(await service.change_initiative(db_session, tenant_id, current, data))

    @post(
        "/{initiative_id:uuid}/pledges",
        summary="Pledge to an initiative",
        data_dto=Body[PledgeIn],
        **requires(WRITE),
    )
    async def pledge(
        self,
        request: Request[Principal, Any, Any],
        data: JSONBody[PledgeIn],
        db_session: DbSession,
        initiative_id: FromPath[uuid.UUID],
    ) -> Response[Pledge]:
        """Members and facilitators, while `open` or `funded`. In another currency than the
        initiative's, `fx_rate` (initiative currency per one unit of the pledge's) is required;
        in the same, refused. The pledge is `offered` until you commit it."""
        pledge = await service.create_pledge(
            db_session, request.user.tenant_id, initiative_id, data
        )
        return _created(pledge, f"/v1/pledges/{pledge.id}")

    @get("/{initiative_id:uuid}/pledges", summary="The initiative's pledges", **requires(READ))
    async def list_pledges(
        self,
        request: Request[Principal, Any, Any],
        db_session: DbSession,
        page: Pagination,
        initiative_id: FromPath[uuid.UUID],
    ) -> Response[Page[Pledge]]:
        """Oldest first. Under `totals_only`, a member who is not a facilitator sees its own."""
        result = await service.list_pledges(
            db_session, request.user.tenant_id, initiative_id, after=page.after, limit=page.limit
        )
        return page_response(request, result)

    @post(
        "/{initiative_id:uuid}/expenses",
        summary="Record an expense",
        data_dto=Body[ExpenseIn],
        **requires(WRITE),
    )
    async def record_expense(
        self,
        request: Request[Principal, Any, Any],
        data: JSONBody[ExpenseIn],
        db_session: DbSession,
        initiative_id: FromPath[uuid.UUID],
    ) -> Response[Expense]:
        """Facilitators only, while open, funded or active; booked in the ledger at once."""
        expense = await service.record_expense(
            db_session, request.user.tenant_id, initiative_id, data
        )
        return Response(expense, status_code=201, headers={"ETag": etag_of(expense)})

    @get("/{initiative_id:uuid}/expenses", summary="The initiative's expenses", **requires(READ))
    async def list_expenses(
        self,
        request: Request[Principal, Any, Any],
        db_session: DbSession,
        page: Pagination,
        initiative_id: FromPath[uuid.UUID],
    ) -> Response[Page[Expense]]:
        """Oldest first."""
        result = await service.list_expenses(
            db_session, request.user.tenant_id, initiative_id, after=page.after, limit=page.limit
        )
        return page_response(request, result)

    @post(
        "/{initiative_id:uuid}/cost-split",
        summary="Split an amount between funders",
        data_dto=Body[CostSplitIn],
        status_code=200,
        **requires(READ),
    )
    async def cost_split(
        self,
        request: Request[Principal, Any, Any],
        data: JSONBody[CostSplitIn],
        db_session: DbSession,
        initiative_id: FromPath[uuid.UUID],
    ) -> CostSplit:
        """A calculation that changes nothing: shares in proportion to integer weights, by
        largest remainder (ties to the lower tenant_id), adding up to the amount exactly."""
        return await service.cost_split(db_session, request.user.tenant_id, initiative_id, data)

    @post(
        "/{initiative_id:uuid}/indicators",
        summary="Define an outcome indicator",
        data_dto=Body[IndicatorIn],
        **requires(WRITE),
    )
    async def create_indicator(
        self,
        request: Request[Principal, Any, Any],
        data: JSONBody[IndicatorIn],
        db_session: DbSession,
        initiative_id: FromPath[uuid.UUID],
    ) -> Response[Indicator]:
        """Facilitators only. `breakdown` names the parts results may be split into."""
        indicator = await service.create_indicator(
            db_session, request.user.tenant_id, initiative_id, data
        )
        return _created(indicator, f"/v1/indicators/{indicator.id}")

    @get(
        "/{initiative_id:uuid}/indicators",
        summary="The initiative's indicators",
        **requires(READ),
    )
    async def list_indicators(
        self,
        request: Request[Principal, Any, Any],
        db_session: DbSession,
        page: Pagination,
        initiative_id: FromPath[uuid.UUID],
    ) -> Response[Page[Indicator]]:
        """Oldest first, each with its results and their total."""
        result = await service.list_indicators(
            db_session, request.user.tenant_id, initiative_id, after=page.after, limit=page.limit
        )
        return page_response(request, result)

    @get(
        "/{initiative_id:uuid}/statement",
        summary="The initiative's statement",
        **requires(READ),
    )
    async def statement(
        self,
        request: Request[Principal, Any, Any],
        db_session: DbSession,
        initiative_id: FromPath[uuid.UUID],
        format: Annotated[
            Literal["json", "csv"],
            QueryParameter(name="format", description="`json` (default) or `csv`."),
        ] = "json",
    ) -> Response[Statement]:
        """The ledger, oldest first, with a running balance: payments in (positive), expenses
        out (negative). Under `totals_only`, a member who is not a facilitator gets `funders`
        lines instead of payments: one per calendar month (UTC) with payments from at least 3
        tenants, the rest carried forward. `?format=csv`: the same entries, one a row."""
        source = await service.statement_source(db_session, request.user.tenant_id, initiative_id)
        if format == "csv":
            # Documented as the JSON Statement; the CSV streams with the same entries.
            return Stream(  # type: ignore[return-value]
                _csv(db_session, source),
                media_type="text/csv",  # Litestar adds `; charset=utf-8` to text/*
                headers={
                    "Content-Disposition": f'attachment; filename="statement-{initiative_id}.csv"'
                },
            )
        body = await service.statement_json(db_session, source)
        etag = '"' + hashlib.sha256(body).hexdigest()[:32] + '"'
        return Response(
            content=body,  # type: ignore[arg-type]
            media_type="application/json",
            headers={"ETag": etag},
        )


async def _csv(session: AsyncConnection, source: service.StatementSource) -> AsyncIterator[bytes]:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    writer.writerow(STATEMENT_COLUMNS)
    rows = 0
    async for row in service.statement_rows(session, source):
        original = row["original_amount"]
        balance = row["balance"]
        writer.writerow(
            (
                row["id"],
                row["booked_at"].isoformat().replace("+00:00", "Z"),
                row["kind"],
                row["description"],
                row["amount"],
                source.currency,
                "" if original is None else original,
                row["original_currency"] or "",
                row["fx_rate"] or "",
                "" if balance is None else balance,
            )
        )
        rows += 1
        if rows % 500 == 0:
            yield buffer.getvalue().encode()
            buffer.seek(0)
            buffer.truncate()
    yield buffer.getvalue().encode()


class PledgesController(Controller):
    path = "/pledges"
    tags = ["Funding"]

    @get("/{pledge_id:uuid}", summary="One pledge", **requires(READ))
    async def get_one(
        self,
        request: Request[Principal, Any, Any],
        db_session: DbSession,
        pledge_id: FromPath[uuid.UUID],
    ) -> Response[Pledge]:
        """The pledging tenant and facilitators; every member under `open` visibility."""
        return _with_etag(await service.get_pledge(db_session, request.user.tenant_id, pledge_id))

    @post("/{pledge_id:uuid}/commit", summary="Commit a pledge", status_code=200, **requires(WRITE))
    async def commit(
        self,
        request: Request[Principal, Any, Any],
        db_session: DbSession,
        pledge_id: FromPath[uuid.UUID],
    ) -> Response[Pledge]:
        """The pledging tenant: `offered -> committed`. When committed pledges reach the target,
        the initiative becomes `funded` (once, whatever commits at the same moment)."""
        return _with_etag(
            await service.commit_pledge(db_session, request.user.tenant_id, pledge_id)
        )

    @post(
        "/{pledge_id:uuid}/withdraw",
        summary="Withdraw a pledge",
        status_code=200,
        **requires(WRITE),
    )
    async def withdraw(
        self,
        request: Request[Principal, Any, Any],
        db_session: DbSession,
        pledge_id: FromPath[uuid.UUID],
    ) -> Response[Pledge]:
        """The pledging tenant, while `offered`, or `committed` with nothing paid while the
        initiative is `open`: a commitment binds once the initiative is funded. Otherwise 409."""
        return _with_etag(
            await service.withdraw_pledge(db_session, request.user.tenant_id, pledge_id)
        )

    @post(
        "/{pledge_id:uuid}/payments",
        summary="Record a payment on a pledge",
        data_dto=Body[PaymentIn],
        **requires(WRITE),
    )
    async def record_payment(
        self,
        request: Request[Principal, Any, Any],
        data: JSONBody[PaymentIn],
        db_session: DbSession,
        pledge_id: FromPath[uuid.UUID],
    ) -> Response[Payment]:
        """Facilitators only, on a committed pledge, in the pledge's currency, converted with
        the pledge's rate. `committed -> partially_paid -> fulfilled`; paying more: 422."""
        payment = await service.record_payment(db_session, request.user.tenant_id, pledge_id, data)
        return Response(payment, status_code=201, headers={"ETag": etag_of(payment)})


class IndicatorsController(Controller):
    path = "/indicators"
    tags = ["Funding"]

    @get("/{indicator_id:uuid}", summary="One indicator with its results", **requires(READ))
    async def get_one(
        self,
        request: Request[Principal, Any, Any],
        db_session: DbSession,
        indicator_id: FromPath[uuid.UUID],
    ) -> Response[Indicator]:
        """`total` is the sum of the results' values."""
        return _with_etag(
            await service.get_indicator(db_session, request.user.tenant_id, indicator_id)
        )

    @post(
        "/{indicator_id:uuid}/results",
        summary="Report a result",
        data_dto=Body[ResultIn],
        **requires(WRITE),
    )
    async def report(
        self,
        request: Request[Principal, Any, Any],
        data: JSONBody[ResultIn],
        db_session: DbSession,
        indicator_id: FromPath[uuid.UUID],
    ) -> Response[Result]:
        """Facilitators only. A breakdown has exactly the indicator's keys and adds up to the
        value."""
        result = await service.report_result(db_session, request.user.tenant_id, indicator_id, data)
        return Response(result, status_code=201, headers={"ETag": etag_of(result)})


class ExpensesController(Controller):
    path = "/expenses"
    tags = ["Funding"]

    @post("/{expense_id:uuid}/reverse", summary="Reverse an expense", **requires(WRITE))
    async def reverse(
        self,
        request: Request[Principal, Any, Any],
        db_session: DbSession,
        expense_id: FromPath[uuid.UUID],
    ) -> Response[Reversal]:
        """Facilitators only. The ledger is append-only: a wrong expense is corrected by a
        reversing booking (kind `reversal` in the statement), once; the expense stays, marked
        `reversed`."""
        reversal = await service.reverse_expense(db_session, request.user.tenant_id, expense_id)
        return Response(reversal, status_code=201, headers={"ETag": etag_of(reversal)})
