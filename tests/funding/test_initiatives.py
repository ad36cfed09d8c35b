"""Initiatives: creation by facilitators, who sees what, PATCH while draft and the state machine."""

from __future__ import annotations

import uuid

import pytest

from tests.funding.conftest import (
    DATES,
    assert_problem,
    create_initiative,
    error_fields,
    get_initiative,
    money,
    move,
    open_initiative,
    pledge,
)


async def test_a_facilitator_creates_a_draft_with_its_funding_block(client, fund):
    initiative = await create_initiative(client, fund, funding_target=money(800_000))
    assert initiative["status"] == "draft"
    assert initiative["budget"] == money(1_000_000)
    assert initiative["funding_target"] == money(800_000)
    assert initiative["pledge_visibility"] == "totals_only"
    assert initiative["funding"] == {
        "target": money(800_000),
        "committed": money(0),
        "paid": money(0),
        "spent": money(0),
        "balance": money(0),
        "funders": 0,
        "percent_committed": 0,
    }
    response = await client.get(
        f"/v1/initiatives/{initiative['id']}", headers=fund.facilitator.headers
    )
    assert response.json() == initiative
    assert response.headers["etag"]


async def test_the_target_defaults_to_the_budget(client, fund):
    initiative = await create_initiative(client, fund)
    assert initiative["funding_target"] == initiative["budget"]


async def test_members_see_no_drafts_and_a_draft_is_404_like_a_random_id(client, fund):
    draft = await create_initiative(client, fund)
    brand = fund.brands[0]
    listed = await client.get(f"{fund.path}/initiatives", headers=brand.headers)
    assert listed.status_code == 200
    assert listed.json()["items"] == []
    hidden = await client.get(f"/v1/initiatives/{draft['id']}", headers=brand.headers)
    random = await client.get(f"/v1/initiatives/{uuid.uuid4()}", headers=brand.headers)
    assert_problem(hidden, 404)
    assert hidden.json() == random.json()
    opened = await move(client, fund, draft, "open")
    listed = await client.get(f"{fund.path}/initiatives", headers=brand.headers)
    assert [i["id"] for i in listed.json()["items"]] == [opened["id"]]


async def test_outsiders_get_404_the_same_as_a_random_id(client, fund):
    initiative = await open_initiative(client, fund)
    outsider = fund.outsider
    for path in (
        "/v1/initiatives/{}",
        "/v1/initiatives/{}/pledges",
        "/v1/initiatives/{}/expenses",
        "/v1/initiatives/{}/statement",
        "/v1/initiatives/{}/indicators",
    ):
        theirs = await client.get(path.format(initiative["id"]), headers=outsider.headers)
        random = await client.get(path.format(uuid.uuid4()), headers=outsider.headers)
        assert_problem(theirs, 404)
        assert theirs.json() == random.json()
    theirs = await client.post(
        f"/v1/initiatives/{initiative['id']}/pledges",
        json={"amount": money(100)},
        headers=outsider.headers,
    )
    random = await client.post(
        f"/v1/initiatives/{uuid.uuid4()}/pledges",
        json={"amount": money(100)},
        headers=outsider.headers,
    )
    assert_problem(theirs, 404)
    assert theirs.json() == random.json()
    group_list = await client.get(f"{fund.path}/initiatives", headers=outsider.headers)
    assert_problem(group_list, 404)


async def test_only_facilitators_create_and_change(client, fund):
    brand = fund.brands[0]
    response = await client.post(
        f"{fund.path}/initiatives",
        json={"title": "x", "currency": "HKD", "budget": money(100), **DATES},
        headers=brand.headers,
    )
    assert_problem(response, 403)
    initiative = await open_initiative(client, fund)
    response = await client.patch(
        f"/v1/initiatives/{initiative['id']}", json={"status": "cancelled"}, headers=brand.headers
    )
    assert_problem(response, 403)


async def test_scopes_are_needed(client, fund):
    initiative = await open_initiative(client, fund)
    reader = await fund.brands[0].handle.headers("funding:read")
    nothing = await fund.brands[0].handle.headers("findings:read")
    assert_problem(await client.get(f"/v1/initiatives/{initiative['id']}", headers=nothing), 403)
    assert_problem(
        await client.post(
            f"/v1/initiatives/{initiative['id']}/pledges",
            json={"amount": money(100)},
            headers=reader,
        ),
        403,
    )
    assert (
        await client.get(f"/v1/initiatives/{initiative['id']}", headers=reader)
    ).status_code == 200


async def test_fields_change_while_draft_with_if_match(client, fund):
    initiative = await create_initiative(client, fund)
    path = f"/v1/initiatives/{initiative['id']}"
    current = await client.get(path, headers=fund.facilitator.headers)
    stale = await client.patch(
        path,
        json={"title": "Renamed"},
        headers={**fund.facilitator.headers, "If-Match": '"stale"'},
    )
    assert_problem(stale, 412)
    changed = await client.patch(
        path,
        json={"title": "Renamed", "budget": money(2_000_000), "funding_target": money(1_500_000)},
        headers={**fund.facilitator.headers, "If-Match": current.headers["etag"]},
    )
    assert changed.status_code == 200, changed.text
    assert changed.json()["title"] == "Renamed"
    assert changed.json()["funding"]["target"] == money(1_500_000)
    await move(client, fund, initiative, "open")
    late = await client.patch(path, json={"title": "Again"}, headers=fund.facilitator.headers)
    assert assert_problem(late, 409)["type"] == "/problems/invalid-transition"


@pytest.mark.parametrize(
    ("path_to", "target"),
    [
        ([], "funded"),
        ([], "active"),
        ([], "completed"),
        (["open"], "funded"),
        (["open"], "draft"),
        (["open"], "completed"),
        (["cancelled"], "open"),
        (["cancelled"], "cancelled"),
    ],
)
async def test_illegal_moves_are_409_invalid_transition(client, fund, path_to, target):
    initiative = await create_initiative(client, fund)
    for status in path_to:
        initiative = await move(client, fund, initiative, status)
    if target == initiative["status"]:
        target = "open" if target == "cancelled" else target
    response = await client.patch(
        f"/v1/initiatives/{initiative['id']}",
        json={"status": target},
        headers=fund.facilitator.headers,
    )
    assert assert_problem(response, 409)["type"] == "/problems/invalid-transition"


async def test_the_whole_life_funded_by_itself_then_active_completed(client, fund):
    initiative = await open_initiative(client, fund, budget=money(300_000))
    for brand in fund.brands[:3]:
        await pledge(client, brand, initiative, 100_000)
    funded = await get_initiative(client, fund.facilitator, initiative)
    assert funded["status"] == "funded"
    assert funded["funded_at"] is not None
    assert funded["funding"]["percent_committed"] == 100
    assert (await move(client, fund, funded, "active"))["status"] == "active"
    assert (await move(client, fund, funded, "completed"))["status"] == "completed"
    response = await client.patch(
        f"/v1/initiatives/{initiative['id']}",
        json={"status": "cancelled"},
        headers=fund.facilitator.headers,
    )
    assert_problem(response, 409)


@pytest.mark.parametrize(
    ("body", "field", "status"),
    [
        ({"currency": "XYZ"}, "currency", 422),
        ({"currency": "XAU", "budget": money(5, "XAU")}, "currency", 422),
        ({"currency": "hkd"}, "currency", 422),
        ({"budget": money(0)}, "budget.amount", 422),
        ({"budget": money(-5)}, "budget.amount", 422),
        ({"budget": money(10**15)}, "budget.amount", 422),
        ({"budget": money(100, "USD")}, "budget.currency", 422),
        ({"funding_target": money(100, "EUR")}, "funding_target.currency", 422),
        ({"starts_on": "2027-09-01"}, "ends_on", 422),
        ({"pledge_visibility": "secret"}, "pledge_visibility", 422),
        ({"budget": {"amount": 1.5, "currency": "HKD"}}, "budget.amount", 400),
        ({"tenant_id": str(uuid.uuid4())}, "tenant_id", 400),
        ({"status": "open"}, "status", 400),
    ],
)
async def test_bad_initiatives(client, fund, body, field, status):
    payload = {"title": "T", "currency": "HKD", "budget": money(1000), **DATES, **body}
    response = await client.post(
        f"{fund.path}/initiatives", json=payload, headers=fund.facilitator.headers
    )
    assert field in error_fields(assert_problem(response, status))


async def test_lists_page_and_refuse_oversize_pages(client, fund):
    made = [await create_initiative(client, fund, title=f"I{n}") for n in range(3)]
    headers = fund.facilitator.headers
    first = await client.get(f"{fund.path}/initiatives", params={"limit": 2}, headers=headers)
    assert first.status_code == 200
    cursor = first.json()["next_cursor"]
    assert cursor
    assert 'rel="next"' in first.headers["link"]
    second = await client.get(
        f"{fund.path}/initiatives", params={"limit": 2, "cursor": cursor}, headers=headers
    )
    ids = [i["id"] for i in first.json()["items"] + second.json()["items"]]
    assert ids == [m["id"] for m in reversed(made)]
    for path in (
        f"{fund.path}/initiatives",
        f"/v1/initiatives/{made[0]['id']}/pledges",
        f"/v1/initiatives/{made[0]['id']}/expenses",
        f"/v1/initiatives/{made[0]['id']}/indicators",
    ):
        assert_problem(await client.get(path, params={"limit": 201}, headers=headers), 400)
