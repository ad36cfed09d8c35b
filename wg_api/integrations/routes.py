"""The change feed: GET /v1/events."""

from __future__ import annotations

from typing import Annotated, Any

from litestar import Controller, Request, Response, get
from litestar.params import QueryParameter

from wg_api.identity.auth import requires
from wg_api.identity.principal import Principal
from wg_api.platform.errors import InvalidRequest
from wg_api.platform.events import EventFeed, read_feed
from wg_api.platform.pagination import PAGE_DEFAULT, PAGE_MAX
from wg_api.platform.transaction import DbSession


class EventsController(Controller):
    path = "/events"
    tags = ["Events"]

    @get(summary="The change feed", **requires("events:read"))
    async def feed(
        self,
        request: Request[Principal, Any, Any],
        db_session: DbSession,
        after: Annotated[
            str | None,
            QueryParameter(
                name="after", max_length=512, description="`next_cursor` of the last page."
            ),
        ] = None,
        types: Annotated[
            str | None,
            QueryParameter(
                name="types", max_length=1000, description="Comma-separated event types."
            ),
        ] = None,
        limit: Annotated[int, QueryParameter(name="limit", ge=1, le=PAGE_MAX)] = PAGE_DEFAULT,
    ) -> Response[EventFeed]:
        """The tenant's events in the order they became visible, resumable from `next_cursor`.

        `next_cursor` is always the position after the last event returned (or the `after`
        you sent, when nothing new arrived): store it and poll with it. `has_more` says whether
        another page is ready now. A cursor older than the retention (30 days) answers 410.
        """
        type_list = [t.strip() for t in types.split(",") if t.strip()] if types else None
        if type_list and any(len(t) > 100 for t in type_list):
            raise InvalidRequest("Event types are at most 100 characters.")
        settings = request.app.state["settings"]
        feed = await read_feed(
            db_session,
            request.user.tenant_id,
            after=after,
            types=type_list,
            limit=limit,
            retention_days=settings.event_retention_days,
        )
        headers = {}
        if feed.has_more and feed.next_cursor:
            from urllib.parse import urlencode

            query = {k: v for k, v in request.query_params.items() if k != "after"}
            query["after"] = feed.next_cursor
            headers["Link"] = f'<{request.base_url}v1/events?{urlencode(query)}>; rel="next"'
        return Response(feed, headers=headers)
