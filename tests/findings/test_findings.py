"""Findings through HTTP: create, read, PUT by external id, change, delete, events."""

from __future__ import annotations

import asyncio
import uuid

import sqlalchemy as sa

from tests.conftest import superuser_transaction
from tests.findings.conftest import days_ago, finding_body, random_finding_path, ts
from tests.suppliers.conftest import PROBLEM_JSON, assert_hidden, events_of, new_supplier

FINDING_FIELDS = {
    "id",
    "supplier_id",
    "external_id",
    "kind",
    "area",
    "severity",
    "basis",
    "title",
    "description",
    "observed_on",
    "source",
    "status",
    "affected_workers",
    "cap",
    "child_labour_case",
    "created_at",
    "updated_at",
}


async def test_a_finding_is_recorded_and_read_back(client, make_owner):
    owner = await make_owner()
    body = finding_body(owner.supplier_id, external_id="CAS-1001")
    response = await client.post("/v1/findings", json=body, headers=owner.headers)
    assert response.status_code == 201, response.text
    finding = response.json()
    assert set(finding) == FINDING_FIELDS
    for field in ("supplier_id", "external_id", "kind", "area", "severity", "basis", "title"):
        assert finding[field] == body[field]
    assert finding["observed_on"] == body["observed_on"]
    assert finding["source"] == body["source"]
    assert finding["cap"] == body["cap"]
    assert finding["affected_workers"] == 40
    assert finding["child_labour_case"] is None
    assert finding["created_at"].endswith("Z")
    uuid.UUID(finding["id"])

    read = await client.get(f"/v1/findings/{finding['id']}", headers=owner.headers)
    assert read.status_code == 200
    assert read.json() == finding
    assert read.headers["etag"] == response.headers["etag"]
    assert [f["id"] for f in await owner.list()] == [finding["id"]]


async def test_a_child_labour_case_is_counts_only(client, make_owner):
    owner = await make_owner()
    case = {
        "confirmed_under_min_age": 2,
        "young_workers_in_hazardous_work": 3,
        "age_unconfirmed": 1,
        "remediation": "school",
    }
    finding = await owner.create(
        kind="non_compliance",
        area="child_labour",
        severity="zero_tolerance",
        child_labour_case=case,
        affected_workers=6,
    )
    assert finding["child_labour_case"] == case
    young = await owner.create(
        kind="observation",
        area="young_workers",
        severity=None,
        child_labour_case={"young_workers_in_hazardous_work": 4},
        cap=None,
    )
    assert young["child_labour_case"] == {
        "confirmed_under_min_age": 0,
        "young_workers_in_hazardous_work": 4,
        "age_unconfirmed": 0,
        "remediation": None,
    }
    # Child-level data has no field to go in: it is refused, not silently dropped.
    response = await client.post(
        "/v1/findings",
        json=finding_body(
            owner.supplier_id,
            area="child_labour",
            severity="zero_tolerance",
            child_labour_case={
                "confirmed_under_min_age": 1,
                "children": [{"name": "A", "age": 13}],
            },
        ),
        headers=owner.headers,
    )
    assert response.status_code == 400, response.text
    assert response.json()["errors"][0]["field"] == "child_labour_case.children"
    assert len(await owner.list()) == 2
    # Read alone (the driver's row by position), each is what its write answered, ETag and all,
    # so that ETag is one a change may name in If-Match.
    for written in (finding, young):
        path = f"/v1/findings/{written['id']}"
        read = await client.get(path, headers=owner.headers)
        assert read.json() == written
        changed = await client.patch(
            path,
            json={"affected_workers": 7},
            headers={**owner.headers, "If-Match": read.headers["etag"]},
        )
        assert changed.status_code == 200, changed.text


async def test_put_by_external_id_creates_then_replaces_keeping_the_id(client, make_owner):
    owner = await make_owner()
    path = "/v1/findings/by-external-id/SAP-QM-4711"
    body = finding_body(owner.supplier_id)
    del body["status"]
    first = await client.put(path, json=body, headers=owner.headers)
    assert first.status_code == 201, first.text
    assert first.json()["external_id"] == "SAP-QM-4711"
    assert first.json()["status"] == "open"

    replacement = finding_body(
        owner.supplier_id,
        kind="observation",
        severity=None,
        title="Overtime now within limits",
        status="resolved",
        cap=None,
    )
    del replacement["affected_workers"]
    second = await client.put(path, json=replacement, headers=owner.headers)
    assert second.status_code == 200, second.text
    replaced = second.json()
    assert replaced["id"] == first.json()["id"]
    assert replaced["title"] == "Overtime now within limits"
    assert replaced["kind"] == "observation"
    assert replaced["severity"] is None
    assert replaced["cap"] is None
    assert replaced["affected_workers"] is None  # left out: cleared, as a replacement should
    assert replaced["created_at"] == first.json()["created_at"]
    assert ts(replaced["updated_at"]) > ts(first.json()["updated_at"])
    assert second.headers["etag"] != first.headers["etag"]
    assert [f["id"] for f in await owner.list()] == [replaced["id"]]

    # POST with the same external id is a conflict, and changes nothing.
    clash = await client.post(
        "/v1/findings",
        json=finding_body(owner.supplier_id, external_id="SAP-QM-4711"),
        headers=owner.headers,
    )
    assert clash.status_code == 409, clash.text
    assert clash.headers["content-type"] == PROBLEM_JSON
    assert clash.json()["errors"] == [{"field": "external_id", "message": "already used"}]
    assert await owner.list() == [replaced]

    # A bad replacement changes nothing either.
    bad = await client.put(
        path,
        json=finding_body(owner.supplier_id, kind="observation", severity="minor"),
        headers=owner.headers,
    )
    assert bad.status_code == 422
    assert await owner.list() == [replaced]


async def test_put_by_external_id_is_per_tenant(client, make_owner):
    owner, other = await make_owner(), await make_owner()
    path = "/v1/findings/by-external-id/AUDIT-77"
    mine = await client.put(path, json=finding_body(owner.supplier_id), headers=owner.headers)
    assert mine.status_code == 201
    theirs = await client.put(
        path, json=finding_body(other.supplier_id, title="Their own"), headers=other.headers
    )
    assert theirs.status_code == 201, theirs.text  # their own key space: a new finding
    assert theirs.json()["id"] != mine.json()["id"]
    assert await owner.list() == [mine.json()]
    # And nobody can put a finding on a supplier they do not link to.
    stolen = await client.put(
        "/v1/findings/by-external-id/AUDIT-78",
        json=finding_body(owner.supplier_id),
        headers=other.headers,
    )
    assert stolen.status_code == 422
    assert [e["field"] for e in stolen.json()["errors"]] == ["supplier_id"]


async def test_put_refuses_bad_requests(client, make_owner):
    owner = await make_owner()
    body = finding_body(owner.supplier_id)
    for path, payload, status in (
        ("/v1/findings/by-external-id/X-1", {**body, "external_id": "X-1"}, 400),
        ("/v1/findings/by-external-id/X-1", {**body, "tenant_id": str(uuid.uuid4())}, 400),
        ("/v1/findings/by-external-id/X-1", {**body, "affected_workers": "3"}, 400),
        ("/v1/findings/by-external-id/X-1", {**body, "area": "child_rights"}, 422),
        ("/v1/findings/by-external-id/" + "x" * 201, body, 422),
    ):
        response = await client.put(path, json=payload, headers=owner.headers)
        assert response.status_code == status, (payload, response.text)
        assert response.headers["content-type"] == PROBLEM_JSON
    assert await owner.list() == []


async def test_patch_honours_if_match_and_the_rules(client, make_owner):
    owner = await make_owner()
    finding = await owner.create()
    path = f"/v1/findings/{finding['id']}"
    etag = (await client.get(path, headers=owner.headers)).headers["etag"]

    stale = await client.patch(
        path,
        json={"status": "resolved"},
        headers={**owner.headers, "If-Match": '"0000000000000000"'},
    )
    assert stale.status_code == 412, stale.text
    assert stale.headers["content-type"] == PROBLEM_JSON
    assert (await client.get(path, headers=owner.headers)).json() == finding

    changed = await client.patch(
        path,
        json={"status": "remediation_in_progress", "affected_workers": 35},
        headers={**owner.headers, "If-Match": etag},
    )
    assert changed.status_code == 200, changed.text
    after = changed.json()
    assert after["status"] == "remediation_in_progress"
    assert after["affected_workers"] == 35
    assert after["title"] == finding["title"]  # untouched fields stay
    assert ts(after["updated_at"]) > ts(finding["updated_at"])
    assert changed.headers["etag"] != etag

    # The old ETag is stale now.
    again = await client.patch(
        path, json={"status": "resolved"}, headers={**owner.headers, "If-Match": etag}
    )
    assert again.status_code == 412

    # Cross-field rules hold after merging: observation with a severity is refused...
    bad = await client.patch(path, json={"kind": "observation"}, headers=owner.headers)
    assert bad.status_code == 422, bad.text
    assert [e["field"] for e in bad.json()["errors"]] == ["severity"]
    cleared = await client.patch(path, json={"severity": None}, headers=owner.headers)
    assert cleared.status_code == 422
    # ...and accepted when both change together; null clears an optional field.
    ok = await client.patch(
        path,
        json={"kind": "observation", "severity": None, "cap": None},
        headers=owner.headers,
    )
    assert ok.status_code == 200, ok.text
    assert (ok.json()["kind"], ok.json()["severity"], ok.json()["cap"]) == (
        "observation",
        None,
        None,
    )
    early = await client.patch(
        path,
        json={"cap": {"planned_actions": "Retrain", "due_on": days_ago(40)}},
        headers=owner.headers,
    )
    assert early.status_code == 422
    assert [e["field"] for e in early.json()["errors"]] == ["cap.due_on"]
    for payload, status in (
        ({"tenant_id": str(uuid.uuid4())}, 400),
        ({"created_at": "2026-01-01T00:00:00Z"}, 400),
        ({"affected_workers": "3"}, 400),
        ({"status": "closed"}, 422),
        ({"observed_on": days_ago(-30)}, 422),
        ({"supplier_id": str(uuid.uuid4())}, 422),
    ):
        refused = await client.patch(path, json=payload, headers=owner.headers)
        assert refused.status_code == status, (payload, refused.text)
    assert (await client.get(path, headers=owner.headers)).json() == ok.json()


async def test_patch_can_move_a_finding_to_another_of_your_suppliers(client, make_owner):
    owner = await make_owner()
    finding = await owner.create(external_id="MOVE-1")
    other_supplier = await new_supplier(client, owner.headers)
    moved = await client.patch(
        f"/v1/findings/{finding['id']}",
        json={"supplier_id": other_supplier["id"], "external_id": None},
        headers=owner.headers,
    )
    assert moved.status_code == 200, moved.text
    assert moved.json()["supplier_id"] == other_supplier["id"]
    assert moved.json()["external_id"] is None
    taken = await owner.create(external_id="TAKEN")
    clash = await client.patch(
        f"/v1/findings/{finding['id']}", json={"external_id": "TAKEN"}, headers=owner.headers
    )
    assert clash.status_code == 409
    assert (await client.get(f"/v1/findings/{taken['id']}", headers=owner.headers)).json() == (
        taken
    )


async def test_delete_honours_if_match_then_the_finding_is_gone(client, make_owner):
    owner = await make_owner()
    finding = await owner.create()
    path = f"/v1/findings/{finding['id']}"
    etag = (await client.get(path, headers=owner.headers)).headers["etag"]

    stale = await client.delete(path, headers={**owner.headers, "If-Match": '"stale"'})
    assert stale.status_code == 412
    assert (await client.get(path, headers=owner.headers)).status_code == 200

    deleted = await client.delete(path, headers={**owner.headers, "If-Match": etag})
    assert deleted.status_code == 204, deleted.text
    await assert_hidden(client, "GET", path, random_finding_path(), owner.headers)
    await assert_hidden(client, "DELETE", path, random_finding_path(), owner.headers)
    assert await owner.list() == []


async def test_every_write_records_its_event_for_the_owner_only(client, make_owner):
    owner, other = await make_owner(), await make_owner()
    finding = await owner.create(external_id="EV-1")
    path = f"/v1/findings/{finding['id']}"
    await client.patch(path, json={"status": "resolved"}, headers=owner.headers)
    await client.put(
        "/v1/findings/by-external-id/EV-1",
        json=finding_body(owner.supplier_id, status="verified"),
        headers=owner.headers,
    )
    assert (await client.delete(path, headers=owner.headers)).status_code == 204

    types = "finding.created,finding.updated,finding.deleted"
    events = await events_of(client, owner.headers, types, at_least=4)
    mine = [e for e in events if e["data"]["id"] == finding["id"]]
    assert [e["type"] for e in mine] == [
        "finding.created",
        "finding.updated",
        "finding.updated",
        "finding.deleted",
    ]
    assert mine[0]["data"]["title"] == finding["title"]
    assert mine[1]["data"]["status"] == "resolved"
    assert mine[2]["data"]["status"] == "verified"
    assert mine[3]["data"] == {"id": finding["id"], "external_id": "EV-1"}

    # The other tenant's feed has none of them (the owner's feed above proves they are visible).
    theirs = await client.get("/v1/events", params={"types": types}, headers=other.headers)
    assert theirs.status_code == 200
    assert theirs.json()["items"] == []
    assert finding["id"] not in theirs.text


async def test_concurrent_writes_with_one_external_id_make_one_finding(client, make_owner):
    owner = await make_owner()
    body = finding_body(owner.supplier_id)
    puts = await asyncio.gather(
        *(
            client.put("/v1/findings/by-external-id/RACE-1", json=body, headers=owner.headers)
            for _ in range(6)
        )
    )
    assert sorted(r.status_code for r in puts) == [200, 200, 200, 200, 200, 201]
    assert len({r.json()["id"] for r in puts}) == 1
    posts = await asyncio.gather(
        *(
            client.post(
                "/v1/findings", json={**body, "external_id": "RACE-2"}, headers=owner.headers
            )
            for _ in range(6)
        )
    )
    assert sorted(r.status_code for r in posts) == [201, 409, 409, 409, 409, 409]
    assert len(await owner.list()) == 2


async def test_findings_stay_on_a_supplier_you_have_unlinked(client, make_owner, database):
    owner = await make_owner()
    finding = await owner.create(external_id="HIST-1", cap=None)
    path = f"/v1/findings/{finding['id']}"
    unlinked = await client.delete(f"/v1/suppliers/{owner.supplier_id}", headers=owner.headers)
    assert unlinked.status_code == 204

    # The history can still be kept up to date...
    resolved = await client.patch(path, json={"status": "resolved"}, headers=owner.headers)
    assert resolved.status_code == 200, resolved.text
    replaced = await client.put(
        "/v1/findings/by-external-id/HIST-1",
        json=finding_body(owner.supplier_id, status="verified", cap=None),
        headers=owner.headers,
    )
    assert replaced.status_code == 200, replaced.text
    assert replaced.json()["id"] == finding["id"]
    # ...but nothing new goes on a supplier you no longer link to.
    for response in (
        await client.post(
            "/v1/findings", json=finding_body(owner.supplier_id), headers=owner.headers
        ),
        await client.put(
            "/v1/findings/by-external-id/HIST-2",
            json=finding_body(owner.supplier_id),
            headers=owner.headers,
        ),
    ):
        assert response.status_code == 422, response.text
        assert [e["field"] for e in response.json()["errors"]] == ["supplier_id"]
    # Without a CAP or a case, the columns are SQL NULL (not the JSON value null).
    async with superuser_transaction(database) as session:
        nulls = await session.execute(
            sa.text("SELECT cap IS NULL, child_labour_case IS NULL FROM findings WHERE id = :id"),
            {"id": finding["id"]},
        )
        assert nulls.one() == (True, True)


async def test_a_retried_post_with_an_idempotency_key_records_one_finding(client, make_owner):
    owner = await make_owner()
    body = finding_body(owner.supplier_id)
    headers = {**owner.headers, "Idempotency-Key": "retry-7f3a"}
    first = await client.post("/v1/findings", json=body, headers=headers)
    again = await client.post("/v1/findings", json=body, headers=headers)
    assert first.status_code == again.status_code == 201
    assert again.headers["idempotent-replayed"] == "true"
    assert again.json() == first.json()
    assert [f["id"] for f in await owner.list()] == [first.json()["id"]]
    other = await client.post(
        "/v1/findings", json={**body, "title": "Something else"}, headers=headers
    )
    assert other.status_code == 422
