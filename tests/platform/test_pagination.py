"""Keyset pagination, through the real tenant directory (GET /v1/tenants)."""

from __future__ import annotations

import base64
import re
import uuid
from typing import Any, cast
from urllib.parse import parse_qs, urlsplit

import pytest

from wg_api.identity import service
from wg_api.platform import pagination
from wg_api.platform.pagination import encode_cursor

LINK_NEXT = re.compile(r'^<(?P<url>[^>]+)>; rel="next"$')


async def create_tenants(database, slugs: list[str]) -> None:
    async with database.system_transaction() as session:
        for slug in slugs:
            await service.create_tenant(
                session, slug=slug, name=f"Paging {slug}", kind="brand", timezone="Asia/Hong_Kong"
            )


@pytest.fixture(scope="module")
async def directory(database) -> list[str]:
    """60 tenants whose slugs share a prefix no other test uses; `q=<prefix>` selects them."""
    prefix = f"pg{uuid.uuid4().hex[:8]}"
    slugs = [f"{prefix}-{i:03d}" for i in range(60)]
    await create_tenants(database, list(reversed(slugs)))
    return slugs


@pytest.fixture
async def headers(make_tenant):
    return await (await make_tenant()).headers()


def prefix_of(slugs: list[str]) -> str:
    return slugs[0].split("-")[0]


def next_link(response) -> str | None:
    link = response.headers.get("link")
    if link is None:
        return None
    match = LINK_NEXT.match(link)
    assert match, link
    return match["url"]


async def walk(client, headers, params: dict[str, str]) -> tuple[list[str], int]:
    """Follow next_cursor to the end; answer the slugs seen and the number of pages."""
    seen: list[str] = []
    pages = 0
    cursor = None
    while True:
        query = {**params, **({"cursor": cursor} if cursor else {})}
        response = await client.get("/v1/tenants", params=query, headers=headers)
        assert response.status_code == 200, response.text
        pages += 1
        body = response.json()
        seen += [item["slug"] for item in body["items"]]
        cursor = body["next_cursor"]
        assert (next_link(response) is not None) == (cursor is not None)
        if cursor is None:
            return seen, pages


async def test_default_page_is_50_items(client, headers, directory):
    response = await client.get("/v1/tenants", params={"q": prefix_of(directory)}, headers=headers)
    assert response.status_code == 200
    body = response.json()
    assert set(body) == {"items", "next_cursor"}
    assert [item["slug"] for item in body["items"]] == directory[:50]
    assert set(body["items"][0]) == {"id", "slug", "name", "kind"}
    assert body["next_cursor"]


async def test_limit_200_is_allowed(client, headers, directory):
    response = await client.get(
        "/v1/tenants", params={"q": prefix_of(directory), "limit": "200"}, headers=headers
    )
    assert response.status_code == 200
    body = response.json()
    assert [item["slug"] for item in body["items"]] == directory
    assert body["next_cursor"] is None
    assert "link" not in response.headers


@pytest.mark.parametrize("limit", ["201", "1000", "0", "-1", "abc", "1.5", ""])
async def test_bad_limit_is_400(client, headers, limit):
    response = await client.get("/v1/tenants", params={"limit": limit}, headers=headers)
    assert response.status_code == 400, response.text
    assert response.headers["content-type"] == "application/problem+json"
    body = response.json()
    assert body["type"] == "/problems/invalid-request"
    assert body["errors"][0]["field"] == "limit"


@pytest.mark.parametrize("limit", [7, 6, 1])
async def test_walking_every_page_visits_each_item_once_in_order(client, headers, directory, limit):
    seen, pages = await walk(client, headers, {"q": prefix_of(directory), "limit": str(limit)})
    assert seen == directory
    # 60 is a multiple of 6: the last full page already says there is nothing more.
    assert pages == -(-len(directory) // limit)


async def test_link_header_points_at_the_next_page(client, headers, directory):
    params = {"q": prefix_of(directory), "limit": "25"}
    response = await client.get("/v1/tenants", params=params, headers=headers)
    body = response.json()
    url = next_link(response)
    assert url is not None
    parts = urlsplit(url)
    assert parts.path == "/v1/tenants"
    assert parse_qs(parts.query) == {
        "q": [params["q"]],
        "limit": ["25"],
        "cursor": [body["next_cursor"]],
    }
    following = await client.get(url, headers=headers)
    assert [item["slug"] for item in following.json()["items"]] == directory[25:50]
    last = await client.get(next_link(following), headers=headers)
    assert [item["slug"] for item in last.json()["items"]] == directory[50:]
    assert last.json()["next_cursor"] is None
    assert next_link(last) is None


async def test_the_link_keeps_the_query_as_sent_and_one_cursor(client, headers, directory):
    prefix = prefix_of(directory)
    # A space escaped, a name escaped, an empty cursor spelled with an escape: the next page's
    # link keeps the query, drops every cursor and adds the one new cursor.
    first = await client.get(
        f"/v1/tenants?q=Paging%20{prefix}&l%69mit=20&cur%73or=", headers=headers
    )
    assert first.status_code == 200, first.text
    url = next_link(first)
    assert url is not None
    assert parse_qs(urlsplit(url).query) == {
        "q": [f"Paging {prefix}"],
        "limit": ["20"],
        "cursor": [first.json()["next_cursor"]],
    }
    second = await client.get(url, headers=headers)
    assert [item["slug"] for item in second.json()["items"]] == directory[20:40]
    second_url = next_link(second)
    assert second_url is not None
    following = parse_qs(urlsplit(second_url).query)
    assert following["cursor"] == [second.json()["next_cursor"]]
    assert following["q"] == [f"Paging {prefix}"]


def test_a_query_that_is_not_plain_is_encoded_anew_in_the_link():
    class Sent:
        def __init__(self, raw: bytes, params: dict[str, str]) -> None:
            self.scope = {"query_string": raw}
            self.query_params = params

    def link_query(request: Sent, cursor: str) -> str:
        return pagination._query_with_cursor(cast(Any, request), cursor)

    plain = link_query(Sent(b"q=a%20b&cursor=old&limit=5", {}), "NEW")
    assert plain == "q=a%20b&limit=5&cursor=NEW"
    # Bytes a URL may not hold as they are (a quote, an angle bracket, a bad escape): decoded
    # by the framework, then encoded anew, so the header's URL cannot end early.
    for raw in (b'q=a"b', b"q=a>b", b"q=%zz"):
        decoded = {"q": raw.decode()[2:], "cursor": "old"}
        encoded = link_query(Sent(raw, decoded), "NEW")
        assert parse_qs(encoded) == {"q": [decoded["q"]], "cursor": ["NEW"]}
        assert '"' not in encoded
        assert ">" not in encoded


@pytest.mark.parametrize("cursor", ["garbage!!", "abc", "%%%", "x" * 2000, "bm90IGpzb24"])
async def test_garbage_cursor_is_400(client, headers, cursor):
    response = await client.get("/v1/tenants", params={"cursor": cursor}, headers=headers)
    assert response.status_code == 400, response.text
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["type"] == "/problems/invalid-request"


async def test_cursors_are_sealed_for_their_list_and_tenant(
    client, make_tenant, directory, cursor_cipher
):
    tenant = await make_tenant()
    headers = await tenant.headers()
    params = {"q": prefix_of(directory), "limit": "3"}
    first = (await client.get("/v1/tenants", params=params, headers=headers)).json()
    # Opaque: no slug in it, and the same position is sealed afresh each time.
    raw = base64.urlsafe_b64decode(first["next_cursor"] + "=" * (-len(first["next_cursor"]) % 4))
    assert directory[2].encode() not in raw
    assert not raw.startswith(b"[")
    again = (await client.get("/v1/tenants", params=params, headers=headers)).json()
    assert again["next_cursor"] != first["next_cursor"]
    # A plain keyset position is not a cursor; one sealed by the service moves the position.
    plain = encode_cursor([directory[9]])
    response = await client.get("/v1/tenants", params={**params, "cursor": plain}, headers=headers)
    assert response.status_code == 400, response.text
    sealed = cursor_cipher.seal([directory[9]], f"page:{tenant.id}:/v1/tenants")
    response = await client.get("/v1/tenants", params={**params, "cursor": sealed}, headers=headers)
    assert [item["slug"] for item in response.json()["items"]] == directory[10:13]
    # Another tenant's cursor, or one of another list, is a bad cursor.
    other = await (await make_tenant()).headers()
    response = await client.get(
        "/v1/tenants", params={**params, "cursor": first["next_cursor"]}, headers=other
    )
    assert response.status_code == 400, response.text
    response = await client.get(
        "/v1/api-clients", params={"cursor": first["next_cursor"]}, headers=headers
    )
    assert response.status_code == 400, response.text


async def test_pages_are_stable_under_concurrent_inserts(client, headers, database):
    prefix = f"pc{uuid.uuid4().hex[:8]}"
    slugs = [f"{prefix}-{i:02d}" for i in range(20)]
    await create_tenants(database, slugs)
    params = {"q": prefix, "limit": "5"}

    first = (await client.get("/v1/tenants", params=params, headers=headers)).json()
    seen = [item["slug"] for item in first["items"]]
    assert seen == slugs[:5]

    behind = f"{prefix}-02a"  # sorts inside the page already read
    ahead = f"{prefix}-07a"  # sorts inside a page not read yet
    await create_tenants(database, [behind, ahead])

    cursor = first["next_cursor"]
    while cursor:
        response = await client.get(
            "/v1/tenants", params={**params, "cursor": cursor}, headers=headers
        )
        body = response.json()
        seen += [item["slug"] for item in body["items"]]
        cursor = body["next_cursor"]

    assert len(seen) == len(set(seen)), "an item was repeated"
    assert seen == sorted(seen)
    assert seen == sorted([*slugs, ahead]), "an item was skipped"
