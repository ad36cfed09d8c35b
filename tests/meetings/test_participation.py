"""What belongs to one occurrence: RSVPs, agenda items, minutes and action items, attendance."""

from __future__ import annotations

import uuid
from typing import Any

from tests.meetings.conftest import schedule, series_of, start_in
from tests.working_groups.conftest import assert_problem, error_fields, event_data


async def test_rsvps_one_per_tenant_with_emails_for_facilitators_and_the_tenant_itself(
    client, room
):
    meeting = await schedule(client, room)
    url = f"/v1/meetings/{meeting['id']}"
    first = await client.put(
        f"{url}/rsvp",
        json={
            "response": "tentative",
            "attendees": [{"name": "Ann Lee", "email": "ann@brand.example"}],
        },
        headers=room.member.headers,
    )
    assert first.status_code == 200, first.text
    second = await client.put(
        f"{url}/rsvp",
        json={
            "response": "accepted",
            "attendees": [
                {"name": "Ann Lee", "email": "ann@brand.example"},
                {"name": "Bo Chan"},
            ],
            "comment": "Both of us in person",
        },
        headers=room.member.headers,
    )
    assert second.json()["response"] == "accepted"
    assert second.json()["tenant"] == room.member.ref()
    declined = await client.put(
        f"{url}/rsvp", json={"response": "declined"}, headers=room.observer.headers
    )
    assert declined.status_code == 200

    async def answers(actor: Any) -> dict[str, Any]:
        response = await client.get(f"{url}/rsvps", headers=actor.headers)
        assert response.status_code == 200, response.text
        result: dict[str, Any] = response.json()
        return result

    as_facilitator = await answers(room.facilitator)
    assert as_facilitator["summary"] == {
        "accepted": 1,
        "tentative": 0,
        "declined": 1,
        "no_response": 1,
    }
    by_tenant = {item["tenant"]["id"]: item for item in as_facilitator["items"]}
    assert by_tenant[str(room.member.id)]["attendees"] == [
        {"name": "Ann Lee", "email": "ann@brand.example"},
        {"name": "Bo Chan", "email": None},
    ]
    assert by_tenant[str(room.member.id)]["comment"] == "Both of us in person"
    as_member = await answers(room.member)
    assert {a["email"] for a in as_member["items"][0]["attendees"]} == {"ann@brand.example", None}
    as_observer = await answers(room.observer)
    member_answer = next(
        i for i in as_observer["items"] if i["tenant"]["id"] == str(room.member.id)
    )
    assert [a["email"] for a in member_answer["attendees"]] == [None, None]
    assert [a["name"] for a in member_answer["attendees"]] == ["Ann Lee", "Bo Chan"]
    read = await client.get(url, headers=room.member.headers)
    assert read.json()["my_rsvp"] == "accepted"
    assert (await client.get(url, headers=room.facilitator.headers)).json()["my_rsvp"] is None
    for bad, field in (
        ({"response": "maybe"}, "response"),
        (
            {"response": "accepted", "attendees": [{"name": "X", "email": "not-an-email"}]},
            "attendees",
        ),
        (
            {"response": "accepted", "attendees": [{"name": f"P{i}"} for i in range(21)]},
            "attendees",
        ),
        ({"response": "accepted", "comment": "x" * 501}, "comment"),
        ({"response": "accepted", "attendees": [{"name": "  "}]}, "attendees[0].name"),
    ):
        problem = assert_problem(
            await client.put(f"{url}/rsvp", json=bad, headers=room.member.headers), 422
        )
        assert any(f.startswith(field) for f in error_fields(problem)), problem
    unknown = await client.put(
        f"{url}/rsvp", json={"response": "accepted", "tenant_id": "x"}, headers=room.member.headers
    )
    assert_problem(unknown, 400)


async def _propose(client, actor, meeting_id: str, title: str) -> dict[str, Any]:
    response = await client.post(
        f"/v1/meetings/{meeting_id}/agenda-items",
        json={"title": title, "duration_minutes": 20},
        headers=actor.headers,
    )
    assert response.status_code == 201, response.text
    item: dict[str, Any] = response.json()
    return item


async def _agenda(client, actor, meeting_id: str) -> list[tuple[str, str, int | None]]:
    response = await client.get(f"/v1/meetings/{meeting_id}/agenda-items", headers=actor.headers)
    assert response.status_code == 200, response.text
    return [(i["title"], i["status"], i["position"]) for i in response.json()["items"]]


async def test_agenda_proposals_visibility_and_order(client, room, new_actor, database):
    meeting = await schedule(client, room)
    mid = meeting["id"]
    mine = await _propose(client, room.member, mid, "Remediation fund")
    assert mine["status"] == "proposed"
    assert mine["proposed_by"] == room.member.ref()
    [event] = await event_data(database, room.facilitator, "agenda_item.proposed")
    assert event["agenda_item_id"] == mine["id"]
    assert event["item_title"] == "Remediation fund"
    assert event["meeting_id"] == mid
    assert await event_data(database, room.member, "agenda_item.proposed") == []
    assert await event_data(database, room.observer, "agenda_item.proposed") == []
    observer = await client.post(
        f"/v1/meetings/{mid}/agenda-items", json={"title": "Mine"}, headers=room.observer.headers
    )
    assert_problem(observer, 403)
    a = await _propose(client, room.facilitator, mid, "Welcome")
    b = await _propose(client, room.facilitator, mid, "Budget")
    c = await _propose(client, room.facilitator, mid, "Any other business")
    rejected = await _propose(client, room.member, mid, "Off topic")

    async def decide(item: dict[str, Any], **change: Any) -> dict[str, Any]:
        response = await client.patch(
            f"/v1/agenda-items/{item['id']}", json=change, headers=room.facilitator.headers
        )
        assert response.status_code == 200, response.text
        result: dict[str, Any] = response.json()
        return result

    assert (await decide(b, status="accepted"))["position"] == 1
    assert (await decide(c, status="accepted"))["position"] == 2
    assert (await decide(a, status="accepted", position=1))["position"] == 1
    await decide(rejected, status="rejected")
    assert await _agenda(client, room.facilitator, mid) == [
        ("Welcome", "accepted", 1),
        ("Budget", "accepted", 2),
        ("Any other business", "accepted", 3),
        ("Remediation fund", "proposed", None),
        ("Off topic", "rejected", None),
    ]
    # Members see accepted items and their own proposals, rejected too; observers accepted ones.
    assert await _agenda(client, room.member, mid) == [
        ("Welcome", "accepted", 1),
        ("Budget", "accepted", 2),
        ("Any other business", "accepted", 3),
        ("Remediation fund", "proposed", None),
        ("Off topic", "rejected", None),
    ]
    assert [t for t, _, _ in await _agenda(client, room.observer, mid)] == [
        "Welcome",
        "Budget",
        "Any other business",
    ]
    hidden = await client.get(f"/v1/agenda-items/{mine['id']}", headers=room.observer.headers)
    random = await client.get(f"/v1/agenda-items/{uuid.uuid4()}", headers=room.observer.headers)
    assert_problem(hidden, 404)
    assert hidden.json() == random.json()
    # Moving and rejecting renumbers the accepted items.
    await decide(c, position=1)
    await decide(a, status="rejected")
    assert [
        (t, p) for t, s, p in await _agenda(client, room.facilitator, mid) if s == "accepted"
    ] == [
        ("Any other business", 1),
        ("Budget", 2),
    ]
    paged = await client.get(
        f"/v1/meetings/{mid}/agenda-items", params={"limit": 2}, headers=room.facilitator.headers
    )
    rest = await client.get(
        f"/v1/meetings/{mid}/agenda-items",
        params={"cursor": paged.json()["next_cursor"]},
        headers=room.facilitator.headers,
    )
    assert [i["title"] for i in paged.json()["items"] + rest.json()["items"]] == [
        t for t, _, _ in await _agenda(client, room.facilitator, mid)
    ]
    # The proposer edits its proposal while proposed, and may delete it; not after a decision.
    edited = await client.patch(
        f"/v1/agenda-items/{mine['id']}",
        json={"title": "Remediation fund 2027", "duration_minutes": 30},
        headers=room.member.headers,
    )
    assert edited.status_code == 200, edited.text
    assert edited.json()["title"] == "Remediation fund 2027"
    organise = await client.patch(
        f"/v1/agenda-items/{mine['id']}", json={"status": "accepted"}, headers=room.member.headers
    )
    assert_problem(organise, 403)
    late = await client.patch(
        f"/v1/agenda-items/{rejected['id']}", json={"title": "Again"}, headers=room.member.headers
    )
    assert_problem(late, 409)
    other = await client.patch(
        f"/v1/agenda-items/{b['id']}", json={"title": "Mine now"}, headers=room.member.headers
    )
    assert_problem(other, 403)
    position = await client.patch(
        f"/v1/agenda-items/{mine['id']}", json={"position": 1}, headers=room.facilitator.headers
    )
    assert "position" in error_fields(assert_problem(position, 422))
    deleted = await client.delete(f"/v1/agenda-items/{mine['id']}", headers=room.member.headers)
    assert deleted.status_code == 204
    gone = await client.delete(f"/v1/agenda-items/{b['id']}", headers=room.member.headers)
    assert_problem(gone, 403)
    removed = await client.delete(f"/v1/agenda-items/{c['id']}", headers=room.facilitator.headers)
    assert removed.status_code == 204
    assert [
        (t, p) for t, s, p in await _agenda(client, room.facilitator, mid) if s == "accepted"
    ] == [("Budget", 1)]


async def test_minutes_draft_publish_revisions_and_action_items(client, room, database):
    meeting = await schedule(client, room)
    url = f"/v1/meetings/{meeting['id']}"
    assert_problem(await client.get(f"{url}/minutes", headers=room.member.headers), 404)
    draft = {
        "summary": "Agreed the 2027 plan.",
        "decisions": [{"text": "Fund the summer child-friendly spaces"}],
        "action_items": [
            {
                "title": "Circulate budget",
                "owner_tenant_id": str(room.member.id),
                "due_on": "2027-04-01",
            },
            {"title": "Book venue"},
        ],
    }
    assert_problem(await client.put(f"{url}/minutes", json=draft, headers=room.member.headers), 403)
    put = await client.put(f"{url}/minutes", json=draft, headers=room.facilitator.headers)
    assert put.status_code == 200, put.text
    assert put.json()["status"] == "draft"
    assert put.json()["revision"] == 0
    assert_problem(await client.get(f"{url}/minutes", headers=room.member.headers), 404)
    assert_problem(
        await client.get(f"{url}/minutes", params={"draft": "true"}, headers=room.member.headers),
        403,
    )
    as_draft = await client.get(
        f"{url}/minutes", params={"draft": "true"}, headers=room.facilitator.headers
    )
    assert as_draft.json()["summary"] == "Agreed the 2027 plan."
    assert (
        await client.get(f"/v1/working-groups/{room.id}/action-items", headers=room.member.headers)
    ).json()["items"] == []
    assert_problem(await client.post(f"{url}/minutes/publish", headers=room.member.headers), 403)
    published = await client.post(f"{url}/minutes/publish", headers=room.facilitator.headers)
    assert published.status_code == 200, published.text
    assert published.json()["status"] == "published"
    assert published.json()["revision"] == 1
    read = await client.get(f"{url}/minutes", headers=room.observer.headers)
    assert read.status_code == 200
    assert read.headers["etag"]
    assert read.json()["decisions"] == [{"text": "Fund the summer child-friendly spaces"}]
    [event] = await event_data(database, room.observer, "meeting.minutes_published")
    assert event["meeting_id"] == meeting["id"]
    [assigned] = await event_data(database, room.member, "action_item.assigned")
    assert assigned["item_title"] == "Circulate budget"
    assert await event_data(database, room.facilitator, "action_item.assigned") == []
    items = (
        await client.get(f"/v1/working-groups/{room.id}/action-items", headers=room.member.headers)
    ).json()["items"]
    assert [(i["title"], i["status"]) for i in items] == [
        ("Circulate budget", "open"),
        ("Book venue", "open"),
    ]
    budget = items[0]
    assert budget["owner_tenant_id"] == str(room.member.id)
    assert budget["due_on"] == "2027-04-01"
    # The owner marks its item done; another member may not; a facilitator may.
    assert_problem(
        await client.patch(
            f"/v1/action-items/{items[1]['id']}",
            json={"status": "done"},
            headers=room.member.headers,
        ),
        403,
    )
    done = await client.patch(
        f"/v1/action-items/{budget['id']}", json={"status": "done"}, headers=room.member.headers
    )
    assert done.status_code == 200
    assert done.json()["status"] == "done"
    mine = await client.get(
        f"/v1/working-groups/{room.id}/action-items",
        params={"owner": "me", "status": "done"},
        headers=room.member.headers,
    )
    assert [i["id"] for i in mine.json()["items"]] == [budget["id"]]
    by_id = await client.get(
        f"/v1/working-groups/{room.id}/action-items",
        params={"owner": str(room.member.id)},
        headers=room.facilitator.headers,
    )
    assert [i["id"] for i in by_id.json()["items"]] == [budget["id"]]
    bad_owner = await client.get(
        f"/v1/working-groups/{room.id}/action-items",
        params={"owner": "someone"},
        headers=room.member.headers,
    )
    assert "owner" in error_fields(assert_problem(bad_owner, 422))
    # A new draft is invisible until published; the new publish keeps the status of same titles.
    draft["summary"] = "Agreed the 2027 plan, amended."
    draft["action_items"] = [
        {"title": "Circulate budget", "owner_tenant_id": str(room.member.id)},
        {"title": "Draft MoU"},
    ]
    await client.put(f"{url}/minutes", json=draft, headers=room.facilitator.headers)
    assert (await client.get(f"{url}/minutes", headers=room.member.headers)).json()[
        "summary"
    ] == "Agreed the 2027 plan."
    again = await client.post(f"{url}/minutes/publish", headers=room.facilitator.headers)
    assert again.json()["revision"] == 2
    items = (
        await client.get(f"/v1/working-groups/{room.id}/action-items", headers=room.member.headers)
    ).json()["items"]
    assert sorted((i["title"], i["status"]) for i in items) == [
        ("Circulate budget", "done"),
        ("Draft MoU", "open"),
    ]
    assert next(i for i in items if i["title"] == "Circulate budget")["id"] == budget["id"]
    # Owners must be member tenants; titles must not repeat.
    for bad, field in (
        (
            {
                "summary": "x",
                "action_items": [{"title": "A", "owner_tenant_id": str(room.outsider.id)}],
            },
            "action_items[0].owner_tenant_id",
        ),
        (
            {"summary": "x", "action_items": [{"title": "A"}, {"title": "A"}]},
            "action_items[1].title",
        ),
    ):
        problem = assert_problem(
            await client.put(f"{url}/minutes", json=bad, headers=room.facilitator.headers), 422
        )
        assert field in error_fields(problem)
    assert_problem(
        await client.put(
            f"{url}/minutes", json={"summary": "x", "votes": 3}, headers=room.facilitator.headers
        ),
        400,
    )


async def test_attendance_is_recorded_by_facilitators(client, room):
    meeting = await schedule(client, room)
    url = f"/v1/meetings/{meeting['id']}/attendance"
    assert (await client.get(url, headers=room.member.headers)).json() == {"tenants": []}
    record = {
        "tenants": [
            {"tenant_id": str(room.member.id), "attended": True, "attendees_count": 2},
            {"tenant_id": str(room.observer.id), "attended": False},
        ]
    }
    assert_problem(await client.put(url, json=record, headers=room.member.headers), 403)
    put = await client.put(url, json=record, headers=room.facilitator.headers)
    assert put.status_code == 200, put.text
    read = await client.get(url, headers=room.observer.headers)
    assert read.headers["etag"]
    assert read.json() == put.json()
    assert sorted(
        (e["tenant"]["slug"], e["attended"], e["attendees_count"]) for e in read.json()["tenants"]
    ) == sorted([(room.member.slug, True, 2), (room.observer.slug, False, None)])
    for bad, field in (
        (
            {"tenants": [{"tenant_id": str(room.outsider.id), "attended": True}]},
            "tenants[0].tenant_id",
        ),
        (
            {"tenants": [{"tenant_id": str(room.member.id), "attended": True}] * 2},
            "tenants[1].tenant_id",
        ),
        (
            {
                "tenants": [
                    {"tenant_id": str(room.member.id), "attended": True, "attendees_count": -1}
                ]
            },
            "tenants",
        ),
    ):
        problem = assert_problem(
            await client.put(url, json=bad, headers=room.facilitator.headers), 422
        )
        assert any(f.startswith(field) for f in error_fields(problem)), problem


async def test_a_split_series_keeps_agenda_with_its_occurrence(client, room):
    first = await schedule(client, room, rrule="FREQ=WEEKLY;COUNT=4", start_local=start_in(7))
    listed = await series_of(client, room, first["series_id"])
    item = await _propose(client, room.member, listed[3]["id"], "Kept")
    await client.patch(
        f"/v1/meetings/{listed[1]['id']}",
        json={"scope": "this_and_following", "title": "Split"},
        headers=room.facilitator.headers,
    )
    agenda = await client.get(
        f"/v1/meetings/{listed[3]['id']}/agenda-items", headers=room.member.headers
    )
    assert [i["id"] for i in agenda.json()["items"]] == [item["id"]]
