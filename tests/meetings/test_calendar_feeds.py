"""Secret calendar feed URLs: made, listed and revoked through /v1/calendar-feeds, fetched at
/feeds/{token}.ics with no bearer token, tied to the tenant's current memberships."""

from __future__ import annotations

import hashlib
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

import sqlalchemy as sa

from tests.conftest import superuser_transaction
from tests.meetings.conftest import schedule, start_in
from tests.meetings.test_calendar_text import expand, fetch_calendar, listed
from tests.working_groups.conftest import Room, assert_problem, create_group, error_fields
from wg_api import demo

FEEDS = "/v1/calendar-feeds"
RANDOM_TOKEN = "A" * 43


async def _make_feed(client, actor, **body: Any) -> dict[str, Any]:
    response = await client.post(FEEDS, json=body, headers=actor.headers)
    assert response.status_code == 201, response.text
    assert response.headers["cache-control"] == "no-store"
    feed: dict[str, Any] = response.json()
    return feed


def _path(feed: dict[str, Any]) -> str:
    return urlsplit(str(feed["url"])).path


async def _group_items(client, room: Room) -> list[dict[str, Any]]:
    response = await client.get(
        f"{room.path}/meetings",
        params={"limit": 200, "to": "2100-01-01T00:00:00Z"},
        headers=room.member.headers,
    )
    assert response.status_code == 200
    items: list[dict[str, Any]] = response.json()["items"]
    return items


async def test_a_group_feed_is_the_groups_calendar_without_a_bearer_token(client, room, settings):
    await schedule(client, room, rrule="FREQ=WEEKLY;COUNT=12", timezone="Europe/Stockholm")
    feed = await _make_feed(client, room.member, working_group_id=room.id, name="Office Outlook")
    assert set(feed) == {"id", "url", "working_group_id", "name", "created_at", "revoked_at"}
    assert feed["working_group_id"] == room.id
    assert feed["url"].startswith(f"{settings.public_url}/feeds/")
    token = _path(feed).removeprefix("/feeds/").removesuffix(".ics")
    assert len(token) == 43  # 256 bits, URL-safe base64
    response = await fetch_calendar(client, _path(feed))
    assert response.status_code == 200, response.text
    now = datetime.now(UTC)
    assert expand(response.content, now, now + timedelta(days=700)) == listed(
        await _group_items(client, room)
    )
    bearer = await fetch_calendar(client, f"{room.path}/calendar.ics", room.member.headers)
    assert bearer.content == response.content


async def test_only_the_tokens_hash_is_stored_and_a_replay_shows_no_url(client, room, database):
    feed = await _make_feed(client, room.member)
    token = _path(feed).removeprefix("/feeds/").removesuffix(".ics")
    key = {"Idempotency-Key": f"feed-{uuid.uuid4()}"}
    again = await client.post(FEEDS, json={}, headers={**room.member.headers, **key})
    assert again.status_code == 201
    other_token = urlsplit(again.json()["url"]).path.removeprefix("/feeds/").removesuffix(".ics")
    # A retry with the key answers the same feed, its URL not shown again (nothing keeps it).
    replay = await client.post(FEEDS, json={}, headers={**room.member.headers, **key})
    assert replay.status_code == 201
    assert replay.json()["id"] == again.json()["id"]
    assert replay.json()["url"] is None
    listed = await client.get(FEEDS, headers=room.member.headers)
    assert len([f for f in listed.json()["items"] if f["id"] == again.json()["id"]]) == 1
    async with superuser_transaction(database) as session:
        stored = (
            await session.execute(
                sa.text("SELECT token_hash FROM calendar_feeds WHERE id = :id"), {"id": feed["id"]}
            )
        ).scalar_one()
        dumps = await session.execute(
            sa.text(
                "SELECT (SELECT string_agg(t::text, '') FROM calendar_feeds t) || "
                "coalesce((SELECT string_agg(k::text, '') FROM idempotency_keys k), '')"
            )
        )
        everything = dumps.scalar_one()
    assert bytes(stored) == hashlib.sha256(token.encode()).digest()
    assert token not in everything
    assert other_token not in everything


async def test_listing_never_shows_urls_and_revoking_makes_the_url_404(client, room):
    feed = await _make_feed(client, room.member, working_group_id=room.id)
    other = await _make_feed(client, room.member)
    listed_feeds = await client.get(FEEDS, headers=room.member.headers)
    assert listed_feeds.status_code == 200
    items = listed_feeds.json()["items"]
    assert [f["id"] for f in items] == [feed["id"], other["id"]]
    assert all("url" not in f for f in items)
    assert feed["url"].split("/")[-1] not in listed_feeds.text

    read = await client.get(f"{FEEDS}/{feed['id']}", headers=room.member.headers)
    assert read.status_code == 200
    stale = await client.delete(
        f"{FEEDS}/{feed['id']}", headers={**room.member.headers, "If-Match": '"stale"'}
    )
    assert_problem(stale, 412)
    first = await fetch_calendar(client, _path(feed))
    assert first.status_code == 200
    revoked = await client.delete(
        f"{FEEDS}/{feed['id']}",
        headers={**room.member.headers, "If-Match": read.headers["etag"]},
    )
    assert revoked.status_code == 204
    gone = await client.get(_path(feed), headers={"If-None-Match": first.headers["etag"]})
    random = await client.get(f"/feeds/{RANDOM_TOKEN}.ics")
    malformed = await client.get("/feeds/not-a-token.ics")
    no_suffix = await client.get(_path(feed).removesuffix(".ics"))
    body = assert_problem(random, 404)
    for answer in (gone, malformed, no_suffix):
        assert assert_problem(answer, 404) == body
    again = await client.delete(f"{FEEDS}/{feed['id']}", headers=room.member.headers)
    assert again.status_code == 204
    after = await client.get(f"{FEEDS}/{feed['id']}", headers=room.member.headers)
    assert after.json()["revoked_at"] is not None
    assert (await fetch_calendar(client, _path(other))).status_code == 200


async def test_an_all_groups_feed_follows_current_memberships(client, room, new_actor):
    own_group = await create_group(client, room.member, name="Member's own group")
    await schedule(client, room, title="Room meeting")
    mine = await client.post(
        f"/v1/working-groups/{own_group['id']}/meetings",
        json={
            "title": "Own group meeting",
            "start_local": start_in(15),
            "duration_minutes": 60,
            "location": {"mode": "online", "online_url": "https://meet.example/own"},
        },
        headers=room.member.headers,
    )
    assert mine.status_code == 201, mine.text
    outsiders = await create_group(client, room.outsider, name="Outsider group")
    theirs = await client.post(
        f"/v1/working-groups/{outsiders['id']}/meetings",
        json={
            "title": "Outsider secret meeting",
            "start_local": start_in(16),
            "duration_minutes": 60,
            "location": {"mode": "online", "online_url": "https://meet.example/secret"},
        },
        headers=room.outsider.headers,
    )
    assert theirs.status_code == 201
    everything = await _make_feed(client, room.member)
    assert everything["working_group_id"] is None
    just_room = await _make_feed(client, room.member, working_group_id=room.id)

    before = await fetch_calendar(client, _path(everything))
    # Unchanged, both kinds of feed answer 304 (the ETag from the token's lookup alone).
    again = await fetch_calendar(
        client, _path(everything), {"If-None-Match": before.headers["etag"]}
    )
    assert again.status_code == 304
    room_before = await fetch_calendar(client, _path(just_room))
    room_again = await fetch_calendar(
        client, _path(just_room), {"If-None-Match": room_before.headers["etag"]}
    )
    assert room_again.status_code == 304
    assert b"SUMMARY:Room meeting" in before.content
    assert b"SUMMARY:Own group meeting" in before.content
    assert b"Outsider" not in before.content
    assert b"meet.example/secret" not in before.content

    left = await client.delete(f"{room.path}/members/{room.member.id}", headers=room.member.headers)
    assert left.status_code == 204, left.text
    after = await fetch_calendar(
        client, _path(everything), {"If-None-Match": before.headers["etag"]}
    )
    assert after.status_code == 200
    assert after.headers["etag"] != before.headers["etag"]
    assert b"SUMMARY:Room meeting" not in after.content
    assert b"SUMMARY:Own group meeting" in after.content
    gone = await client.get(_path(just_room))
    # Its client's cached copy is no longer confirmed either: 404, not 304.
    gone_cached = await client.get(
        _path(just_room), headers={"If-None-Match": room_before.headers["etag"]}
    )
    assert assert_problem(gone_cached, 404) == assert_problem(gone, 404)
    random = await client.get(f"/feeds/{RANDOM_TOKEN}.ics")
    assert assert_problem(gone, 404) == assert_problem(random, 404)


async def test_if_none_match_answers_304_until_something_changes(client, room):
    meeting = await schedule(client, room)
    feed = await _make_feed(client, room.observer, working_group_id=room.id)
    first = await fetch_calendar(client, _path(feed))
    etag = first.headers["etag"]
    same = await fetch_calendar(client, _path(feed), {"If-None-Match": etag})
    assert same.status_code == 304
    assert same.content == b""
    assert same.headers["etag"] == etag
    moved = await client.patch(
        f"/v1/meetings/{meeting['id']}",
        json={"start_local": start_in(31)},
        headers=room.facilitator.headers,
    )
    assert moved.status_code == 200
    changed = await fetch_calendar(client, _path(feed), {"If-None-Match": etag})
    assert changed.status_code == 200
    assert changed.headers["etag"] != etag
    renamed = await client.patch(
        room.path, json={"name": "Renamed group"}, headers=room.facilitator.headers
    )
    assert renamed.status_code == 200, renamed.text
    named = await fetch_calendar(client, _path(feed), {"If-None-Match": changed.headers["etag"]})
    assert named.status_code == 200
    assert b"X-WR-CALNAME:Renamed group (wg-api)" in named.content


async def test_another_tenants_feed_is_404_like_a_random_id(client, room):
    feed = await _make_feed(client, room.member)
    random_id = "00000000-0000-4000-8000-000000000000"
    for method in ("GET", "DELETE"):
        theirs = await client.request(
            method, f"{FEEDS}/{feed['id']}", headers=room.observer.headers
        )
        random = await client.request(method, f"{FEEDS}/{random_id}", headers=room.observer.headers)
        assert assert_problem(theirs, 404) == assert_problem(random, 404)
    listing = await client.get(FEEDS, headers=room.observer.headers)
    assert feed["id"] not in listing.text
    assert (await fetch_calendar(client, _path(feed))).status_code == 200
    not_mine = await client.post(
        FEEDS, json={"working_group_id": room.id}, headers=room.outsider.headers
    )
    no_group = await client.post(
        FEEDS, json={"working_group_id": random_id}, headers=room.outsider.headers
    )
    assert assert_problem(not_mine, 404) == assert_problem(no_group, 404)


async def test_feeds_need_meetings_read(client, room):
    feed = await _make_feed(client, room.member)
    token = await room.member.handle.token("findings:read")
    headers = {"Authorization": f"Bearer {token}"}
    assert_problem(await client.post(FEEDS, json={}, headers=headers), 403)
    assert_problem(await client.get(FEEDS, headers=headers), 403)
    assert_problem(await client.delete(f"{FEEDS}/{feed['id']}", headers=headers), 403)
    assert (await client.get(FEEDS)).status_code == 401


async def test_bad_input_changes_nothing(client, room):
    headers = room.member.headers
    unknown = await client.post(FEEDS, json={"tenant_id": str(room.outsider.id)}, headers=headers)
    assert "tenant_id" in error_fields(assert_problem(unknown, 400))
    wrong_type = await client.post(FEEDS, json={"working_group_id": 12}, headers=headers)
    assert_problem(wrong_type, 400)
    blank = await client.post(FEEDS, json={"name": "   "}, headers=headers)
    assert error_fields(assert_problem(blank, 422)) == {"name"}
    long = await client.post(FEEDS, json={"name": "x" * 101}, headers=headers)
    assert error_fields(assert_problem(long, 422)) == {"name"}
    oversize = await client.get(FEEDS, params={"limit": 201}, headers=headers)
    assert_problem(oversize, 400)
    listing = await client.get(FEEDS, headers=headers)
    assert listing.json()["items"] == []


async def test_the_version_function_tells_a_non_member_nothing(client, room, database):
    await schedule(client, room)
    query = sa.text("SELECT * FROM meeting_calendar_version(CAST(:groups AS uuid[]))")
    async with database.transaction(room.member.id) as session:
        member_view = (await session.execute(query, {"groups": [room.id]})).one()
    async with database.transaction(room.outsider.id) as session:
        outsider_view = (await session.execute(query, {"groups": [room.id]})).one()
    assert member_view.meetings == 1
    assert member_view.meetings_updated is not None
    assert tuple(outsider_view) == (0, None, 0, None)


async def test_the_demo_feed_is_made_again_and_the_last_one_revoked(
    client, room, database, settings
):
    await schedule(client, room, title="Demo quarterly")
    tenants = [{"tenant": {"id": room.facilitator.id, "slug": demo.FACILITATOR}}]
    first = await demo._calendar_feed(database, settings, tenants, room.id)
    second = await demo._calendar_feed(database, settings, tenants, room.id)
    assert first["url"] != second["url"]
    assert_problem(await client.get(_path(first)), 404)
    response = await fetch_calendar(client, _path(second))
    assert response.status_code == 200
    assert b"SUMMARY:Demo quarterly" in response.content
