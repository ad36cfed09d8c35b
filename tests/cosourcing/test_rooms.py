"""Remediation rooms: introductions only after two opt-ins, through the one function; an opt-out
before that leaves nothing; participants alone read the thread and action items; facilitators
see how many, never who; the 72-hour reminder."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
import sqlalchemy as sa
from sqlalchemy.exc import DBAPIError

from tests.conftest import superuser_transaction
from tests.cosourcing.conftest import (
    ALERT,
    INTRODUCED,
    ROOM_EVENTS,
    Factory,
    events,
    everything_readable,
    get_ok,
    post,
    random_id,
    room_of,
    run_alerts,
    run_reminders,
    traces_of,
)
from tests.working_groups.conftest import Actor, assert_problem, error_fields
from wg_api.platform.database import Database


async def _room(client: httpx.AsyncClient, case: Factory, database: Database, settings: Any) -> str:
    await run_alerts(database, settings)
    return room_of(await events(client, case.linked[0], ALERT), case.shared_finding_id)


async def _opt_ins(database: Database, room_id: str) -> list[Any]:
    async with superuser_transaction(database) as session:
        rows = await session.execute(
            sa.text("SELECT tenant_id FROM cosourcing_opt_ins WHERE room_id = :id"),
            {"id": room_id},
        )
        return [row.tenant_id for row in rows]


async def test_one_opt_in_introduces_nobody_two_do(
    client: httpx.AsyncClient, factory_case: Factory, database: Database, settings: Any
) -> None:
    case = factory_case
    room = await _room(client, case, database, settings)
    first, second = case.linked
    path = f"/v1/remediation-rooms/{room}"
    alone = await post(client, first, f"{path}/opt-in")
    assert alone["status"] == "opted_in"
    assert alone["participants"] == []
    assert await events(client, first, INTRODUCED) == []
    # The other invitee sees only its own state.
    other = await get_ok(client, second, path)
    assert other["status"] == "invited"
    assert other["participants"] == []
    facilitator_view = await get_ok(
        client, case.group.facilitator, f"{case.group.path}/remediation-rooms"
    )
    assert facilitator_view["items"] == []
    # The second opt-in introduces both.
    together = await post(client, second, f"{path}/opt-in")
    assert together["status"] == "introduced"
    names = sorted(p["name"] for p in together["participants"])
    assert names == sorted([first.name, second.name])
    for actor in (first, second):
        told = await events(client, actor, INTRODUCED)
        assert len(told) == 1
        assert {p["id"] for p in told[0]["data"]["participants"]} == {
            str(first.id),
            str(second.id),
        }
        assert (await get_ok(client, actor, path))["status"] == "introduced"
    # The contributor, who did not opt in, still learns nothing.
    contributor_view = await get_ok(client, case.contributor, path)
    assert contributor_view["status"] == "invited"
    assert contributor_view["participants"] == []
    seen = await everything_readable(client, case.contributor)
    for other_brand in case.linked:
        for trace in traces_of(other_brand):
            assert trace not in seen
    # Facilitators: that the room exists and how many, never who.
    listed = await get_ok(client, case.group.facilitator, f"{case.group.path}/remediation-rooms")
    assert [(r["id"], r["participants_count"]) for r in listed["items"]] == [(room, 2)]
    text = str(listed)
    for actor in case.linked:
        for trace in traces_of(actor):
            assert trace not in text
    # A later opt-in joins at once and everyone is told the new list.
    joined = await post(client, case.contributor, f"{path}/opt-in")
    assert joined["status"] == "introduced"
    assert len(joined["participants"]) == 3
    assert len(await events(client, first, INTRODUCED)) == 2
    listed = await get_ok(client, case.group.facilitator, f"{case.group.path}/remediation-rooms")
    assert listed["items"][0]["participants_count"] == 3
    # Opting in again changes nothing.
    again = await post(client, first, f"{path}/opt-in")
    assert again == await get_ok(client, first, path)
    assert len(await events(client, first, INTRODUCED)) == 2


async def test_opt_out_before_the_introduction_leaves_nothing(
    client: httpx.AsyncClient, factory_case: Factory, database: Database, settings: Any
) -> None:
    case = factory_case
    room = await _room(client, case, database, settings)
    first, second = case.linked
    path = f"/v1/remediation-rooms/{room}"
    before = {a.slug: await everything_readable(client, a) for a in (case.contributor, second)}
    first_before = await everything_readable(client, first)
    await post(client, first, f"{path}/opt-in")
    assert await _opt_ins(database, room) == [first.id]
    out = await post(client, first, f"{path}/opt-out")
    assert out["status"] == "invited"
    assert await _opt_ins(database, room) == []
    # No event and no answer differs from before, for anyone, the opting tenant included.
    assert await everything_readable(client, first) == first_before
    for actor in (case.contributor, second):
        assert await everything_readable(client, actor) == before[actor.slug]
    # The next opt-in is the first one again: nobody is introduced.
    assert (await post(client, second, f"{path}/opt-in"))["status"] == "opted_in"
    async with superuser_transaction(database) as session:
        count = await session.scalar(
            sa.text("SELECT count(*) FROM cosourcing_participants WHERE room_id = :id"),
            {"id": room},
        )
    assert count == 0


async def test_opt_out_after_the_introduction_is_409(
    client: httpx.AsyncClient, factory_case: Factory, database: Database, settings: Any
) -> None:
    case = factory_case
    room = await _room(client, case, database, settings)
    path = f"/v1/remediation-rooms/{room}"
    for actor in case.linked:
        await post(client, actor, f"{path}/opt-in")
    response = await client.post(f"{path}/opt-out", headers=case.linked[0].headers)
    body = assert_problem(response, 409)
    assert body["type"] == "/problems/already-introduced"
    assert (await get_ok(client, case.linked[0], path))["status"] == "introduced"


async def _as_app(database: Database, actor: Actor, sql: str, room: str, **params: Any) -> Any:
    """`sql` run as the app role bound to `actor`, with `:room` and `params`."""
    async with database.transaction(actor.id) as session:
        return (await session.execute(sa.text(sql), {"room": room, **params})).all()


async def test_the_introducing_function_reveals_nothing_before_two(
    client: httpx.AsyncClient, factory_case: Factory, database: Database, settings: Any
) -> None:
    """Called directly as the app role: without an opt-in it refuses; with only the caller's
    own it answers false and changes nothing; participants and the room's introduction time are
    out of reach whatever the caller does."""
    case = factory_case
    room = await _room(client, case, database, settings)
    first, second = case.linked
    with pytest.raises(DBAPIError, match="not opted in"):
        await _as_app(database, first, "SELECT cosourcing_introduce(:room)", room)
    await post(client, second, f"/v1/remediation-rooms/{room}/opt-in")
    # The second tenant's opt-in cannot be seen or used by the first.
    assert await _as_app(database, first, "SELECT * FROM cosourcing_opt_ins", room) == []
    with pytest.raises(DBAPIError, match="not opted in"):
        await _as_app(database, first, "SELECT cosourcing_introduce(:room)", room)
    assert await _as_app(database, second, "SELECT cosourcing_introduce(:room)", room) == [(False,)]
    for actor in (first, second):
        assert await _as_app(database, actor, "SELECT * FROM cosourcing_participants", room) == []
        with pytest.raises(DBAPIError, match="permission denied"):
            await _as_app(
                database, actor, "SELECT introduced_at FROM cosourcing_rooms WHERE id = :room", room
            )
        with pytest.raises(DBAPIError, match="permission denied"):
            await _as_app(database, actor, "SELECT alert FROM cosourcing_rooms", room)
    # The facilitator's function hides a room with one opt-in.
    assert (
        await _as_app(
            database,
            case.group.facilitator,
            "SELECT * FROM cosourcing_group_rooms(:group)",
            room,
            group=case.group.id,
        )
        == []
    )
    # A tenant cannot opt in to a room it was not invited to, even with SQL.
    with pytest.raises(DBAPIError):
        async with database.transaction(case.unlinked.id) as session:
            await session.execute(
                sa.text("INSERT INTO cosourcing_opt_ins (tenant_id, room_id) VALUES (:t, :room)"),
                {"t": case.unlinked.id, "room": room},
            )
    # With two, it introduces and says so to the caller.
    await post(client, first, f"/v1/remediation-rooms/{room}/opt-in")
    rows = await _as_app(database, second, "SELECT tenant_id FROM cosourcing_participants", room)
    assert {row.tenant_id for row in rows} == {first.id, second.id}


async def test_the_thread_and_action_items_are_for_participants(
    client: httpx.AsyncClient, factory_case: Factory, database: Database, settings: Any
) -> None:
    case = factory_case
    room = await _room(client, case, database, settings)
    first, second = case.linked
    path = f"/v1/remediation-rooms/{room}"
    await post(client, first, f"{path}/opt-in")
    # Before the introduction the thread does not exist, even for one who opted in.
    not_yet = await client.get(f"{path}/messages", headers=first.headers)
    random = await client.get(
        f"/v1/remediation-rooms/{random_id()}/messages", headers=first.headers
    )
    assert_problem(not_yet, 404)
    assert not_yet.json() == random.json()
    await post(client, second, f"{path}/opt-in")
    message = await post(client, first, f"{path}/messages", {"body": "Call on Thursday?"}, 201)
    assert message["author"]["id"] == str(first.id)
    thread = await get_ok(client, second, f"{path}/messages")
    assert [m["body"] for m in thread["items"]] == ["Call on Thursday?"]
    told = await events(client, second, "remediation_room.message_posted")
    assert told[0]["data"]["body"] == "Call on Thursday?"
    item = await post(
        client,
        second,
        f"{path}/action-items",
        {"title": "Remediation plan with the factory", "owner_tenant_id": str(first.id)},
        201,
    )
    assert item["status"] == "open"
    stale = await client.patch(
        f"{path}/action-items/{item['id']}",
        json={"status": "done"},
        headers={"If-Match": '"stale"', **first.headers},
    )
    assert_problem(stale, 412)
    response = await client.patch(
        f"{path}/action-items/{item['id']}", json={"status": "done"}, headers=first.headers
    )
    assert response.status_code == 200, response.text
    assert response.json()["status"] == "done"
    listed = await get_ok(client, first, f"{path}/action-items")
    assert [i["status"] for i in listed["items"]] == ["done"]
    # An owner outside the room is refused, naming the field.
    response = await client.post(
        f"{path}/action-items",
        json={"title": "x", "owner_tenant_id": str(case.unlinked.id)},
        headers=first.headers,
    )
    assert error_fields(assert_problem(response, 422)) == {"owner_tenant_id"}
    # Everyone else: as for a random id, for every path of the room.
    random_room = f"/v1/remediation-rooms/{random_id()}"
    for outsider in (case.contributor, case.unlinked, case.young, case.group.facilitator):
        for suffix in ("/messages", "/action-items"):
            mine = await client.get(f"{path}{suffix}", headers=outsider.headers)
            other = await client.get(f"{random_room}{suffix}", headers=outsider.headers)
            assert_problem(mine, 404)
            assert mine.json() == other.json()
        response = await client.post(
            f"{path}/messages", json={"body": "hello"}, headers=outsider.headers
        )
        assert_problem(response, 404)
        response = await client.patch(
            f"{path}/action-items/{item['id']}", json={"status": "open"}, headers=outsider.headers
        )
        assert_problem(response, 404)


async def test_a_room_of_others_is_like_a_random_id(
    client: httpx.AsyncClient, factory_case: Factory, database: Database, settings: Any
) -> None:
    case = factory_case
    room = await _room(client, case, database, settings)
    for actor in (case.unlinked, case.young, case.group.facilitator, case.group.outsider):
        for suffix, method in (("", "GET"), ("/opt-in", "POST"), ("/opt-out", "POST")):
            mine = await client.request(
                method, f"/v1/remediation-rooms/{room}{suffix}", headers=actor.headers
            )
            other = await client.request(
                method, f"/v1/remediation-rooms/{random_id()}{suffix}", headers=actor.headers
            )
            assert_problem(mine, 404)
            assert mine.json() == other.json()
    assert await _opt_ins(database, room) == []


async def test_facilitators_only_see_the_group_rooms(
    client: httpx.AsyncClient, factory_case: Factory, database: Database, settings: Any
) -> None:
    case = factory_case
    path = f"{case.group.path}/remediation-rooms"
    assert_problem(await client.get(path, headers=case.linked[0].headers), 403)
    outsider = await client.get(path, headers=case.group.outsider.headers)
    random = await client.get(
        f"/v1/working-groups/{uuid.uuid4()}/remediation-rooms", headers=case.group.outsider.headers
    )
    assert_problem(outsider, 404)
    assert outsider.json() == random.json()
    headers = case.group.facilitator.headers
    assert_problem(await client.get(path, params={"limit": 201}, headers=headers), 400)
    assert_problem(await client.get(path, params={"cursor": "forged"}, headers=headers), 400)
    writer = await case.group.facilitator.handle.token("sharing:write")
    assert_problem(await client.get(path, headers={"Authorization": f"Bearer {writer}"}), 403)


async def test_the_72_hour_reminder_goes_to_every_invitee_once(
    client: httpx.AsyncClient, factory_case: Factory, database: Database, settings: Any
) -> None:
    case = factory_case
    room = await _room(client, case, database, settings)
    reminder = "remediation_room.deadline_reminder"
    await run_reminders(database, datetime.now(UTC) + timedelta(hours=71))
    assert await events(client, case.contributor, reminder) == []
    await run_reminders(database, datetime.now(UTC) + timedelta(hours=73))
    await run_reminders(database, datetime.now(UTC) + timedelta(hours=74))
    for actor in (case.contributor, *case.linked):
        mine = [
            e
            for e in await events(client, actor, reminder)
            if e["data"]["remediation_room_id"] == room
        ]
        assert len(mine) == 1, actor.slug
        assert set(mine[0]["data"]) == {
            "remediation_room_id",
            "working_group_id",
            "shared_finding_id",
            "deadline_at",
        }
    for actor in case.bystanders:
        assert await events(client, actor, reminder) == []


async def test_scopes_bodies_and_pages(
    client: httpx.AsyncClient, factory_case: Factory, database: Database, settings: Any
) -> None:
    case = factory_case
    room = await _room(client, case, database, settings)
    first, second = case.linked
    path = f"/v1/remediation-rooms/{room}"
    reader = {"Authorization": f"Bearer {await first.handle.token('findings:read')}"}
    writer = {"Authorization": f"Bearer {await first.handle.token('sharing:write')}"}
    assert_problem(await client.post(f"{path}/opt-in", headers=reader), 403)
    assert_problem(await client.get(path, headers=writer), 403)
    assert_problem(await client.get("/v1/remediation-rooms", headers=writer), 403)
    assert await _opt_ins(database, room) == []
    await post(client, first, f"{path}/opt-in")
    await post(client, second, f"{path}/opt-in")
    response = await client.post(
        f"{path}/messages", json={"body": "hi", "tenant_id": str(second.id)}, headers=first.headers
    )
    assert error_fields(assert_problem(response, 400)) == {"tenant_id"}
    response = await client.post(f"{path}/messages", json={"body": ""}, headers=first.headers)
    assert error_fields(assert_problem(response, 422)) == {"body"}
    response = await client.post(f"{path}/action-items", json={"title": 7}, headers=first.headers)
    assert_problem(response, 400)
    response = await client.patch(
        f"{path}/action-items/{random_id()}", json={"status": "closed"}, headers=first.headers
    )
    assert error_fields(assert_problem(response, 422)) == {"status"}
    assert (await get_ok(client, first, f"{path}/messages"))["items"] == []
    for list_path in ("/v1/remediation-rooms", f"{path}/messages", f"{path}/action-items"):
        response = await client.get(list_path, params={"limit": 201}, headers=first.headers)
        assert_problem(response, 400)
    # Pages: three messages two at a time.
    for n in range(3):
        await post(client, first, f"{path}/messages", {"body": f"m{n}"}, 201)
    page = await get_ok(client, second, f"{path}/messages", limit=2)
    assert [m["body"] for m in page["items"]] == ["m0", "m1"]
    rest = await get_ok(client, second, f"{path}/messages", limit=2, cursor=page["next_cursor"])
    assert [m["body"] for m in rest["items"]] == ["m2"]
    assert rest["next_cursor"] is None
    # Idempotent POST: the same key replays the first answer.
    key = {"Idempotency-Key": uuid.uuid4().hex, **first.headers}
    one = await client.post(f"{path}/messages", json={"body": "once"}, headers=key)
    two = await client.post(f"{path}/messages", json={"body": "once"}, headers=key)
    assert one.status_code == 201
    assert two.json() == one.json()
    assert two.headers.get("idempotent-replayed") == "true"


async def test_room_events_name_only_participants(
    client: httpx.AsyncClient, factory_case: Factory, database: Database, settings: Any
) -> None:
    case = factory_case
    room = await _room(client, case, database, settings)
    path = f"/v1/remediation-rooms/{room}"
    for actor in case.linked:
        await post(client, actor, f"{path}/opt-in")
    await post(client, case.linked[0], f"{path}/messages", {"body": "Plan?"}, 201)
    for actor in (case.contributor, *case.bystanders):
        assert await events(client, actor, ROOM_EVENTS) == []
