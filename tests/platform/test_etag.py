"""ETag on single-resource GETs; If-Match on PATCH and DELETE (a stale one is 412)."""

from __future__ import annotations

import re

import sqlalchemy as sa

from tests.conftest import superuser_transaction
from tests.platform.conftest import NoteOut
from wg_api.platform.http import etag_of


async def create_note(http, headers, text="first") -> tuple[str, str]:
    response = await http.post("/v1/test/notes", headers=headers, json={"text": text})
    assert response.status_code == 201, response.text
    return response.json()["id"], response.headers["etag"]


def assert_412(response) -> None:
    assert response.status_code == 412, response.text
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["type"] == "/problems/precondition-failed"


async def test_me_has_an_etag_that_follows_the_resource(client, make_tenant, database):
    tenant = await make_tenant()
    headers = await tenant.headers()
    first = await client.get("/v1/me", headers=headers)
    again = await client.get("/v1/me", headers=headers)
    etag = first.headers["etag"]
    assert re.fullmatch(r'"[^"]+"', etag), etag
    assert again.headers["etag"] == etag

    # Renamed by the operator: the app role may not change a tenant's name (migration 0011).
    async with superuser_transaction(database) as session:
        await session.execute(
            sa.text("UPDATE tenants SET name = :name WHERE id = :id"),
            {"name": "Renamed Brand", "id": tenant.id},
        )
    renamed = await client.get("/v1/me", headers=headers)
    assert renamed.json()["tenant"]["name"] == "Renamed Brand"
    assert renamed.headers["etag"] != etag


async def test_get_returns_the_etag_of_the_body(test_app_client, make_tenant):
    tenant = await make_tenant()
    headers = await tenant.headers()
    note_id, created_etag = await create_note(test_app_client, headers)
    response = await test_app_client.get(f"/v1/test/notes/{note_id}", headers=headers)
    assert response.status_code == 200
    assert response.headers["etag"] == created_etag
    body = response.json()
    assert response.headers["etag"] == etag_of(
        NoteOut(id=body["id"], text=body["text"], version=body["version"])
    )


async def test_patch_with_a_stale_if_match_is_412_and_changes_nothing(test_app_client, make_tenant):
    tenant = await make_tenant()
    headers = await tenant.headers()
    note_id, etag = await create_note(test_app_client, headers)
    url = f"/v1/test/notes/{note_id}"

    updated = await test_app_client.patch(
        url, headers={**headers, "If-Match": etag}, json={"text": "second"}
    )
    assert updated.status_code == 200, updated.text
    new_etag = updated.headers["etag"]
    assert new_etag != etag

    stale = await test_app_client.patch(
        url, headers={**headers, "If-Match": etag}, json={"text": "lost update"}
    )
    assert_412(stale)
    current = await test_app_client.get(url, headers=headers)
    assert current.json()["text"] == "second"
    assert current.headers["etag"] == new_etag


async def test_if_match_lists_and_star(test_app_client, make_tenant):
    tenant = await make_tenant()
    headers = await tenant.headers()
    note_id, etag = await create_note(test_app_client, headers)
    url = f"/v1/test/notes/{note_id}"

    listed = await test_app_client.patch(
        url, headers={**headers, "If-Match": f'"nope", {etag}'}, json={"text": "listed"}
    )
    assert listed.status_code == 200, listed.text
    star = await test_app_client.patch(
        url, headers={**headers, "If-Match": "*"}, json={"text": "star"}
    )
    assert star.status_code == 200, star.text
    assert star.json()["version"] == 3
    unconditional = await test_app_client.patch(url, headers=headers, json={"text": "blind"})
    assert unconditional.status_code == 200


async def test_delete_honours_if_match(test_app_client, make_tenant):
    tenant = await make_tenant()
    headers = await tenant.headers()
    note_id, etag = await create_note(test_app_client, headers)
    url = f"/v1/test/notes/{note_id}"

    stale = await test_app_client.delete(url, headers={**headers, "If-Match": '"stale"'})
    assert_412(stale)
    assert (await test_app_client.get(url, headers=headers)).status_code == 200

    deleted = await test_app_client.delete(url, headers={**headers, "If-Match": etag})
    assert deleted.status_code == 204, deleted.text
    assert (await test_app_client.get(url, headers=headers)).status_code == 404


async def test_delete_with_star_matches(test_app_client, make_tenant):
    tenant = await make_tenant()
    headers = await tenant.headers()
    note_id, _ = await create_note(test_app_client, headers)
    url = f"/v1/test/notes/{note_id}"
    deleted = await test_app_client.delete(url, headers={**headers, "If-Match": "*"})
    assert deleted.status_code == 204
    again = await test_app_client.delete(url, headers={**headers, "If-Match": "*"})
    assert again.status_code == 404
