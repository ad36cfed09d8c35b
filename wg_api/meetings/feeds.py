"""Calendars: a group's `calendar.ics`, secret feed URLs, and the public feed behind each URL.

A feed's token is 256 random bits, shown once in its URL and stored only as its SHA-256. The
public feed finds the feed's tenant through the owner's function (the only step before a tenant
is known), then reads everything in that tenant's transaction under RLS: a feed of all the
tenant's groups follows its current memberships, and a feed of one group it has left answers
404 exactly as an unknown or revoked token does.

Calendar clients poll often, so every answer has a strong ETag computed before anything is built
from one cheap query (count and latest `updated_at` of the occurrences and series shown, plus the
groups' names and versions); `If-None-Match` with it answers 304 without building anything.
"""

from __future__ import annotations

import asyncio
import hashlib
import re
import secrets
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import msgspec
from sqlalchemy.ext.asyncio import AsyncConnection

from wg_api.meetings import calendar, feed_repository, service
from wg_api.meetings.feed_repository import FeedRecord, FeedState
from wg_api.meetings.schemas import CalendarFeed, CalendarFeedIn, CalendarFeedWithUrl
from wg_api.platform.database import Database
from wg_api.platform.errors import FieldError, NotFound, ValidationFailed
from wg_api.platform.pagination import (
    Page,
    decode_cursor,
    identifier,
    keyset,
    moment,
    paginate,
)
from wg_api.working_groups import service as groups
from wg_api.working_groups.service import Membership

FEED_NOT_FOUND = "No such calendar feed."
TOKEN_BYTES = 32
# secrets.token_urlsafe(32): 43 characters of the URL-safe base64 alphabet.
_TOKEN = re.compile(r"^[A-Za-z0-9_-]{43}$")
# Part of every ETag: raise it when the rendering changes, so no client keeps a stale copy.
RENDERING = "calendar-1"
ALL_TIME = (datetime(1970, 1, 1, tzinfo=UTC), datetime(9999, 1, 1, tzinfo=UTC))
ALL_GROUPS_NAME = "Working group meetings (wg-api)"


@dataclass(frozen=True)
class CalendarAnswer:
    """The calendar's ETag, and its text unless the client's copy is current (None: 304)."""

    etag: str
    body: bytes | None


@dataclass(frozen=True)
class _Shown:
    """What a calendar shows: its name and its groups (id, name, `updated_at`)."""

    name: str
    groups: tuple[tuple[uuid.UUID, str, datetime], ...]

    @property
    def group_ids(self) -> list[uuid.UUID]:
        return [group[0] for group in self.groups]


def hash_token(token: str) -> bytes:
    return hashlib.sha256(token.encode("ascii")).digest()


def etag_matches(if_none_match: str | None, etag: str) -> bool:
    """RFC 9110 If-None-Match: `*` or any listed tag (weak comparison, as GET asks)."""
    if not if_none_match:
        return False
    tags = {tag.strip().removeprefix("W/") for tag in if_none_match.split(",")}
    return "*" in tags or etag in tags


def _etag(shown: _Shown, version: Sequence[Any]) -> str:
    parts = [RENDERING, shown.name, *map(str, shown.groups), *map(str, version)]
    return '"' + hashlib.sha256("\n".join(parts).encode()).hexdigest()[:32] + '"'


async def _answer(
    session: AsyncConnection, shown: _Shown, if_none_match: str | None
) -> CalendarAnswer:
    # The version is read before the rows: a change in between makes the next poll fetch again,
    # never hides one.
    version = (
        await feed_repository.calendar_version(session, shown.group_ids)
        if shown.groups
        else (0, None, 0, None)
    )
    etag = _etag(shown, version)
    if etag_matches(if_none_match, etag):
        return CalendarAnswer(etag, None)
    return CalendarAnswer(etag, await build(session, shown.name, shown.group_ids))


async def build(session: AsyncConnection, name: str, group_ids: Sequence[uuid.UUID]) -> bytes:
    """The calendar of these groups' occurrences (all of them, cancelled ones too)."""
    rows = await service.list_occurrences(session, group_ids, *ALL_TIME) if group_ids else []
    series = await service.series_records(session, (r.series_id for r in rows if r.series_id))
    # In a thread: a cold build (no VEVENT cached yet) is CPU work the event loop must not wait on.
    return await asyncio.to_thread(calendar.render, name, rows, series)


def _one_group_shown(group_id: uuid.UUID, name: str, updated_at: datetime) -> _Shown:
    return _Shown(f"{name} (wg-api)", ((group_id, name, updated_at),))


def _group_shown(member: Membership) -> _Shown:
    group = member.group
    return _one_group_shown(group.id, group.name, group.updated_at)


async def group_calendar(
    session: AsyncConnection, member: Membership, if_none_match: str | None
) -> CalendarAnswer:
    return await _answer(session, _group_shown(member), if_none_match)


async def _all_groups_shown(session: AsyncConnection, tenant_id: uuid.UUID) -> _Shown:
    found: list[tuple[uuid.UUID, str, datetime]] = []
    after: tuple[Any, ...] | None = None
    while True:
        page = await groups.list_groups(session, tenant_id, after=after, limit=200)
        found.extend((g.id, g.name, g.updated_at) for g in page.items)
        if page.next_cursor is None:
            break
        after = decode_cursor(page.next_cursor)
    return _Shown(ALL_GROUPS_NAME, tuple(sorted(found)))


# The public feed ------------------------------------------------------------------------------


async def feed_owner(database: Database, token: str) -> FeedState:
    """The live feed with this token, with what its ETag is made of, or 404 (malformed, unknown
    and revoked tokens alike, with the same body)."""
    found = None
    if _TOKEN.match(token):
        found = await feed_repository.feed_for_token(database, hash_token(token))
    if found is None:
        raise NotFound(FEED_NOT_FOUND)
    return found


def unchanged_etag(state: FeedState, if_none_match: str | None) -> str | None:
    """The feed's ETag when `If-None-Match` holds it (a 304, without a tenant's transaction),
    else None: the feed is read and built as its tenant may read it now (and a group feed of a
    group the tenant left answers 404 there)."""
    if not if_none_match or (not state.all_groups and not state.groups):
        return None
    if state.all_groups:
        shown = _Shown(ALL_GROUPS_NAME, state.groups)
    else:
        [group] = state.groups
        shown = _one_group_shown(*group)
    etag = _etag(shown, state.version)
    return etag if etag_matches(if_none_match, etag) else None


async def feed_calendar(
    database: Database, tenant_id: uuid.UUID, feed_id: uuid.UUID, if_none_match: str | None
) -> CalendarAnswer:
    """The feed as its tenant may read it now."""
    async with database.transaction(tenant_id) as session:
        feed = await feed_repository.feed(session, tenant_id, feed_id)
        if feed is None or feed.revoked_at is not None:
            raise NotFound(FEED_NOT_FOUND)
        if feed.working_group_id is None:
            shown = await _all_groups_shown(session, tenant_id)
        else:
            member = await groups.membership(session, feed.working_group_id, tenant_id)
            if member is None:
                raise NotFound(FEED_NOT_FOUND)
            shown = _group_shown(member)
        return await _answer(session, shown, if_none_match)


# Managing feeds -------------------------------------------------------------------------------


def _feed_out(record: FeedRecord) -> CalendarFeed:
    return CalendarFeed(
        id=record.id,
        working_group_id=record.working_group_id,
        name=record.name,
        created_at=record.created_at,
        revoked_at=record.revoked_at,
    )


async def create_feed(
    session: AsyncConnection, tenant_id: uuid.UUID, data: CalendarFeedIn, public_url: str
) -> CalendarFeedWithUrl:
    name = data.name.strip() if data.name is not None else None
    if name == "":
        raise ValidationFailed(
            "The calendar feed is not valid.", errors=[FieldError("name", "must not be blank")]
        )
    if data.working_group_id is not None:
        await groups.require_member(session, data.working_group_id, tenant_id)
    token = secrets.token_urlsafe(TOKEN_BYTES)
    record = await feed_repository.insert_feed(
        session,
        {
            "tenant_id": tenant_id,
            "id": uuid.uuid4(),
            "working_group_id": data.working_group_id,
            "name": name,
            "token_hash": hash_token(token),
        },
    )
    return CalendarFeedWithUrl(
        url=f"{public_url}/feeds/{token}.ics", **msgspec.structs.asdict(_feed_out(record))
    )


async def list_feeds(
    session: AsyncConnection, tenant_id: uuid.UUID, *, after: tuple[Any, ...] | None, limit: int
) -> Page[CalendarFeed]:
    rows = await feed_repository.feeds(
        session, tenant_id, after=keyset(after, moment, identifier), limit=limit + 1
    )
    return paginate([_feed_out(r) for r in rows], limit, lambda f: [f.created_at, f.id])


async def get_feed(
    session: AsyncConnection, tenant_id: uuid.UUID, feed_id: uuid.UUID
) -> CalendarFeed:
    record = await feed_repository.feed(session, tenant_id, feed_id)
    if record is None:
        raise NotFound(FEED_NOT_FOUND)
    return _feed_out(record)


async def revoke_feed(session: AsyncConnection, tenant_id: uuid.UUID, feed_id: uuid.UUID) -> None:
    """The feed's URL answers 404 from now on; revoking it again changes nothing."""
    await get_feed(session, tenant_id, feed_id)
    await feed_repository.revoke(session, tenant_id, feed_id)


async def revoke_feeds_named(session: AsyncConnection, tenant_id: uuid.UUID, name: str) -> int:
    """Revoke the tenant's live feeds called `name` (the demo's, made again on every run)."""
    return await feed_repository.revoke_named(session, tenant_id, name)
