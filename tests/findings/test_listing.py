"""GET /v1/findings: newest observation first, keyset pages, every filter."""

from __future__ import annotations

import uuid
from datetime import timedelta
from typing import Any
from urllib.parse import parse_qs, urlparse

from tests.findings.conftest import days_ago, ts
from tests.suppliers.conftest import PROBLEM_JSON, new_supplier


def _newest_first(findings: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return sorted(findings, key=lambda f: (f["observed_on"], f["id"]), reverse=True)


async def test_pages_are_newest_observation_first_without_duplicates(client, make_owner):
    owner = await make_owner()
    made = [await owner.create(observed_on=days_ago(d)) for d in (10, 40, 40, 40, 5, 100, 5)]

    seen, cursor, pages = [], None, 0
    while True:
        params = {"limit": 3, **({"cursor": cursor} if cursor else {})}
        response = await client.get("/v1/findings", params=params, headers=owner.headers)
        assert response.status_code == 200, response.text
        body = response.json()
        seen.extend(body["items"])
        pages += 1
        if pages == 1:
            # A finding recorded while a client pages does not shift the pages it has left.
            await owner.create(observed_on=days_ago(1))
        cursor = body["next_cursor"]
        if cursor is None:
            assert "link" not in response.headers
            break
        link = response.headers["link"]
        assert link.endswith('>; rel="next"')
        assert parse_qs(urlparse(link[1:].split(">")[0]).query)["cursor"] == [cursor]
    assert pages == 3
    assert [f["id"] for f in seen] == [f["id"] for f in _newest_first(made)]
    assert len({f["id"] for f in seen}) == 7
    everything = await owner.list(limit=200)
    assert len(everything) == 8
    assert everything[0]["observed_on"] == days_ago(1)


async def test_page_parameters_are_checked(client, make_owner):
    owner = await make_owner()
    await owner.create()
    await new_supplier(client, owner.headers)
    response = await client.get("/v1/suppliers", params={"limit": 1}, headers=owner.headers)
    supplier_cursor = response.json()["next_cursor"]
    assert supplier_cursor
    for params in (
        {"limit": 201},
        {"limit": 0},
        {"limit": "ten"},
        {"cursor": "not-a-cursor"},
        {"cursor": supplier_cursor},  # a cursor of another list
    ):
        response = await client.get("/v1/findings", params=params, headers=owner.headers)
        assert response.status_code == 400, (params, response.text)
        assert response.headers["content-type"] == PROBLEM_JSON
    # Well-formed values outside their vocabulary or range are 422, as in bodies.
    for params in (
        {"area": "child_rights"},
        {"severity": "high"},
        {"status": "closed"},
        {"supplier_id": "not-a-uuid"},
        {"observed_from": "yesterday"},
        {"observed_to": "2026-02-30"},
        {"updated_since": "last week"},
        {"updated_since": "2026-11-01"},
        {"updated_since": "2026-11-01T08:00:00"},  # no offset: which zone? not guessed
    ):
        response = await client.get("/v1/findings", params=params, headers=owner.headers)
        assert response.status_code == 422, (params, response.text)
        assert response.headers["content-type"] == PROBLEM_JSON
    ok = await client.get("/v1/findings", params={"limit": 200}, headers=owner.headers)
    assert ok.status_code == 200


async def test_every_filter(client, make_owner):
    owner = await make_owner()
    second_supplier = (await new_supplier(client, owner.headers))["id"]
    hours = await owner.create(observed_on=days_ago(50))
    child = await owner.create(
        area="child_labour",
        severity="zero_tolerance",
        status="remediation_in_progress",
        observed_on=days_ago(20),
        child_labour_case={"confirmed_under_min_age": 1, "remediation": "school"},
    )
    safety = await owner.create(
        supplier_id=second_supplier,
        area="health_and_safety",
        severity="critical",
        observed_on=days_ago(10),
    )
    good = await owner.create(
        supplier_id=second_supplier,
        kind="good_practice",
        area="migrant_parent_workers",
        severity=None,
        status="verified",
        observed_on=days_ago(5),
    )
    young = await owner.create(
        kind="observation",
        area="young_workers",
        severity=None,
        observed_on=days_ago(20),
    )

    async def ids(**params: Any) -> set[str]:
        return {f["id"] for f in await owner.list(**params)}

    assert await ids(supplier_id=owner.supplier_id) == {hours["id"], child["id"], young["id"]}
    assert await ids(supplier_id=second_supplier) == {safety["id"], good["id"]}
    assert await ids(supplier_id=str(uuid.uuid4())) == set()
    assert await ids(area="child_labour") == {child["id"]}
    assert await ids(area="migrant_parent_workers") == {good["id"]}
    assert await ids(area="bonded_labour") == set()
    assert await ids(severity="critical") == {safety["id"]}
    assert await ids(severity="major") == {hours["id"]}
    assert await ids(status="remediation_in_progress") == {child["id"]}
    assert await ids(status="open") == {hours["id"], safety["id"], young["id"]}
    # Date bounds are inclusive.
    assert await ids(observed_from=days_ago(20)) == {
        child["id"],
        young["id"],
        safety["id"],
        good["id"],
    }
    assert await ids(observed_to=days_ago(20)) == {hours["id"], child["id"], young["id"]}
    assert await ids(observed_from=days_ago(20), observed_to=days_ago(10)) == {
        child["id"],
        young["id"],
        safety["id"],
    }
    assert await ids(observed_from=days_ago(4)) == set()
    assert await ids(supplier_id=second_supplier, severity="critical", status="open") == {
        safety["id"]
    }
    filtered = await owner.list(observed_from=days_ago(20))
    assert [f["observed_on"] for f in filtered] == sorted(
        (f["observed_on"] for f in filtered), reverse=True
    )

    # updated_since: only what changed at or after the moment given.
    since = ts(young["updated_at"]) + timedelta(microseconds=1)
    changed = await client.patch(
        f"/v1/findings/{hours['id']}", json={"status": "resolved"}, headers=owner.headers
    )
    assert changed.status_code == 200
    rfc3339 = since.isoformat().replace("+00:00", "Z")
    assert await ids(updated_since=rfc3339) == {hours["id"]}
    assert await ids(updated_since=rfc3339, area="working_hours") == {hours["id"]}
    assert await ids(updated_since=rfc3339, area="young_workers") == set()
    everything = await ids(updated_since=ts(hours["created_at"]).isoformat())
    assert everything == {f["id"] for f in (hours, child, safety, good, young)}

    # Filters are kept in the next page's link.
    response = await client.get(
        "/v1/findings", params={"limit": 1, "status": "open"}, headers=owner.headers
    )
    query = parse_qs(urlparse(response.headers["link"][1:].split(">")[0]).query)
    assert query["status"] == ["open"]
    assert query["limit"] == ["1"]


async def test_a_listed_finding_is_the_finding_read_alone(client, make_owner):
    """The list builds its items from the driver's rows by position: every field, nested ones
    and nulls included, must be what reading the finding alone answers."""
    owner = await make_owner()
    await owner.create()  # a CAP, a source reference
    await owner.create(
        area="child_labour",
        kind="observation",
        severity=None,
        basis=None,
        cap=None,
        source={"scheme": "slcp"},
        affected_workers=None,
        child_labour_case={"confirmed_under_min_age": 2, "remediation": "school"},
    )
    listed = await owner.list()
    assert len(listed) == 2
    for item in listed:
        alone = await client.get(f"/v1/findings/{item['id']}", headers=owner.headers)
        assert alone.status_code == 200, alone.text
        assert item == alone.json()
