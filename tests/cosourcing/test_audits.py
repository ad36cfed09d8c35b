"""Planned audits and their overlaps: private plans, windows matched with both days included,
young links and plans closed to joint audits ignored, introductions by double opt-in, and a
supplier one is not linked to answered like an unknown one."""

from __future__ import annotations

import uuid
from datetime import date
from typing import Any

import httpx
import pytest

from tests.cosourcing.conftest import (
    OVERLAP_FOUND,
    OVERLAP_INTRODUCED,
    age_links,
    days_ahead,
    events,
    everything_readable,
    get_ok,
    post,
    random_id,
    run_matching,
    traces_of,
)
from tests.sharing.conftest import SharingGroup, new_supplier
from tests.working_groups.conftest import Actor, assert_problem, error_fields
from wg_api.platform.database import Database


@pytest.fixture
async def brands(make_group: Any) -> SharingGroup:
    group: SharingGroup = await make_group(members=4, observer=False)
    return group


async def _factory(
    client: httpx.AsyncClient,
    database: Database,
    linked: list[Actor],
    *,
    young: list[Actor] = (),  # type: ignore[assignment]
) -> str:
    supplier = await new_supplier(client, linked[0], linked=[*linked[1:], *young])
    await age_links(database, supplier["id"], linked, 90)
    supplier_id: str = supplier["id"]
    return supplier_id


async def _plan(
    client: httpx.AsyncClient,
    actor: Actor,
    supplier_id: str,
    start: date,
    end: date,
    **extra: Any,
) -> dict[str, Any]:
    body = {
        "supplier_id": supplier_id,
        "window_start": start.isoformat(),
        "window_end": end.isoformat(),
        "scheme": "amfori_bsci",
        **extra,
    }
    audit: dict[str, Any] = await post(client, actor, "/v1/planned-audits", body, 201)
    return audit


async def _overlaps(client: httpx.AsyncClient, actor: Actor) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = (await get_ok(client, actor, "/v1/audit-overlaps", limit=200))[
        "items"
    ]
    return items


async def test_windows_that_share_a_day_overlap(
    client: httpx.AsyncClient, brands: SharingGroup, database: Database, settings: Any
) -> None:
    """Inclusive windows: one ending on the day the other starts overlaps on that one day."""
    a, b, *_ = brands.members
    supplier = await _factory(client, database, [a, b])
    mine = await _plan(client, a, supplier, days_ahead(10), days_ahead(20))
    theirs = await _plan(client, b, supplier, days_ahead(20), days_ahead(30))
    await run_matching(database, settings)
    for actor, audit in ((a, mine), (b, theirs)):
        found = await events(client, actor, OVERLAP_FOUND)
        assert len(found) == 1
        data = found[0]["data"]
        assert set(data) == {"audit_overlap_id", "planned_audit_id", "supplier_id", "window"}
        assert data["planned_audit_id"] == audit["id"]
        assert data["supplier_id"] == supplier
        assert data["window"] == {
            "start": days_ahead(20).isoformat(),
            "end": days_ahead(20).isoformat(),
        }
        listed = await _overlaps(client, actor)
        assert [o["id"] for o in listed] == [data["audit_overlap_id"]]
        assert listed[0]["status"] == "invited"
        assert listed[0]["participants"] == []
    # Matched once.
    await run_matching(database, settings)
    assert len(await events(client, a, OVERLAP_FOUND)) == 1


async def test_windows_a_day_apart_do_not_overlap(
    client: httpx.AsyncClient, brands: SharingGroup, database: Database, settings: Any
) -> None:
    a, b, *_ = brands.members
    supplier = await _factory(client, database, [a, b])
    await _plan(client, a, supplier, days_ahead(10), days_ahead(20))
    await _plan(client, b, supplier, days_ahead(21), days_ahead(30))
    await run_matching(database, settings)
    for actor in (a, b):
        assert await events(client, actor, OVERLAP_FOUND) == []
        assert await _overlaps(client, actor) == []


async def test_young_links_closed_plans_and_strangers_are_not_matched(
    client: httpx.AsyncClient,
    brands: SharingGroup,
    make_group: Any,
    database: Database,
    settings: Any,
) -> None:
    a, b, c, d = brands.members
    stranger_group: SharingGroup = await make_group(members=3, observer=False)
    stranger = stranger_group.members[0]
    supplier = await _factory(client, database, [a, b, stranger], young=[c])
    window = (days_ahead(5), days_ahead(15))
    await _plan(client, a, supplier, *window)
    await _plan(client, b, supplier, *window, open_to_joint_audit=False)
    await _plan(client, c, supplier, *window)
    await _plan(client, stranger, supplier, *window)  # shares no group with the others
    await run_matching(database, settings)
    for actor in (a, b, c, stranger):
        assert await events(client, actor, OVERLAP_FOUND) == [], actor.slug
    # Once c's link is old enough it is matched with a (b's plan stays closed).
    await age_links(database, supplier, [c], settings.cosourcing_min_link_age_days + 1)
    await run_matching(database, settings)
    assert len(await events(client, a, OVERLAP_FOUND)) == 1
    assert len(await events(client, c, OVERLAP_FOUND)) == 1
    assert await events(client, b, OVERLAP_FOUND) == []
    assert await events(client, d, OVERLAP_FOUND) == []


async def test_double_opt_in_introduces_and_nothing_else_names_anyone(
    client: httpx.AsyncClient, brands: SharingGroup, database: Database, settings: Any
) -> None:
    a, b, *_ = brands.members
    supplier = await _factory(client, database, [a, b])
    await _plan(client, a, supplier, days_ahead(3), days_ahead(9))
    await _plan(client, b, supplier, days_ahead(6), days_ahead(12))
    await run_matching(database, settings)
    overlap = (await _overlaps(client, a))[0]
    assert overlap["window"] == {
        "start": days_ahead(6).isoformat(),
        "end": days_ahead(9).isoformat(),
    }
    path = f"/v1/audit-overlaps/{overlap['id']}"
    for actor, other in ((a, b), (b, a)):
        seen = await everything_readable(client, actor)
        for trace in traces_of(other):
            assert trace not in seen
    assert (await post(client, a, f"{path}/opt-in"))["status"] == "opted_in"
    assert (await get_ok(client, b, path))["participants"] == []
    out = await post(client, a, f"{path}/opt-out")
    assert out["status"] == "invited"
    assert (await post(client, b, f"{path}/opt-in"))["status"] == "opted_in"
    together = await post(client, a, f"{path}/opt-in")
    assert together["status"] == "introduced"
    assert {p["id"] for p in together["participants"]} == {str(a.id), str(b.id)}
    for actor in (a, b):
        told = await events(client, actor, OVERLAP_INTRODUCED)
        assert len(told) == 1
        assert told[0]["data"]["window"] == overlap["window"]


async def test_deleting_a_plan_removes_its_overlap_for_both(
    client: httpx.AsyncClient, brands: SharingGroup, database: Database, settings: Any
) -> None:
    a, b, *_ = brands.members
    supplier = await _factory(client, database, [a, b])
    mine = await _plan(client, a, supplier, days_ahead(3), days_ahead(9))
    await _plan(client, b, supplier, days_ahead(6), days_ahead(12))
    await run_matching(database, settings)
    assert len(await _overlaps(client, b)) == 1
    response = await client.delete(f"/v1/planned-audits/{mine['id']}", headers=a.headers)
    assert response.status_code == 204, response.text
    assert await _overlaps(client, a) == []
    assert await _overlaps(client, b) == []
    assert_problem(await client.get(f"/v1/planned-audits/{mine['id']}", headers=a.headers), 404)


async def test_delete_honours_if_match(
    client: httpx.AsyncClient, brands: SharingGroup, database: Database, settings: Any
) -> None:
    a, b, *_ = brands.members
    supplier = await _factory(client, database, [a, b])
    mine = await _plan(client, a, supplier, days_ahead(3), days_ahead(9))
    path = f"/v1/planned-audits/{mine['id']}"
    stale = await client.delete(path, headers={"If-Match": '"stale"', **a.headers})
    assert_problem(stale, 412)
    etag = (await client.get(path, headers=a.headers)).headers["etag"]
    response = await client.delete(path, headers={"If-Match": etag, **a.headers})
    assert response.status_code == 204, response.text


async def test_plans_are_private_and_other_suppliers_are_unknown(
    client: httpx.AsyncClient, brands: SharingGroup, database: Database, settings: Any
) -> None:
    a, b, c, _ = brands.members
    supplier = await _factory(client, database, [a, b])
    mine = await _plan(client, a, supplier, days_ahead(3), days_ahead(9))
    await _plan(client, b, supplier, days_ahead(3), days_ahead(9))
    await run_matching(database, settings)
    overlap = (await _overlaps(client, a))[0]
    for path in (f"/v1/planned-audits/{mine['id']}", f"/v1/audit-overlaps/{overlap['id']}"):
        theirs = await client.get(path, headers=c.headers)
        random = await client.get(path.rsplit("/", 1)[0] + f"/{random_id()}", headers=c.headers)
        assert_problem(theirs, 404)
        assert theirs.json() == random.json()
    response = await client.delete(f"/v1/planned-audits/{mine['id']}", headers=c.headers)
    assert_problem(response, 404)
    assert (await get_ok(client, c, "/v1/planned-audits"))["items"] == []
    # A supplier c does not link to answers like one that does not exist.
    unlinked = await client.get(
        "/v1/audit-overlaps", params={"supplier_id": supplier}, headers=c.headers
    )
    unknown = await client.get(
        "/v1/audit-overlaps", params={"supplier_id": random_id()}, headers=c.headers
    )
    assert_problem(unlinked, 404)
    assert unlinked.json() == unknown.json()
    bodies = []
    for supplier_id in (supplier, random_id()):
        response = await client.post(
            "/v1/planned-audits",
            json={
                "supplier_id": supplier_id,
                "window_start": days_ahead(3).isoformat(),
                "window_end": days_ahead(9).isoformat(),
                "scheme": "smeta",
            },
            headers=c.headers,
        )
        bodies.append(assert_problem(response, 422))
    assert bodies[0] == bodies[1]
    assert error_fields(bodies[0]) == {"supplier_id"}
    # Linked: the filter answers its overlaps.
    listed = await get_ok(client, a, "/v1/audit-overlaps", supplier_id=supplier)
    assert [o["id"] for o in listed["items"]] == [overlap["id"]]


async def test_planned_audit_validation_and_scopes(
    client: httpx.AsyncClient, brands: SharingGroup, database: Database, settings: Any
) -> None:
    a, b, *_ = brands.members
    supplier = await _factory(client, database, [a, b])
    good = {
        "supplier_id": supplier,
        "window_start": days_ahead(3).isoformat(),
        "window_end": days_ahead(9).isoformat(),
        "scheme": "slcp",
    }
    cases = [
        ({**good, "window_end": days_ahead(2).isoformat()}, 422, {"window_end"}),
        (
            {
                **good,
                "window_start": days_ahead(-20).isoformat(),
                "window_end": days_ahead(-10).isoformat(),
            },
            422,
            {"window_end"},
        ),
        ({**good, "window_end": days_ahead(400).isoformat()}, 422, {"window_end"}),
        ({**good, "scheme": "iso"}, 422, {"scheme"}),
        ({**good, "tenant_id": str(b.id)}, 400, {"tenant_id"}),
        ({**good, "open_to_joint_audit": "yes"}, 400, {"open_to_joint_audit"}),
        ({k: v for k, v in good.items() if k != "window_start"}, 422, {"window_start"}),
    ]
    for body, status, fields in cases:
        response = await client.post("/v1/planned-audits", json=body, headers=a.headers)
        assert error_fields(assert_problem(response, status)) == fields, body
    assert (await get_ok(client, a, "/v1/planned-audits"))["items"] == []
    reader = {"Authorization": f"Bearer {await a.handle.token('findings:read')}"}
    writer = {"Authorization": f"Bearer {await a.handle.token('sharing:write')}"}
    assert_problem(await client.post("/v1/planned-audits", json=good, headers=reader), 403)
    assert_problem(await client.get("/v1/planned-audits", headers=writer), 403)
    assert_problem(await client.get("/v1/audit-overlaps", headers=writer), 403)
    for path in ("/v1/planned-audits", "/v1/audit-overlaps"):
        response = await client.get(path, params={"limit": 201}, headers=a.headers)
        assert_problem(response, 400)
    # Pages, ordered by the window's first day.
    made = [await _plan(client, a, supplier, days_ahead(n), days_ahead(n + 2)) for n in (9, 3, 6)]
    page = await get_ok(client, a, "/v1/planned-audits", limit=2)
    rest = await get_ok(client, a, "/v1/planned-audits", limit=2, cursor=page["next_cursor"])
    order = [p["id"] for p in page["items"] + rest["items"]]
    assert order == [made[1]["id"], made[2]["id"], made[0]["id"]]
    one = await client.get(f"/v1/planned-audits/{made[0]['id']}", headers=a.headers)
    assert one.status_code == 200
    assert one.headers["etag"]
    key = {"Idempotency-Key": uuid.uuid4().hex, **a.headers}
    first = await client.post("/v1/planned-audits", json=good, headers=key)
    again = await client.post("/v1/planned-audits", json=good, headers=key)
    assert first.status_code == 201
    assert again.json() == first.json()
