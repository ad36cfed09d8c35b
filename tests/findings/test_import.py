"""Bulk import through HTTP: NDJSON and CSV, per-row results with lines, upserts, dry_run,
atomic, limits (413 writing nothing), CSV header errors, Idempotency-Key, events and shares."""

from __future__ import annotations

import dataclasses
import json
import uuid
from typing import Any

import httpx
import pytest

from tests.conftest import count_rows, serve_in_loop
from tests.findings.conftest import days_ago, finding_body
from tests.sharing import conftest as sharing
from tests.suppliers.conftest import PROBLEM_JSON, events_of, new_supplier
from wg_api.app import asgi_app

NDJSON = {"Content-Type": "application/x-ndjson"}
CSV = {"Content-Type": "text/csv"}


def ndjson(*rows: dict[str, Any]) -> bytes:
    return b"".join(json.dumps(row).encode() + b"\n" for row in rows)


async def import_rows(
    client: httpx.AsyncClient,
    headers: dict[str, str],
    body: bytes,
    *,
    content_type: dict[str, str] = NDJSON,
    expect: int = 200,
    **params: Any,
) -> dict[str, Any]:
    response = await client.post(
        "/v1/findings/import",
        content=body,
        headers={**headers, **content_type},
        params={k: str(v).lower() for k, v in params.items()},
    )
    assert response.status_code == expect, response.text
    result: dict[str, Any] = response.json()
    return result


async def by_external_id(client: httpx.AsyncClient, headers: dict[str, str]) -> dict[str, Any]:
    response = await client.get("/v1/findings", params={"limit": 200}, headers=headers)
    assert response.status_code == 200, response.text
    return {f["external_id"]: f for f in response.json()["items"]}


async def test_rows_are_created_updated_and_unchanged_by_external_id(client, make_owner):
    owner = await make_owner()
    first = finding_body(owner.supplier_id, external_id="IMP-1")
    second = finding_body(owner.supplier_id, external_id="IMP-2", title="Fire exits locked")
    result = await import_rows(client, owner.headers, ndjson(first, second))
    assert result["summary"] == {
        "rows": 2,
        "created": 2,
        "updated": 0,
        "unchanged": 0,
        "failed": 0,
        "not_written": 0,
    }
    assert [(r["line"], r["external_id"], r["status"]) for r in result["results"]] == [
        (1, "IMP-1", "created"),
        (2, "IMP-2", "created"),
    ]
    stored = await by_external_id(client, owner.headers)
    assert stored["IMP-2"]["title"] == "Fire exits locked"
    assert stored["IMP-1"]["id"] == result["results"][0]["id"]

    changed = {**second, "status": "remediation_in_progress"}
    again = await import_rows(client, owner.headers, ndjson(first, changed))
    assert [(r["status"], r["id"]) for r in again["results"]] == [
        ("unchanged", stored["IMP-1"]["id"]),
        ("updated", stored["IMP-2"]["id"]),
    ]
    assert again["summary"]["unchanged"] == 1
    assert again["summary"]["updated"] == 1
    after = await by_external_id(client, owner.headers)
    assert after["IMP-2"]["status"] == "remediation_in_progress"
    assert after["IMP-1"]["updated_at"] == stored["IMP-1"]["updated_at"]
    assert len(after) == 2


async def test_a_row_with_the_id_of_a_finding_replaces_it(client, make_owner):
    owner = await make_owner()
    finding = await owner.create(external_id="OLD-KEY")
    row = finding_body(owner.supplier_id, id=finding["id"], external_id="NEW-KEY", title="Renamed")
    result = await import_rows(client, owner.headers, ndjson(row))
    assert result["results"] == [
        {"line": 1, "external_id": "NEW-KEY", "status": "updated", "id": finding["id"]}
    ]
    read = await client.get(f"/v1/findings/{finding['id']}", headers=owner.headers)
    assert read.json()["external_id"] == "NEW-KEY"
    assert read.json()["title"] == "Renamed"


async def test_bad_rows_fail_with_their_line_and_the_single_requests_messages(client, make_owner):
    owner = await make_owner()
    good = finding_body(owner.supplier_id, external_id="GOOD")
    no_severity = finding_body(owner.supplier_id, external_id="NOSEV", severity=None)
    unknown_field = {**finding_body(owner.supplier_id, external_id="EXTRA"), "tenant_id": "x"}
    bad_area = finding_body(owner.supplier_id, external_id="AREA", area="weather")
    body = (
        ndjson(good)
        + b"\n"  # a blank line is skipped but counted
        + ndjson(no_severity, unknown_field)
        + b"{not json\n"
        + ndjson(bad_area, finding_body(owner.supplier_id))
    )
    result = await import_rows(client, owner.headers, body)
    by_line = {r["line"]: r for r in result["results"]}
    assert sorted(by_line) == [1, 3, 4, 5, 6, 7]
    assert by_line[1]["status"] == "created"
    assert by_line[3]["errors"] == [
        {"field": "severity", "message": "is required for a non_compliance finding"}
    ]
    assert by_line[4]["errors"] == [{"field": "tenant_id", "message": "unknown field"}]
    assert by_line[4]["external_id"] == "EXTRA"
    assert by_line[5]["errors"] == [{"field": "row", "message": "is not valid JSON"}]
    assert by_line[6]["errors"][0]["field"] == "area"
    assert by_line[7]["errors"][0]["field"] == "external_id"
    assert result["summary"]["failed"] == 5
    assert result["summary"]["created"] == 1

    # The same row through PUT answers the same messages.
    single = await client.put(
        "/v1/findings/by-external-id/NOSEV",
        json={k: v for k, v in no_severity.items() if k != "external_id"},
        headers=owner.headers,
    )
    assert single.status_code == 422
    assert single.json()["errors"] == by_line[3]["errors"]
    assert set(await by_external_id(client, owner.headers)) == {"GOOD"}


async def test_another_tenants_supplier_fails_like_an_unknown_one(client, make_owner):
    owner = await make_owner()
    other = await make_owner()
    theirs = finding_body(other.supplier_id, external_id="THEIRS")
    nobodys = finding_body(str(uuid.uuid4()), external_id="NOBODYS")
    result = await import_rows(client, owner.headers, ndjson(theirs, nobodys))
    first, second = result["results"]
    assert first["status"] == second["status"] == "failed"
    assert first["errors"] == second["errors"]
    assert first["errors"][0]["field"] == "supplier_id"
    assert await by_external_id(client, owner.headers) == {}
    assert other.tenant.name not in json.dumps(result)


async def test_an_id_of_another_tenants_finding_fails_like_a_random_id(client, make_owner):
    owner = await make_owner()
    other = await make_owner()
    theirs = await other.create(external_id="THEIRS")
    rows = [
        finding_body(owner.supplier_id, id=theirs["id"], external_id="A"),
        finding_body(owner.supplier_id, id=str(uuid.uuid4()), external_id="B"),
    ]
    result = await import_rows(client, owner.headers, ndjson(*rows))
    first, second = result["results"]
    assert first["errors"] == second["errors"]
    assert first["errors"][0]["field"] == "id"
    read = await client.get(f"/v1/findings/{theirs['id']}", headers=other.headers)
    assert read.json() == theirs


async def test_a_file_names_each_finding_once(client, make_owner):
    owner = await make_owner()
    row = finding_body(owner.supplier_id, external_id="TWICE")
    result = await import_rows(client, owner.headers, ndjson(row, {**row, "title": "Again"}))
    assert result["results"][0]["status"] == "created"
    assert result["results"][1]["errors"] == [
        {"field": "external_id", "message": "is on line 1 already"}
    ]


async def test_dry_run_writes_nothing_and_says_what_would_happen(client, database, make_owner):
    owner = await make_owner()
    existing = await owner.create(external_id="EXISTS")
    rows = [
        finding_body(owner.supplier_id, external_id="NEW"),
        finding_body(owner.supplier_id, external_id="EXISTS", title="Changed"),
    ]
    events_before = await count_rows(database, "events")
    result = await import_rows(client, owner.headers, ndjson(*rows), dry_run=True)
    assert result["dry_run"] is True
    assert [(r["status"], r.get("id")) for r in result["results"]] == [
        ("created", None),
        ("updated", existing["id"]),
    ]
    assert set(await by_external_id(client, owner.headers)) == {"EXISTS"}
    read = await client.get(f"/v1/findings/{existing['id']}", headers=owner.headers)
    assert read.json() == existing
    assert await count_rows(database, "events") == events_before


async def test_atomic_with_a_bad_row_writes_nothing(client, make_owner):
    owner = await make_owner()
    existing = await owner.create(external_id="KEEP")
    rows = [
        finding_body(owner.supplier_id, external_id="NEW"),
        finding_body(owner.supplier_id, external_id="KEEP", title="Changed"),
        finding_body(owner.supplier_id, external_id="BAD", kind="observation"),
    ]
    result = await import_rows(client, owner.headers, ndjson(*rows), atomic=True)
    assert [r["status"] for r in result["results"]] == ["not_written", "not_written", "failed"]
    assert result["summary"] == {
        "rows": 3,
        "created": 0,
        "updated": 0,
        "unchanged": 0,
        "failed": 1,
        "not_written": 2,
    }
    assert set(await by_external_id(client, owner.headers)) == {"KEEP"}
    read = await client.get(f"/v1/findings/{existing['id']}", headers=owner.headers)
    assert read.json()["title"] == existing["title"]

    good = await import_rows(client, owner.headers, ndjson(*rows[:2]), atomic=True)
    assert [r["status"] for r in good["results"]] == ["created", "updated"]


async def test_csv_rows_with_nested_columns_and_empty_cells(client, make_owner):
    owner = await make_owner()
    due = days_ago(-30)
    body = (
        "external_id,supplier_id,kind,area,severity,title,description,observed_on,"
        "source.scheme,source.reference,affected_workers,cap.planned_actions,cap.due_on,"
        "child_labour_case.age_unconfirmed\n"
        f"CSV-1,{owner.supplier_id},non_compliance,child_labour,zero_tolerance,"
        f'"Two workers, ages unverified","Line one\nline two",{days_ago(10)},smeta,,12,'
        f"Age checks at hiring,{due},2\n"
        f"CSV-2,{owner.supplier_id},observation,working_hours,,Rota posted,,{days_ago(5)},"
        "internal,,,,,\n"
        f"CSV-3,{owner.supplier_id},observation,working_hours,,Bad count,,{days_ago(5)},"
        "internal,,many,,,\n"
    ).encode()
    result = await import_rows(client, owner.headers, body, content_type=CSV)
    assert [(r["line"], r["status"]) for r in result["results"]] == [
        (2, "created"),
        (4, "created"),  # the first row spans lines 2 and 3
        (5, "failed"),
    ]
    assert result["results"][2]["errors"][0]["field"] == "affected_workers"
    stored = await by_external_id(client, owner.headers)
    one = stored["CSV-1"]
    assert one["description"] == "Line one\nline two"
    assert one["title"] == "Two workers, ages unverified"
    assert one["source"] == {"scheme": "smeta", "reference": None}
    assert one["affected_workers"] == 12
    assert one["cap"]["due_on"] == due
    assert one["cap"]["root_cause"] is None
    assert one["child_labour_case"]["age_unconfirmed"] == 2
    assert stored["CSV-2"]["cap"] is None
    assert stored["CSV-2"]["description"] == ""


@pytest.mark.parametrize(
    ("header", "named"),
    [
        ("external_id,supplier_id,colour,weight\n", ["colour", "weight"]),
        ("CSV-1,0f4e,observation\n", ["CSV-1", "0f4e", "observation"]),
    ],
)
async def test_a_csv_header_with_unknown_columns_is_400_naming_them(
    client, make_owner, header, named
):
    owner = await make_owner()
    body = header.encode() + b"x,y,z,w\n"
    response = await client.post(
        "/v1/findings/import", content=body, headers={**owner.headers, **CSV}
    )
    assert response.status_code == 400, response.text
    assert response.headers["content-type"] == PROBLEM_JSON
    problem = response.json()
    assert [e["field"] for e in problem["errors"]] == named
    for name in named:
        assert name in problem["detail"]
    assert await by_external_id(client, owner.headers) == {}


async def test_an_empty_csv_is_400(client, make_owner):
    owner = await make_owner()
    response = await client.post(
        "/v1/findings/import", content=b"", headers={**owner.headers, **CSV}
    )
    assert response.status_code == 400
    assert response.json()["errors"] == [{"field": "header", "message": "is missing"}]


async def test_over_the_row_or_byte_limit_is_413_and_writes_nothing(
    settings, database, make_tenant
):
    small = dataclasses.replace(settings, import_max_rows=3, import_max_bytes=4000)
    async with serve_in_loop(asgi_app(small, database)) as http:
        tenant = await make_tenant()
        headers = await tenant.headers()
        supplier = await new_supplier(http, headers)
        rows = [finding_body(supplier["id"], external_id=f"L-{i}") for i in range(4)]
        too_many = await http.post(
            "/v1/findings/import", content=ndjson(*rows), headers={**headers, **NDJSON}
        )
        assert too_many.status_code == 413, too_many.text
        assert "3 rows" in too_many.json()["detail"]
        big = ndjson(rows[0]) + b" " * 5000 + b"\n"
        too_big = await http.post("/v1/findings/import", content=big, headers={**headers, **NDJSON})
        assert too_big.status_code == 413

        async def streamed() -> Any:  # no Content-Length: the limit holds on the bytes read
            yield ndjson(rows[0])
            yield b" " * 5000

        chunked = await http.post(
            "/v1/findings/import", content=streamed(), headers={**headers, **NDJSON}
        )
        assert chunked.status_code == 413
        listed = await http.get("/v1/findings", headers=headers)
        assert listed.json()["items"] == []
        fits = await http.post(
            "/v1/findings/import", content=ndjson(*rows[:3]), headers={**headers, **NDJSON}
        )
        assert fits.json()["summary"]["created"] == 3


async def test_idempotency_key_replays_without_buffering_the_body(client, make_owner):
    owner = await make_owner()
    rows = ndjson(finding_body(owner.supplier_id, external_id="IDEM"))
    headers = {**owner.headers, **NDJSON, "Idempotency-Key": f"import-{uuid.uuid4()}"}
    first = await client.post("/v1/findings/import", content=rows, headers=headers)
    assert first.status_code == 200
    assert first.json()["results"][0]["status"] == "created"
    again = await client.post("/v1/findings/import", content=rows, headers=headers)
    assert again.status_code == 200
    assert again.headers["idempotent-replayed"] == "true"
    assert again.json() == first.json()  # "created" again, not "unchanged"
    other = ndjson(finding_body(owner.supplier_id, external_id="OTHER"))
    reused = await client.post("/v1/findings/import", content=other, headers=headers)
    assert reused.status_code == 422
    assert reused.json()["type"] == "/problems/idempotency-key-reused"
    assert set(await by_external_id(client, owner.headers)) == {"IDEM"}
    # Bigger than the 1 MiB a buffered body may have: a streamed route is not buffered.
    many = ndjson(
        *[
            finding_body(owner.supplier_id, external_id=f"BIG-{i}", description="x" * 2000)
            for i in range(600)
        ]
    )
    assert len(many) > 1024 * 1024
    big_key = {**owner.headers, **NDJSON, "Idempotency-Key": f"big-{uuid.uuid4()}"}
    big = await client.post("/v1/findings/import", content=many, headers=big_key)
    assert big.status_code == 200, big.text
    assert big.json()["summary"]["created"] == 600


async def test_imports_record_events_and_refresh_shares(client, make_owner):
    owner = await make_owner()
    existing = await owner.create(external_id="EV-1")
    rows = [
        finding_body(owner.supplier_id, external_id="EV-1", status="resolved"),
        finding_body(owner.supplier_id, external_id="EV-2"),
    ]
    result = await import_rows(client, owner.headers, ndjson(*rows))
    created_id = result["results"][1]["id"]
    created = await events_of(client, owner.headers, "finding.created", at_least=2)
    assert created_id in {e["data"]["id"] for e in created}
    new = next(e for e in created if e["data"]["id"] == created_id)
    read = await client.get(f"/v1/findings/{created_id}", headers=owner.headers)
    assert new["data"] == read.json()
    updated = await events_of(client, owner.headers, "finding.updated")
    assert [e["data"]["id"] for e in updated] == [existing["id"]]
    assert updated[0]["data"]["status"] == "resolved"
    # Unchanged rows record nothing.
    await import_rows(client, owner.headers, ndjson(*rows))
    assert len(await events_of(client, owner.headers, "finding.updated")) == 1


async def test_a_share_follows_an_imported_change(client, make_group):
    group = await make_group()
    actor = group.members[0]
    supplier = await sharing.new_supplier(client, actor)
    finding = await sharing.record(client, actor, supplier["id"], external_id="SH-1")
    shared = await sharing.share(client, actor, finding["id"], group)
    row = sharing.finding_body(
        supplier["id"], external_id="SH-1", status="verified", title="Fire exits now unlocked"
    )
    result = await import_rows(client, actor.headers, ndjson(row))
    assert result["results"][0]["status"] == "updated"
    reader = group.members[1]
    read = await client.get(
        f"{group.path}/shared-findings/{shared['shared_finding_id']}", headers=reader.headers
    )
    assert read.status_code == 200, read.text
    assert read.json()["status"] == "verified"
    assert read.json()["title"] == "Fire exits now unlocked"
    assert actor.handle.name not in read.text


async def test_the_usual_errors(client, make_owner, make_tenant):
    owner = await make_owner()
    body = ndjson(finding_body(owner.supplier_id, external_id="U-1"))
    reader = await owner.tenant.headers("findings:read")
    forbidden = await client.post("/v1/findings/import", content=body, headers={**reader, **NDJSON})
    assert forbidden.status_code == 403
    wrong_type = await client.post(
        "/v1/findings/import", content=body, headers={**owner.headers, "Content-Type": "text/plain"}
    )
    assert wrong_type.status_code == 415
    bad_flag = await client.post(
        "/v1/findings/import?dry_run=perhaps", content=body, headers={**owner.headers, **NDJSON}
    )
    assert bad_flag.status_code == 400
    unauthenticated = await client.post("/v1/findings/import", content=body, headers=NDJSON)
    assert unauthenticated.status_code == 401
    assert await by_external_id(client, owner.headers) == {}
