"""Findings are private: another tenant cannot tell they exist, and scopes gate every endpoint."""

from __future__ import annotations

from tests.findings.conftest import finding_body, random_finding_path
from tests.suppliers.conftest import assert_forbidden, assert_hidden


async def test_another_tenant_cannot_tell_a_finding_exists(client, make_owner):
    owner, stranger = await make_owner(), await make_owner()
    finding = await owner.create(external_id="PRIVATE-1")
    path = f"/v1/findings/{finding['id']}"
    etag = (await client.get(path, headers=owner.headers)).headers["etag"]

    await assert_hidden(client, "GET", path, random_finding_path(), stranger.headers)
    await assert_hidden(
        client,
        "PATCH",
        path,
        random_finding_path(),
        stranger.headers,
        json={"status": "resolved"},
    )
    await assert_hidden(client, "DELETE", path, random_finding_path(), stranger.headers)
    await assert_hidden(
        client,
        "DELETE",
        path,
        random_finding_path(),
        {**stranger.headers, "If-Match": etag},
    )
    assert await stranger.list() == []
    assert await stranger.list(supplier_id=owner.supplier_id) == []
    assert await stranger.list(area="working_hours") == []

    # The owner's finding went through all of that untouched.
    after = await client.get(path, headers=owner.headers)
    assert after.status_code == 200
    assert after.json() == finding
    assert after.headers["etag"] == etag


async def test_each_endpoint_needs_its_scope(client, make_owner, make_tenant):
    owner = await make_owner()
    finding = await owner.create(external_id="SCOPED-1")
    path = f"/v1/findings/{finding['id']}"
    read_only = await owner.tenant.headers("findings:read")
    unrelated = await owner.tenant.headers("events:read")
    body = finding_body(owner.supplier_id)

    await assert_forbidden(client, "POST", "/v1/findings", read_only, json=body)
    await assert_forbidden(
        client, "PUT", "/v1/findings/by-external-id/SCOPED-1", read_only, json=body
    )
    await assert_forbidden(client, "PATCH", path, read_only, json={"status": "resolved"})
    await assert_forbidden(client, "DELETE", path, read_only)
    await assert_forbidden(client, "GET", "/v1/findings", unrelated)
    await assert_forbidden(client, "GET", path, unrelated)
    assert (await client.get(path, headers=read_only)).json() == finding
    assert await owner.list() == [finding]

    # A viewer's clients cannot write whatever scope they ask for.
    viewer = await make_tenant(role="viewer")
    await assert_forbidden(client, "POST", "/v1/findings", await viewer.headers(), json=body)


async def test_no_token_is_401(client, make_owner):
    owner = await make_owner()
    finding = await owner.create()
    for method, path in (
        ("GET", "/v1/findings"),
        ("GET", f"/v1/findings/{finding['id']}"),
        ("DELETE", f"/v1/findings/{finding['id']}"),
    ):
        response = await client.request(method, path)
        assert response.status_code == 401
        assert response.headers["www-authenticate"].startswith("Bearer")
    assert await owner.list() == [finding]
