"""`wg-api demo`: the seeded data set is complete, consistent, and a second run adds nothing."""

from __future__ import annotations

import base64
from typing import Any

import httpx
import sqlalchemy as sa

from tests.conftest import superuser_transaction
from wg_api.demo import (
    DEMO_GROUP,
    DEMO_TENANTS,
    FINDINGS,
    KICK_OFF_TITLE,
    QUARTERLY_TITLE,
    SUPPLIERS,
    seed_demo,
)
from wg_api.platform.database import Database

DEMO_SLUGS = [t["slug"] for t in DEMO_TENANTS]

COUNTS = {
    "tenants": "SELECT count(*) FROM tenants WHERE slug = ANY(:slugs)",
    "active demo clients": """
        SELECT count(*) FROM api_clients c JOIN tenants t ON t.id = c.tenant_id
        WHERE t.slug = ANY(:slugs) AND c.name = 'demo' AND c.revoked_at IS NULL""",
    "groups": "SELECT count(*) FROM working_groups WHERE name = :group",
    "members": """
        SELECT count(*) FROM working_group_members m JOIN working_groups g ON g.id = m.group_id
        WHERE g.name = :group AND m.status = 'active'""",
    "invitations": """
        SELECT count(*) FROM invitations i JOIN working_groups g ON g.id = i.group_id
        WHERE g.name = :group""",
    "suppliers": "SELECT count(*) FROM suppliers WHERE name = ANY(:suppliers)",
    "links": """
        SELECT count(*) FROM supplier_links l JOIN tenants t ON t.id = l.tenant_id
        WHERE t.slug = ANY(:slugs)""",
    "findings": """
        SELECT count(*) FROM findings f JOIN tenants t ON t.id = f.tenant_id
        WHERE t.slug = ANY(:slugs)""",
    "active shares": """
        SELECT count(*) FROM shares s JOIN working_groups g ON g.id = s.group_id
        WHERE g.name = :group AND s.status = 'active'""",
    "shared findings": """
        SELECT count(*) FROM shared_findings s JOIN working_groups g ON g.id = s.group_id
        WHERE g.name = :group""",
}


async def _counts(database: Database) -> dict[str, Any]:
    params = {
        "slugs": DEMO_SLUGS,
        "group": DEMO_GROUP["name"],
        "suppliers": [s["name"] for s in SUPPLIERS.values()],
    }
    async with superuser_transaction(database) as session:
        return {name: await session.scalar(sa.text(sql), params) for name, sql in COUNTS.items()}


async def _token_status(client: httpx.AsyncClient, entry: dict[str, Any]) -> tuple[int, Any]:
    basic = base64.b64encode(f"{entry['client_id']}:{entry['client_secret']}".encode()).decode()
    response = await client.post(
        "/oauth/token",
        data={"grant_type": "client_credentials"},
        headers={"Authorization": f"Basic {basic}"},
    )
    return response.status_code, response.json()


async def test_demo_seeds_everything_once(client, database, settings):
    first = await seed_demo(database, settings)
    expected = {
        "tenants": 5,
        "active demo clients": 5,
        "groups": 1,
        "members": 5,
        "invitations": 4,
        "suppliers": len(SUPPLIERS),
        "links": 13,
        "findings": len(FINDINGS),
        "active shares": len(FINDINGS),
        "shared findings": len(FINDINGS),
    }
    assert await _counts(database) == expected
    assert [t["tenant"]["slug"] for t in first["tenants"]] == DEMO_SLUGS
    assert first["working_group"]["member_count"] == 5
    assert first["suppliers"] == len(SUPPLIERS)
    assert first["findings"] == len(FINDINGS)
    for entry in first["tenants"]:
        assert entry["get_token"] == (
            f"curl -s -u {entry['client_id']}:{entry['client_secret']} "
            f"-d grant_type=client_credentials {settings.public_url}/oauth/token"
        )

    second = await seed_demo(database, settings)
    assert await _counts(database) == expected
    assert second["working_group"]["id"] == first["working_group"]["id"]

    # Each run prints fresh credentials that work; the previous ones are revoked.
    for old, new in zip(first["tenants"], second["tenants"], strict=True):
        assert new["tenant"] == old["tenant"]
        assert new["client_id"] != old["client_id"]
        assert (await _token_status(client, old))[0] == 401
        status, token = await _token_status(client, new)
        assert status == 200, token

    # The replaced clients were revoked through identity's service: the audit log says so.
    _, token = await _token_status(client, second["tenants"][1])
    log = await client.get(
        "/v1/audit-log", headers={"Authorization": f"Bearer {token['access_token']}"}
    )
    assert log.status_code == 200, log.text
    revoked = [e for e in log.json()["items"] if e["action"] == "api_client.revoked"]
    assert revoked, log.text
    assert {e["actor"]["type"] for e in revoked} == {"system"}, revoked

    # What a demo brand sees through the API: its own suppliers with its codes, and the group.
    northwind = next(t for t in second["tenants"] if t["tenant"]["slug"] == "northwind-apparel")
    _, token = await _token_status(client, northwind)
    headers = {"Authorization": f"Bearer {token['access_token']}"}
    mine = (await client.get("/v1/suppliers", headers=headers)).json()["items"]
    assert sorted(s["internal_code"] for s in mine) == ["NW-DG-014", "NW-SZ-003", "NW-VN-021"]
    assert {s["country"] for s in mine} == {"CN", "VN"}
    findings = (await client.get("/v1/findings", headers=headers)).json()["items"]
    assert len(findings) == sum(f.brand == "northwind-apparel" for f in FINDINGS)
    child = next(f for f in findings if f["area"] == "child_labour")
    assert set(child["child_labour_case"]) == {
        "confirmed_under_min_age",
        "young_workers_in_hazardous_work",
        "age_unconfirmed",
        "remediation",
    }
    group_id = second["working_group"]["id"]
    members = await client.get(f"/v1/working-groups/{group_id}/members", headers=headers)
    assert sorted(m["tenant"]["slug"] for m in members.json()["items"]) == sorted(DEMO_SLUGS)
    shared = await client.get(
        f"/v1/working-groups/{group_id}/shared-findings", params={"limit": 200}, headers=headers
    )
    assert shared.status_code == 200, shared.text
    assert len(shared.json()["items"]) == len(FINDINGS)
    for brand in DEMO_TENANTS:
        assert brand["name"] not in shared.text

    # Meetings: a quarterly hybrid series in Hong Kong with RSVPs and an agenda, and a kick-off
    # call with published minutes and action items, made once.
    assert second["meetings"] == first["meetings"]
    assert first["meetings"]["occurrences"] == 5
    async with superuser_transaction(database) as session:
        rows = (
            await session.execute(
                sa.text(
                    "SELECT title, start_local, timezone, location->>'mode' AS mode, status "
                    "FROM meetings WHERE title IN (:q, :k) ORDER BY starts_at"
                ),
                {"q": QUARTERLY_TITLE, "k": KICK_OFF_TITLE},
            )
        ).all()
        rsvps = await session.scalar(
            sa.text(
                "SELECT count(*) FROM meeting_rsvps r JOIN meetings m ON m.id = r.meeting_id "
                "WHERE m.title = :q"
            ),
            {"q": QUARTERLY_TITLE},
        )
        actions = await session.scalar(
            sa.text("SELECT count(*) FROM action_items WHERE meeting_id = :id"),
            {"id": first["meetings"]["kick_off_meeting_id"]},
        )
    quarterly = [r for r in rows if r.title == QUARTERLY_TITLE]
    assert len(quarterly) == 4
    assert {(r.timezone, r.mode, r.start_local.strftime("%H:%M")) for r in quarterly} == {
        ("Asia/Hong_Kong", "hybrid", "10:00")
    }
    # The second Thursday of every third month.
    assert all(r.start_local.weekday() == 3 and 8 <= r.start_local.day <= 14 for r in quarterly)
    assert rsvps == 5
    assert actions == 2
