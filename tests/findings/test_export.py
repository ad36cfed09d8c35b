"""Export through HTTP: NDJSON and CSV, the list's filters, the import's columns, and the round
trip (export, import back: every row `unchanged`)."""

from __future__ import annotations

import csv
import io
import json
from typing import Any

import httpx
import pytest

from tests.findings.conftest import days_ago
from tests.findings.test_import import CSV, NDJSON, import_rows
from wg_api.findings.import_ import CSV_COLUMNS
from wg_api.findings.schemas import FindingRow

ROW_FIELDS = set(FindingRow.__struct_fields__)


async def export(
    client: httpx.AsyncClient, headers: dict[str, str], **params: Any
) -> httpx.Response:
    response = await client.get("/v1/findings/export", params=params, headers=headers)
    assert response.status_code == 200, response.text
    return response


async def varied_findings(owner: Any) -> list[dict[str, Any]]:
    """Findings that exercise every column: nested objects, nulls, quotes, newlines, Unicode."""
    return [
        await owner.create(external_id="EXP-1"),
        await owner.create(
            external_id=None,
            kind="observation",
            area="young_workers",
            severity=None,
            basis=None,
            title='Night shift "trainees", aged 16-17',
            description="Seen on line 3,\nnight shift.\r\n深圳 工厂, 夜班",
            source={"scheme": "internal"},
            affected_workers=None,
            cap=None,
            child_labour_case={"young_workers_in_hazardous_work": 3, "remediation": "training"},
            observed_on=days_ago(3),
        ),
        await owner.create(
            external_id="EXP-3",
            kind="good_practice",
            area="worker_involvement",
            severity=None,
            description="",
            status="verified",
            cap={"planned_actions": "Keep the committee", "due_on": days_ago(-10)},
            observed_on=days_ago(1),
        ),
    ]


async def test_ndjson_has_the_id_and_the_import_columns(client, make_owner):
    owner = await make_owner()
    made = await varied_findings(owner)
    response = await export(client, owner.headers)
    assert response.headers["content-type"].startswith("application/x-ndjson")
    rows = [json.loads(line) for line in response.text.splitlines()]
    assert [row["id"] for row in rows] == [f["id"] for f in await owner.list()]
    assert {row["id"] for row in rows} == {f["id"] for f in made}
    for row in rows:
        assert set(row) == ROW_FIELDS
        finding = next(f for f in made if f["id"] == row["id"])
        assert {k: finding[k] for k in ROW_FIELDS} == row


@pytest.mark.parametrize("format", ["ndjson", "csv"])
async def test_export_then_import_answers_unchanged_for_every_row(client, make_owner, format):
    owner = await make_owner()
    made = await varied_findings(owner)
    response = await export(client, owner.headers, format=format)
    content_type = CSV if format == "csv" else NDJSON
    result = await import_rows(client, owner.headers, response.content, content_type=content_type)
    assert result["summary"]["rows"] == len(made)
    assert result["summary"]["unchanged"] == len(made), result
    assert {r["id"] for r in result["results"]} == {f["id"] for f in made}
    for finding in made:
        read = await client.get(f"/v1/findings/{finding['id']}", headers=owner.headers)
        assert read.json() == finding


async def test_csv_has_the_import_header_and_nested_columns(client, make_owner):
    owner = await make_owner()
    made = await varied_findings(owner)
    response = await export(client, owner.headers, format="csv")
    assert response.headers["content-type"].startswith("text/csv")
    assert "findings.csv" in response.headers["content-disposition"]
    rows = list(csv.DictReader(io.StringIO(response.text, newline="")))
    assert tuple(rows[0]) == CSV_COLUMNS
    young = next(r for r in rows if r["id"] == made[1]["id"])
    assert young["external_id"] == ""
    assert young["description"] == made[1]["description"]
    assert young["child_labour_case.young_workers_in_hazardous_work"] == "3"
    assert young["cap.due_on"] == ""
    first = next(r for r in rows if r["id"] == made[0]["id"])
    assert first["source.reference"] == made[0]["source"]["reference"]
    assert first["cap.due_on"] == made[0]["cap"]["due_on"]


async def test_the_lists_filters_apply_and_only_the_callers_findings(client, make_owner):
    owner = await make_owner()
    other = await make_owner()
    made = await varied_findings(owner)
    theirs = await other.create(external_id="THEIRS")
    everything = await export(client, owner.headers)
    assert theirs["id"] not in everything.text
    assert other.supplier_id not in everything.text
    young = await export(client, owner.headers, area="young_workers")
    assert [json.loads(line)["id"] for line in young.text.splitlines()] == [made[1]["id"]]
    verified = await export(client, owner.headers, status="verified", format="csv")
    assert len(verified.text.splitlines()) == 2
    nothing = await export(client, owner.headers, observed_from=days_ago(-5))
    assert nothing.text == ""
    mine = await export(client, owner.headers, supplier_id=other.supplier_id)
    assert mine.text == ""


async def test_the_usual_errors(client, make_owner):
    owner = await make_owner()
    no_scope = await owner.tenant.headers("findings:write")
    forbidden = await client.get("/v1/findings/export", headers=no_scope)
    assert forbidden.status_code == 403
    bad_format = await client.get("/v1/findings/export?format=xlsx", headers=owner.headers)
    assert bad_format.status_code in (400, 422)
    assert bad_format.json()["errors"][0]["field"] == "format"
    bad_area = await client.get("/v1/findings/export?area=weather", headers=owner.headers)
    assert bad_area.status_code in (400, 422)
    naive = await client.get(
        "/v1/findings/export?updated_since=2026-01-01T00:00:00", headers=owner.headers
    )
    assert naive.status_code == 422
    assert naive.json()["errors"][0]["field"] == "updated_since"
    for query in ("supplier_id=nope", "observed_to=someday", "severity=fatal"):
        # The same problems as the list's for the same filters.
        exported = await client.get(f"/v1/findings/export?{query}", headers=owner.headers)
        listed = await client.get(f"/v1/findings?{query}", headers=owner.headers)
        assert exported.status_code == listed.status_code >= 400, query
        assert exported.json()["errors"] == listed.json()["errors"], query
    unauthenticated = await client.get("/v1/findings/export")
    assert unauthenticated.status_code == 401
