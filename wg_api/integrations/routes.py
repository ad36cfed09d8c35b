"""The change feed: GET /v1/events."""

from __future__ import annotations

from typing import Annotated, Any
from urllib.parse import urlencode

from litestar import Controller, Request, Response, get
from litestar.params import QueryParameter

from wg_api.identity.access import requires
from wg_api.identity.principal import Principal
from wg_api.platform.errors import InvalidRequest
from wg_api.platform.events import EventFeed, read_feed
from wg_api.platform.pagination import CURSOR_CIPHER_STATE_KEY, PAGE_DEFAULT, PAGE_MAX


class EventsController(Controller):
    path = "/events"
    tags = ["Events"]

    @get(summary="The change feed", **requires("events:read"))
    async def feed(
        self,
        request: Request[Principal, Any, Any],
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

        `next_cursor` is always where to resume (after the last event returned, or where you
        were when nothing new arrived): store it and poll with it. It is opaque and only valid
        for your tenant; a changed or foreign cursor answers 400, one older than the retention
        (30 days) 410. `has_more` says whether another page is ready now. Events about shared
        findings carry the day only and reach each group after a random delay.
        """
        type_list = [t.strip() for t in types.split(",") if t.strip()] if types else None
        if type_list and any(len(t) > 100 for t in type_list):
            raise InvalidRequest("Event types are at most 100 characters.")
        state = request.app.state
        settings = state["settings"]
        feed = await read_feed(
            state["database"],
            state[CURSOR_CIPHER_STATE_KEY],
            request.user.tenant_id,
            after=after,
            types=type_list,
            limit=limit,
            retention_days=settings.event_retention_days,
        )
        headers = {}
        if feed.has_more:
            query = {k: v for k, v in request.query_params.items() if k != "after"}
            query["after"] = feed.next_cursor
            headers["Link"] = f'<{request.base_url}v1/events?{urlencode(query)}>; rel="next"'
        return Response(feed, headers=headers)
