"""Calendar endpoints: a group's `calendar.ics` (bearer), secret feed URLs (`/v1/calendar-feeds`)
and the public feed (`/feeds/{token}.ics`, no bearer: the token is the credential).

Every calendar answers a strong `ETag` and honours `If-None-Match` with a 304 that builds nothing.
"""

from __future__ import annotations

import uuid
from typing import Any, cast

from litestar import Controller, Request, Response, delete, get, post
from litestar.openapi.datastructures import ResponseSpec
from litestar.params import FromPath, JSONBody

from wg_api.identity.access import requires
from wg_api.identity.principal import Principal
from wg_api.identity.rate_limit import (
    LIMITER_STATE_KEY,
    UNAUTHENTICATED_STATE_KEY,
    RateLimiter,
    UnauthenticatedGate,
    client_address,
    rate_limit_headers,
)
from wg_api.meetings import feeds
from wg_api.meetings.calendar import MEDIA_TYPE
from wg_api.meetings.schemas import CalendarFeed, CalendarFeedIn, CalendarFeedWithUrl
from wg_api.platform.asgi import Scope
from wg_api.platform.database import Database
from wg_api.platform.errors import NotFound, RateLimited
from wg_api.platform.http import Body, check_if_match, etag_of
from wg_api.platform.pagination import Page, Pagination, page_response
from wg_api.platform.transaction import IDEMPOTENCY_SCOPE_KEY, DbSession, PendingKey
from wg_api.settings import Settings
from wg_api.working_groups import service as groups

READ = "meetings:read"
WRITE = "meetings:write"
TAGS = ["Meetings"]
FEED_SUFFIX = ".ics"

AnyRequest = Request[Principal, Any, Any]

_CALENDAR_RESPONSES = {
    304: ResponseSpec(data_container=None, description="Not modified: `If-None-Match` matched."),
}


def _calendar_response(answer: feeds.CalendarAnswer) -> Response[bytes]:
    headers = {"ETag": answer.etag, "Cache-Control": "private, no-cache"}
    if answer.body is None:
        return Response(b"", status_code=304, headers=headers, media_type=MEDIA_TYPE)
    return Response(answer.body, media_type=MEDIA_TYPE, headers=headers)


def _replay_without_url(request: AnyRequest) -> None:
    """The answer's `url` holds the token, stored only as a hash: an Idempotency-Key replay
    answers the same feed with `"url": null` (shown once, as a client's secret is)."""
    pending: PendingKey | None = cast(Scope, request.scope).get(IDEMPOTENCY_SCOPE_KEY)
    if pending is not None:
        pending.secret_fields = pending.secret_fields | {"url"}


class GroupCalendarController(Controller):
    path = "/working-groups/{group_id:uuid}"
    tags = TAGS

    @get(
        "/calendar.ics",
        summary="The group's meetings as a calendar",
        media_type=MEDIA_TYPE,
        responses=_CALENDAR_RESPONSES,
        **requires(READ),
    )
    async def calendar_ics(
        self, request: AnyRequest, db_session: DbSession, group_id: FromPath[uuid.UUID]
    ) -> Response[bytes]:
        """RFC 5545 (`text/calendar`): each series one VEVENT with its RRULE, changed and
        cancelled occurrences as VEVENTs with a RECURRENCE-ID, a VTIMEZONE per zone used.
        Answers an `ETag`; `If-None-Match` with it answers 304."""
        member = await groups.require_member(db_session, group_id, request.user.tenant_id)
        answer = await feeds.group_calendar(
            db_session, member, request.headers.get("if-none-match")
        )
        return _calendar_response(answer)


class CalendarFeedsController(Controller):
    path = "/calendar-feeds"
    tags = TAGS

    @post(
        summary="Make a secret calendar feed URL",
        status_code=201,
        data_dto=Body[CalendarFeedIn],
        **requires(READ),
    )
    async def create(
        self, request: AnyRequest, data: JSONBody[CalendarFeedIn], db_session: DbSession
    ) -> Response[CalendarFeedWithUrl]:
        """A URL to paste into a calendar client: the meetings of `working_group_id`, or of
        every group your tenant is in (as it is in them at each fetch). The URL carries a 256-bit
        token, shown this once and stored only as a hash; revoke the feed to stop it."""
        settings: Settings = request.app.state["settings"]
        feed = await feeds.create_feed(
            db_session, request.user.tenant_id, data, settings.public_url
        )
        _replay_without_url(request)
        return Response(
            feed,
            status_code=201,
            headers={"Location": f"/v1/calendar-feeds/{feed.id}", "Cache-Control": "no-store"},
        )

    @get(summary="Your tenant's calendar feeds", **requires(READ))
    async def list_feeds(
        self, request: AnyRequest, db_session: DbSession, page: Pagination
    ) -> Response[Page[CalendarFeed]]:
        """Oldest first, revoked ones too. Never their URLs."""
        result = await feeds.list_feeds(
            db_session, request.user.tenant_id, after=page.after, limit=page.limit
        )
        return page_response(request, result)

    @get("/{feed_id:uuid}", summary="One calendar feed", **requires(READ))
    async def get_one(
        self, request: AnyRequest, db_session: DbSession, feed_id: FromPath[uuid.UUID]
    ) -> Response[CalendarFeed]:
        feed = await feeds.get_feed(db_session, request.user.tenant_id, feed_id)
        return Response(feed, headers={"ETag": etag_of(feed)})

    @delete("/{feed_id:uuid}", summary="Revoke a calendar feed", **requires(READ))
    async def revoke(
        self, request: AnyRequest, db_session: DbSession, feed_id: FromPath[uuid.UUID]
    ) -> None:
        """Its URL answers 404 from now on, as an unknown one does. Honours `If-Match`."""
        tenant_id = request.user.tenant_id
        check_if_match(request, etag_of(await feeds.get_feed(db_session, tenant_id, feed_id)))
        await feeds.revoke_feed(db_session, tenant_id, feed_id)


class PublicFeedController(Controller):
    """Outside /v1: no bearer token, no request transaction; the feed's token is the credential."""

    path = "/feeds"
    tags = TAGS

    @get(
        "/{token:str}",
        summary="A calendar feed (the URL's token is the credential)",
        media_type=MEDIA_TYPE,
        security=[{}],
        responses=_CALENDAR_RESPONSES,
    )
    async def feed(self, request: Request[Any, Any, Any], token: FromPath[str]) -> Response[bytes]:
        """`token` is the feed's token followed by `.ics`. Unknown and revoked tokens, and a
        group feed of a group the tenant has left, answer 404 alike. Answers an `ETag`;
        `If-None-Match` with it answers 304."""
        if not token.endswith(FEED_SUFFIX):
            raise NotFound(feeds.FEED_NOT_FOUND)
        state = request.app.state
        gate: UnauthenticatedGate = state[UNAUTHENTICATED_STATE_KEY]
        database: Database = state["database"]
        address = client_address(cast(Scope, request.scope))
        # The lookup is work for a caller not yet known: its address pays, and is paid back when
        # the token is a live feed's, so guessing tokens is slowed down and polling is not.
        gate.spend(address)
        async with gate.db_slot():
            found = await feeds.feed_owner(database, token[: -len(FEED_SUFFIX)])
        gate.addresses.give_back(address)
        tenant_id, feed_id = found.tenant_id, found.feed_id
        limiter: RateLimiter = state[LIMITER_STATE_KEY]
        settings: Settings = state["settings"]
        decision = limiter.hit(f"tenant:{tenant_id}", settings.rate_limit_per_minute)
        if not decision.allowed:
            error = RateLimited(
                f"The tenant's limit of {decision.limit} requests a minute is reached."
            )
            error.headers.update({k.decode(): v.decode() for k, v in rate_limit_headers(decision)})
            raise error
        if_none_match = request.headers.get("if-none-match")
        if (etag := feeds.unchanged_etag(found, if_none_match)) is not None:
            return _calendar_response(feeds.CalendarAnswer(etag, None))
        answer = await feeds.feed_calendar(database, tenant_id, feed_id, if_none_match)
        return _calendar_response(answer)


CONTROLLERS = [GroupCalendarController, CalendarFeedsController]
