"""Every meeting endpoint: another tenant sees a random id's 404, a missing scope is 403, members
who are not facilitators get 403 on organiser actions, an oversize page is 400."""

from __future__ import annotations

import uuid
from typing import Any

from tests.meetings.conftest import schedule
from tests.working_groups.conftest import assert_problem

MINUTES = {"summary": "s", "action_items": [{"title": "t"}]}


def _endpoints(
    group_id: object,
    meeting_id: object,
    series_id: object,
    agenda_id: object,
    action_id: object,
    tenant_id: object,
) -> list[tuple[str, str, dict[str, Any] | None]]:
    meeting = f"/v1/meetings/{meeting_id}"
    return [
        (
            "POST",
            f"/v1/working-groups/{group_id}/meetings",
            {
                "title": "x",
                "start_local": "2099-01-01T10:00",
                "duration_minutes": 60,
                "location": {"mode": "online", "online_url": "https://x.example"},
            },
        ),
        ("GET", f"/v1/working-groups/{group_id}/meetings", None),
        ("GET", f"/v1/working-groups/{group_id}/action-items", None),
        ("GET", f"/v1/meeting-series/{series_id}", None),
        ("GET", meeting, None),
        ("PATCH", meeting, {"title": "Taken"}),
        ("POST", f"{meeting}/cancel", {}),
        ("PUT", f"{meeting}/rsvp", {"response": "accepted"}),
        ("GET", f"{meeting}/rsvps", None),
        ("POST", f"{meeting}/agenda-items", {"title": "Mine"}),
        ("GET", f"{meeting}/agenda-items", None),
        ("PUT", f"{meeting}/minutes", MINUTES),
        ("GET", f"{meeting}/minutes", None),
        ("POST", f"{meeting}/minutes/publish", None),
        (
            "PUT",
            f"{meeting}/attendance",
            {"tenants": [{"tenant_id": str(tenant_id), "attended": True}]},
        ),
        ("GET", f"{meeting}/attendance", None),
        ("GET", f"/v1/agenda-items/{agenda_id}", None),
        ("PATCH", f"/v1/agenda-items/{agenda_id}", {"status": "accepted"}),
        ("DELETE", f"/v1/agenda-items/{agenda_id}", None),
        ("GET", f"/v1/action-items/{action_id}", None),
        ("PATCH", f"/v1/action-items/{action_id}", {"status": "done"}),
    ]


async def _populated(client, room) -> tuple[dict[str, Any], str, str]:
    meeting = await schedule(client, room, rrule="FREQ=WEEKLY;COUNT=2")
    url = f"/v1/meetings/{meeting['id']}"
    agenda = await client.post(
        f"{url}/agenda-items", json={"title": "Item"}, headers=room.member.headers
    )
    await client.put(f"{url}/minutes", json=MINUTES, headers=room.facilitator.headers)
    await client.post(f"{url}/minutes/publish", headers=room.facilitator.headers)
    items = await client.get(f"{room.path}/action-items", headers=room.facilitator.headers)
    return meeting, agenda.json()["id"], items.json()["items"][0]["id"]


async def _state(client, room, meeting) -> Any:
    meeting_now = await client.get(
        f"/v1/meetings/{meeting['id']}", headers=room.facilitator.headers
    )
    agenda = await client.get(
        f"/v1/meetings/{meeting['id']}/agenda-items", headers=room.facilitator.headers
    )
    rsvps = await client.get(
        f"/v1/meetings/{meeting['id']}/rsvps", headers=room.facilitator.headers
    )
    listed = await client.get(f"{room.path}/meetings", headers=room.facilitator.headers)
    return meeting_now.json(), agenda.json(), rsvps.json(), listed.json()


async def test_other_tenants_get_a_random_ids_404_everywhere_and_change_nothing(client, room):
    meeting, agenda_id, action_id = await _populated(client, room)
    before = await _state(client, room, meeting)
    real = _endpoints(
        room.id, meeting["id"], meeting["series_id"], agenda_id, action_id, room.member.id
    )
    fake = _endpoints(
        uuid.uuid4(), uuid.uuid4(), uuid.uuid4(), uuid.uuid4(), uuid.uuid4(), room.member.id
    )
    for (method, path, payload), (_, random_path, _) in zip(real, fake, strict=True):
        answer = await client.request(method, path, json=payload, headers=room.outsider.headers)
        random = await client.request(
            method, random_path, json=payload, headers=room.outsider.headers
        )
        assert_problem(answer, 404)
        assert answer.json() == random.json(), (method, path)
    assert await _state(client, room, meeting) == before


async def test_a_tenant_that_leaves_loses_the_meetings_at_once(client, room):
    meeting, _, _ = await _populated(client, room)
    left = await client.delete(f"{room.path}/members/{room.member.id}", headers=room.member.headers)
    assert left.status_code == 204
    assert_problem(
        await client.get(f"/v1/meetings/{meeting['id']}", headers=room.member.headers), 404
    )
    summary = (
        await client.get(f"/v1/meetings/{meeting['id']}/rsvps", headers=room.facilitator.headers)
    ).json()["summary"]
    assert summary["no_response"] == 2


async def test_scopes_are_checked(client, room):
    meeting, agenda_id, action_id = await _populated(client, room)
    read_only = {"Authorization": f"Bearer {await room.facilitator.handle.token('meetings:read')}"}
    groups_only = await room.facilitator.handle.token("working-groups:read working-groups:write")
    no_meetings = {"Authorization": f"Bearer {groups_only}"}
    for method, path, payload in _endpoints(
        room.id, meeting["id"], meeting["series_id"], agenda_id, action_id, room.member.id
    ):
        response = await client.request(method, path, json=payload, headers=no_meetings)
        assert_problem(response, 403)
        if method != "GET":
            assert_problem(await client.request(method, path, json=payload, headers=read_only), 403)
        else:
            assert (await client.request(method, path, headers=read_only)).status_code == 200, path


async def test_organiser_actions_are_for_facilitators(client, room):
    meeting, agenda_id, _ = await _populated(client, room)
    url = f"/v1/meetings/{meeting['id']}"
    organiser: list[tuple[str, str, Any]] = [
        ("POST", f"{room.path}/meetings", _endpoints(room.id, 0, 0, 0, 0, 0)[0][2]),
        ("PATCH", url, {"title": "Mine"}),
        ("PATCH", url, {"scope": "series", "title": "Mine"}),
        ("POST", f"{url}/cancel", {}),
        ("PUT", f"{url}/minutes", MINUTES),
        ("POST", f"{url}/minutes/publish", None),
        ("PUT", f"{url}/attendance", {"tenants": []}),
    ]
    for actor in (room.member, room.observer):
        for method, path, payload in organiser:
            response = await client.request(method, path, json=payload, headers=actor.headers)
            assert_problem(response, 403)
    # The proposer itself may not accept its item (the observer does not even see it: 404).
    accept = await client.patch(
        f"/v1/agenda-items/{agenda_id}", json={"status": "accepted"}, headers=room.member.headers
    )
    assert_problem(accept, 403)
    assert (await client.get(url, headers=room.member.headers)).json()["title"] == meeting["title"]


async def test_oversize_pages_are_400(client, room):
    meeting, _, _ = await _populated(client, room)
    for path in (
        f"{room.path}/meetings",
        f"{room.path}/action-items",
        f"/v1/meetings/{meeting['id']}/agenda-items",
    ):
        assert_problem(
            await client.get(path, params={"limit": 201}, headers=room.member.headers), 400
        )
        assert_problem(
            await client.get(path, params={"cursor": "!!"}, headers=room.member.headers), 400
        )
