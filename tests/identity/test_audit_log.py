"""GET /v1/audit-log: security-relevant actions per tenant, newest first, append-only."""

from __future__ import annotations

import pytest
import sqlalchemy as sa
from sqlalchemy.exc import DBAPIError

from tests.identity.conftest import assert_problem
from wg_api.platform.pagination import encode_cursor


async def test_actions_are_recorded_newest_first_with_their_actor(client, make_tenant, local_idp):
    tenant, other = await make_tenant(), await make_tenant()
    headers = await tenant.headers()
    me = (await client.get("/v1/me", headers=headers)).json()["principal"]

    made = (await client.post("/v1/api-clients", json={"name": "sync"}, headers=headers)).json()
    rotated = await client.post(f"/v1/api-clients/{made['id']}/rotate-secret", headers=headers)
    await client.delete(f"/v1/api-clients/{made['id']}", headers=headers)
    idp = local_idp()
    provider = (
        await client.post("/v1/identity-providers", json=idp.provider_body(), headers=headers)
    ).json()
    await client.delete(f"/v1/identity-providers/{provider['id']}", headers=headers)

    response = await client.get("/v1/audit-log", headers=headers)
    assert response.status_code == 200
    entries = response.json()["items"]
    assert [(e["action"], e["target"]["id"]) for e in entries] == [
        ("identity_provider.removed", provider["id"]),
        ("identity_provider.added", provider["id"]),
        ("api_client.revoked", made["id"]),
        ("api_client.secret_rotated", made["id"]),
        ("api_client.created", made["id"]),
        ("api_client.created", me["id"]),  # the fixture's client, made on the command line
    ]
    for entry in entries[:-1]:
        assert entry["actor"] == {"type": "client", "id": me["id"], "name": me["name"]}
    assert entries[-1]["actor"] == {"type": "system", "id": None, "name": "wg-api command line"}
    assert entries[0]["target"]["type"] == "identity_provider"
    assert entries[0]["details"]["issuer"] == idp.issuer
    assert entries[4]["details"] == {
        "client_id": made["client_id"],
        "name": "sync",
        "role": "viewer",
        "scopes": made["scopes"],
    }
    times = [e["occurred_at"] for e in entries]
    assert times == sorted(times, reverse=True)
    assert all(t.endswith("Z") for t in times)
    # No secret ever reaches the log.
    assert made["client_secret"] not in response.text
    assert rotated.json()["client_secret"] not in response.text

    # Another tenant sees only its own entry.
    theirs = (await client.get("/v1/audit-log", headers=await other.headers())).json()["items"]
    assert [e["action"] for e in theirs] == ["api_client.created"]
    assert theirs[0]["target"]["id"] != me["id"]


async def test_pages_do_not_overlap(client, make_tenant):
    tenant = await make_tenant()
    headers = await tenant.headers()
    for i in range(4):
        await client.post("/v1/api-clients", json={"name": f"c{i}"}, headers=headers)
    seen: list[str] = []
    url, params = "/v1/audit-log", {"limit": 2}
    while True:
        response = await client.get(url, params=params, headers=headers)
        page = response.json()
        seen += [e["id"] for e in page["items"]]
        if page["next_cursor"] is None:
            break
        assert 'rel="next"' in response.headers["link"]
        params = {"limit": 2, "cursor": page["next_cursor"]}
    assert len(seen) == len(set(seen)) == 5


async def test_bad_page_parameters_are_400(client, make_tenant):
    tenant = await make_tenant()
    headers = await tenant.headers()
    assert_problem(await client.get("/v1/audit-log?limit=201", headers=headers), 400)
    for cursor in ("%%%", encode_cursor(["x"]), encode_cursor([1, 2]), encode_cursor([True])):
        response = await client.get("/v1/audit-log", params={"cursor": cursor}, headers=headers)
        assert_problem(response, 400)


async def test_only_tenant_admins_read_it(client, make_tenant):
    tenant = await make_tenant()
    viewer = await make_tenant(role="viewer")
    editor = await make_tenant(role="editor")
    for headers in (
        await tenant.headers("findings:read"),
        await viewer.headers(),
        await editor.headers(),
    ):
        assert_problem(await client.get("/v1/audit-log", headers=headers), 403)


async def test_a_refused_change_records_nothing(client, make_tenant):
    tenant = await make_tenant()
    headers = await tenant.headers()
    before = (await client.get("/v1/audit-log", headers=headers)).json()["items"]
    await client.post("/v1/api-clients", json={"name": ""}, headers=headers)
    await client.post(
        "/v1/api-clients",
        json={"name": "x", "role": "admin"},
        headers=await tenant.headers("admin"),
    )
    after = (await client.get("/v1/audit-log", headers=headers)).json()["items"]
    assert after == before


@pytest.mark.parametrize(
    "statement",
    [
        "UPDATE audit_log SET action = 'nothing.happened'",
        "DELETE FROM audit_log",
        "TRUNCATE audit_log",
    ],
)
async def test_the_app_role_cannot_change_or_delete_entries(
    client, make_tenant, database, statement
):
    tenant = await make_tenant()
    headers = await tenant.headers()
    await client.post("/v1/api-clients", json={"name": "sync"}, headers=headers)
    before = (await client.get("/v1/audit-log", headers=headers)).json()["items"]

    with pytest.raises(DBAPIError, match="permission denied"):
        async with database.transaction(tenant.id) as session:  # the request-serving role
            await session.execute(sa.text(statement))
    # The same role may append (that is how entries get there).
    async with database.transaction(tenant.id) as session:
        user = await session.scalar(sa.text("SELECT current_user"))
        assert user == database.app_engine.url.username
        await session.execute(
            sa.text(
                "INSERT INTO audit_log (tenant_id, actor_type, actor_name, action, target_type) "
                "VALUES (:t, 'system', 'test', 'test.appended', 'test')"
            ),
            {"t": tenant.id},
        )
    after = (await client.get("/v1/audit-log", headers=headers)).json()["items"]
    assert after[1:] == before
    assert after[0]["action"] == "test.appended"
