"""Suppliers through HTTP: one common registry, private links, and nothing about who links where."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import httpx
import pytest

from tests.conftest import count_rows
from tests.suppliers.conftest import (
    PROBLEM_JSON,
    assert_forbidden,
    assert_hidden,
    factory,
    link,
    new_supplier,
    os_id,
    unique,
)

CANONICAL_FIELDS = {
    "id",
    "name",
    "local_name",
    "address",
    "country",
    "province",
    "city",
    "sector",
    "os_id",
}
MATCH_QUERY = {"name": "Sunrise Garment", "address": "Humen Town", "country": "CN"}


async def _all_pages(
    client: httpx.AsyncClient, path: str, headers: dict[str, str], **params: Any
) -> tuple[list[dict[str, Any]], int]:
    items, cursor, pages = [], None, 0
    while True:
        query = dict(params, **({"cursor": cursor} if cursor else {}))
        response = await client.get(path, params=query, headers=headers)
        assert response.status_code == 200, response.text
        body = response.json()
        items.extend(body["items"])
        pages += 1
        cursor = body["next_cursor"]
        if cursor is None:
            assert "link" not in response.headers
            return items, pages
        assert 'rel="next"' in response.headers["link"]


async def test_the_same_factory_typed_two_ways_by_two_tenants_is_one_supplier(client, make_tenant):
    brand_a = await make_tenant(name="Brand Alpha Apparel")
    brand_b = await make_tenant(name="Brand Beta Outdoor")
    headers_a, headers_b = await brand_a.headers(), await brand_b.headers()

    created = await client.post(
        "/v1/suppliers",
        json={
            "name": "Dongguan Sunrise Garment Co., Ltd.",
            "local_name": "东莞市朝阳制衣有限公司",
            "address": "No. 18 Industrial Rd., Humen Town, Dongguan",
            "country": "CN",
            "province": "Guangdong",
            "city": "Dongguan",
            "internal_code": "ALPHA-SECRET-0042",
        },
        headers=headers_a,
    )
    assert created.status_code == 201, created.text
    assert created.json()["match"]["status"] == "created"
    assert created.json()["internal_code"] == "ALPHA-SECRET-0042"
    supplier = created.json()["supplier"]
    assert set(supplier) == CANONICAL_FIELDS
    assert supplier["local_name"] == "东莞市朝阳制衣有限公司"

    linked = await client.post(
        "/v1/suppliers",
        json={
            "name": "dongguan sunrise garment co ltd",
            "address": "18 industrial road, humen town, dongguan",
            "country": "CN",
            "internal_code": "BETA-SECRET-7",
        },
        headers=headers_b,
    )
    assert linked.status_code == 200, linked.text
    body_b = linked.json()
    assert body_b["match"]["status"] == "exact"
    assert body_b["supplier"] == supplier  # the canonical record, as first registered
    assert body_b["internal_code"] == "BETA-SECRET-7"

    registry = await client.get(
        "/v1/supplier-registry", params={"q": "sunrise garment"}, headers=headers_b
    )
    assert [s["id"] for s in registry.json()["items"]] == [supplier["id"]]

    # Each tenant sees its own link and code, and nothing of the other's, anywhere.
    for me, headers, mine, theirs in (
        (brand_a, headers_a, "ALPHA-SECRET-0042", brand_b),
        (brand_b, headers_b, "BETA-SECRET-7", brand_a),
    ):
        their_code = "BETA-SECRET-7" if mine.startswith("ALPHA") else "ALPHA-SECRET-0042"
        own_list = await client.get("/v1/suppliers", headers=headers)
        one = await client.get(f"/v1/suppliers/{supplier['id']}", headers=headers)
        by_code = await client.get("/v1/suppliers", params={"q": their_code}, headers=headers)
        registry = await client.get(
            "/v1/supplier-registry", params={"q": "Dongguan Sunrise"}, headers=headers
        )
        registry_by_code = await client.get(
            "/v1/supplier-registry", params={"q": their_code}, headers=headers
        )
        match = await client.post(
            "/v1/suppliers/match",
            json={"name": "Dongguan Sunrise Garment", "address": "Humen Town", "country": "CN"},
            headers=headers,
        )
        assert [s["internal_code"] for s in own_list.json()["items"]] == [mine]
        assert one.json()["internal_code"] == mine
        assert by_code.json()["items"] == []
        assert registry_by_code.json()["items"] == []
        assert registry.json()["items"] == [supplier]
        assert match.json()["candidates"][0]["supplier"] == supplier
        for response in (own_list, one, by_code, registry, registry_by_code, match):
            assert response.status_code == 200, response.text
            for secret in (their_code, str(theirs.id), theirs.slug, theirs.name):
                assert secret not in response.text
        assert me.slug not in registry.text + match.text


async def test_linking_by_supplier_id_and_by_os_id(client, make_tenant):
    brand_a, brand_b = await make_tenant(), await make_tenant()
    headers_a, headers_b = await brand_a.headers(), await brand_b.headers()
    identifier = os_id()
    supplier = await new_supplier(client, headers_a, os_id=identifier)
    assert supplier["os_id"] == identifier

    by_os_id = await client.post(
        "/v1/suppliers", json={"os_id": identifier, "internal_code": "V-1"}, headers=headers_b
    )
    assert by_os_id.status_code == 200, by_os_id.text
    assert by_os_id.json()["supplier"]["id"] == supplier["id"]
    assert by_os_id.json()["match"] == {"status": "linked", "method": "os_id"}

    brand_c = await make_tenant()
    headers_c = await brand_c.headers()
    by_id = await client.post(
        "/v1/suppliers", json={"supplier_id": supplier["id"]}, headers=headers_c
    )
    assert by_id.status_code == 200, by_id.text
    assert by_id.json()["match"] == {"status": "linked", "method": "supplier_id"}
    assert by_id.json()["internal_code"] is None

    # Linking again is harmless and keeps (or sets) the caller's own code.
    again = await client.post(
        "/v1/suppliers",
        json={"supplier_id": supplier["id"], "internal_code": "C-9"},
        headers=headers_c,
    )
    assert again.status_code == 200
    mine = await client.get("/v1/suppliers", headers=headers_c)
    assert [(s["id"], s["internal_code"]) for s in mine.json()["items"]] == [
        (supplier["id"], "C-9")
    ]


async def test_an_internal_code_names_one_of_your_suppliers_only(client, make_tenant):
    brand = await make_tenant()
    headers = await brand.headers()
    await link(client, headers, factory(internal_code="DG-001"))
    other = factory(internal_code="DG-001")
    response = await client.post("/v1/suppliers", json=other, headers=headers)
    assert response.status_code == 409, response.text
    assert response.headers["content-type"] == PROBLEM_JSON
    assert response.json()["errors"] == [
        {"field": "internal_code", "message": "already used for another supplier"}
    ]
    registry = await client.get(
        "/v1/supplier-registry", params={"q": other["name"][:30]}, headers=headers
    )
    assert registry.json()["items"] == []  # nothing created

    # Another tenant's codes are its own business: the same code is fine there.
    brand_b = await make_tenant()
    result = await link(client, await brand_b.headers(), factory(internal_code="DG-001"))
    assert result["internal_code"] == "DG-001"


async def test_match_ranks_candidates_with_a_confidence_and_creates_nothing(
    client, make_tenant, database
):
    brand = await make_tenant()
    headers = await brand.headers()
    token = unique()
    address = f"Lot {token}, Tan Binh Industrial Park, Ho Chi Minh City"
    exact = await new_supplier(
        client, headers, name=f"Hoa Binh Garment {token} Co., Ltd.", address=address, country="VN"
    )
    close = await new_supplier(
        client,
        headers,
        name=f"Hoa Binh Garments {token} Export",
        address=f"12 Road {token}, Binh Duong",
        country="VN",
    )
    same_name_elsewhere = await new_supplier(
        client, headers, name=f"Hoa Binh Garment {token}", address=address, country="KH"
    )
    unrelated = await new_supplier(client, headers, name=f"Mekong Toys {token}", country="VN")
    suppliers_before = await count_rows(database, "suppliers")
    links_before = await count_rows(database, "supplier_links")

    query = {
        "name": f"CONG TY TNHH HOA BINH GARMENT {token}",
        "address": f"lot {token} tan binh industrial park ho chi minh city",
        "country": "VN",
    }
    response = await client.post("/v1/suppliers/match", json=query, headers=headers)
    assert response.status_code == 200, response.text
    candidates = response.json()["candidates"]
    ids = [c["supplier"]["id"] for c in candidates]
    assert ids[:2] == [exact["id"], close["id"]]
    assert unrelated["id"] not in ids
    assert same_name_elsewhere["id"] not in ids  # another country is another factory
    assert candidates[0]["confidence"] == 1.0
    assert candidates[0]["reason"] == "exact"
    assert 0 < candidates[1]["confidence"] < 1
    assert candidates[1]["reason"] == "similar_name"
    confidences = [c["confidence"] for c in candidates]
    assert confidences == sorted(confidences, reverse=True)
    assert all(set(c["supplier"]) == CANONICAL_FIELDS for c in candidates)

    # Matching creates nothing and links nothing.
    assert await count_rows(database, "suppliers") == suppliers_before
    assert await count_rows(database, "supplier_links") == links_before
    nothing = await client.post(
        "/v1/suppliers/match",
        json={"name": f"Brand New Factory {unique()}", "address": "Nowhere", "country": "VN"},
        headers=headers,
    )
    assert nothing.json() == {"candidates": []}


async def test_match_by_os_id_and_by_local_name_in_chinese_script(client, make_tenant):
    brand = await make_tenant()
    headers = await brand.headers()
    token = unique()
    identifier = os_id()
    local_name = f"苏州明光玩具{token}有限公司"
    supplier = await new_supplier(
        client,
        headers,
        name=f"Suzhou Bright Light Toys {token}",
        local_name=local_name,
        address=f"88 Xinghu Street {token}, Suzhou Industrial Park",
        province="Jiangsu",
        city="Suzhou",
        os_id=identifier,
    )
    assert supplier["local_name"] == local_name  # kept as given, in its own script

    by_os_id = await client.post(
        "/v1/suppliers/match",
        json={"name": "Completely Different", "address": "x", "country": "CN", "os_id": identifier},
        headers=headers,
    )
    assert by_os_id.json()["candidates"][0] == {
        "supplier": supplier,
        "confidence": 1.0,
        "reason": "os_id",
    }

    # Typed in Chinese only, without 有限公司 and with 厂: still found, through the local name.
    by_local = await client.post(
        "/v1/suppliers/match",
        json={
            "name": "Mingguang",
            "local_name": f"苏州明光玩具{token}厂",
            "address": "Suzhou",
            "country": "CN",
        },
        headers=headers,
    )
    candidates = by_local.json()["candidates"]
    assert [c["supplier"]["id"] for c in candidates] == [supplier["id"]]
    assert candidates[0]["reason"] == "similar_local_name"
    assert 0 < candidates[0]["confidence"] < 1
    assert candidates[0]["supplier"]["local_name"] == local_name

    one = await client.get(f"/v1/suppliers/{supplier['id']}", headers=headers)
    assert one.json()["local_name"] == local_name
    found = await client.get(
        "/v1/supplier-registry", params={"q": f"明光玩具{token}"}, headers=headers
    )
    assert [s["local_name"] for s in found.json()["items"]] == [local_name]


async def test_creating_needs_name_address_and_country(client, make_tenant, database):
    brand = await make_tenant()
    headers = await brand.headers()
    before = await count_rows(database, "suppliers")
    response = await client.post(
        "/v1/suppliers", json={"name": "Half A Factory", "internal_code": "H-1"}, headers=headers
    )
    assert response.status_code == 422, response.text
    assert {e["field"] for e in response.json()["errors"]} == {"address", "country"}
    missing = await client.post(
        "/v1/suppliers", json={"supplier_id": str(uuid.uuid4())}, headers=headers
    )
    assert missing.status_code == 422, missing.text
    assert [e["field"] for e in missing.json()["errors"]] == ["supplier_id"]
    assert await count_rows(database, "suppliers") == before
    assert (await client.get("/v1/suppliers", headers=headers)).json()["items"] == []


@pytest.mark.parametrize(
    ("path", "change", "status", "field"),
    [
        ("/v1/suppliers", {"tenant_id": str(uuid.uuid4())}, 400, "tenant_id"),
        ("/v1/suppliers", {"linked_at": "2026-01-01T00:00:00Z"}, 400, "linked_at"),
        ("/v1/suppliers", {"country": 86}, 400, "country"),
        ("/v1/suppliers", {"name": ["Sunrise"]}, 400, "name"),
        ("/v1/suppliers", {"supplier_id": "not-a-uuid"}, 422, "supplier_id"),
        ("/v1/suppliers", {"country": "cn"}, 422, "country"),
        ("/v1/suppliers", {"country": "CHN"}, 422, "country"),
        ("/v1/suppliers", {"os_id": "cn2019123abc4de"}, 422, "os_id"),
        ("/v1/suppliers", {"os_id": "CN123"}, 422, "os_id"),
        ("/v1/suppliers", {"name": ""}, 422, "name"),
        ("/v1/suppliers", {"internal_code": "x" * 101}, 422, "internal_code"),
        ("/v1/suppliers/match", {"tenant_id": str(uuid.uuid4())}, 400, "tenant_id"),
        ("/v1/suppliers/match", {"internal_code": "A-1"}, 400, "internal_code"),
        ("/v1/suppliers/match", {"address": 18}, 400, "address"),
        ("/v1/suppliers/match", {"country": "vn"}, 422, "country"),
        ("/v1/suppliers/match", {"os_id": "VN-1"}, 422, "os_id"),
    ],
)
async def test_bad_bodies_are_refused_and_change_nothing(
    client, make_tenant, database, path, change, status, field
):
    brand = await make_tenant()
    headers = await brand.headers()
    body = (
        factory(**change)
        if path == "/v1/suppliers"
        else {"name": "Sunrise", "address": "Humen", "country": "CN", **change}
    )
    before = await count_rows(database, "suppliers")
    response = await client.post(path, json=body, headers=headers)
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == PROBLEM_JSON
    problem = response.json()
    assert problem["status"] == status
    assert field in [e["field"] for e in problem["errors"]]
    assert await count_rows(database, "suppliers") == before
    assert (await client.get("/v1/suppliers", headers=headers)).json()["items"] == []


async def test_malformed_requests_are_400(client, make_tenant):
    headers = await (await make_tenant()).headers()
    not_json = await client.post(
        "/v1/suppliers",
        content=b"{name: sunrise",
        headers={**headers, "content-type": "application/json"},
    )
    assert not_json.status_code == 400
    for path in ("/v1/suppliers", "/v1/supplier-registry"):
        for params in ({"limit": 201}, {"limit": 0}, {"cursor": "!!!"}):
            response = await client.get(path, params=params, headers=headers)
            assert response.status_code == 400, (path, params, response.text)
            assert response.headers["content-type"] == PROBLEM_JSON
        bad_country = await client.get(path, params={"country": "cn"}, headers=headers)
        assert bad_country.status_code == 422, bad_country.text
    not_an_id = await client.get("/v1/suppliers/not-a-uuid", headers=headers)
    assert not_an_id.status_code == 404
    assert not_an_id.headers["content-type"] == PROBLEM_JSON


async def test_another_tenants_supplier_answers_like_a_random_id(client, make_tenant):
    owner, stranger = await make_tenant(), await make_tenant()
    owner_headers, stranger_headers = await owner.headers(), await stranger.headers()
    supplier = await new_supplier(client, owner_headers, internal_code="OWN-1")
    theirs, random = f"/v1/suppliers/{supplier['id']}", f"/v1/suppliers/{uuid.uuid4()}"

    await assert_hidden(client, "GET", theirs, random, stranger_headers)
    await assert_hidden(client, "DELETE", theirs, random, stranger_headers)
    assert (await client.get("/v1/suppliers", headers=stranger_headers)).json()["items"] == []

    # The stranger's DELETE removed nothing: the owner still links to it, with its code.
    one = await client.get(theirs, headers=owner_headers)
    assert one.status_code == 200
    assert one.json()["internal_code"] == "OWN-1"
    assert one.headers["etag"]


async def test_unlinking_removes_your_link_and_keeps_the_registry_entry(client, make_tenant):
    brand, other = await make_tenant(), await make_tenant()
    headers, other_headers = await brand.headers(), await other.headers()
    body = factory(internal_code="GONE-1")
    supplier = await new_supplier(client, headers, **{k: body[k] for k in body})
    await link(client, other_headers, {"supplier_id": supplier["id"], "internal_code": "STAY"})
    path = f"/v1/suppliers/{supplier['id']}"

    deleted = await client.delete(path, headers=headers)
    assert deleted.status_code == 204, deleted.text
    await assert_hidden(client, "GET", path, f"/v1/suppliers/{uuid.uuid4()}", headers)
    assert (await client.delete(path, headers=headers)).status_code == 404
    assert (await client.get("/v1/suppliers", headers=headers)).json()["items"] == []
    registry = await client.get(
        "/v1/supplier-registry", params={"q": body["name"][:30]}, headers=headers
    )
    assert [s["id"] for s in registry.json()["items"]] == [supplier["id"]]
    # The other tenant's link is untouched.
    theirs = await client.get(path, headers=other_headers)
    assert theirs.status_code == 200
    assert theirs.json()["internal_code"] == "STAY"

    # Linking again by name and address finds the same supplier; the old code is gone.
    again = await client.post(
        "/v1/suppliers",
        json=factory(**{"name": body["name"], "address": body["address"]}),
        headers=headers,
    )
    assert again.status_code == 200
    assert again.json()["supplier"]["id"] == supplier["id"]
    assert again.json()["internal_code"] is None


async def test_each_endpoint_needs_its_scope(client, make_tenant):
    brand = await make_tenant()
    owner_headers = await brand.headers()
    supplier = await new_supplier(client, owner_headers)
    path = f"/v1/suppliers/{supplier['id']}"
    read_only = await brand.headers("findings:read")
    no_findings = await brand.headers("events:read")

    await assert_forbidden(client, "POST", "/v1/suppliers", read_only, json=factory())
    await assert_forbidden(client, "DELETE", path, read_only)
    for method, url, kwargs in (
        ("POST", "/v1/suppliers/match", {"json": MATCH_QUERY}),
        ("GET", "/v1/suppliers", {}),
        ("GET", path, {}),
        ("GET", "/v1/supplier-registry", {}),
    ):
        await assert_forbidden(client, method, url, no_findings, **kwargs)
        ok = await client.request(method, url, headers=read_only, **kwargs)
        assert ok.status_code == 200, ok.text

    viewer = await make_tenant(role="viewer")
    await assert_forbidden(client, "POST", "/v1/suppliers", await viewer.headers(), json=factory())
    # Nothing changed by the refused calls.
    mine = await client.get("/v1/suppliers", headers=owner_headers)
    assert [s["id"] for s in mine.json()["items"]] == [supplier["id"]]


async def test_lists_page_by_name_and_filter(client, make_tenant):
    brand, other = await make_tenant(), await make_tenant()
    headers, other_headers = await brand.headers(), await other.headers()
    token = unique()
    made = []
    for i, country in enumerate(["CN", "CN", "VN", "CN", "VN"]):
        made.append(
            await new_supplier(
                client,
                headers,
                name=f"{token} Supplier {i}",
                country=country,
                internal_code=f"{token}-code-{i}",
            )
        )
    await new_supplier(client, other_headers, name=f"{token} Supplier other")

    items, pages = await _all_pages(client, "/v1/suppliers", headers, limit=2)
    assert pages == 3
    assert [s["id"] for s in items] == [s["id"] for s in made]  # by name, no duplicates
    assert all(s["internal_code"].startswith(token) for s in items)

    vietnam = await client.get("/v1/suppliers", params={"country": "VN"}, headers=headers)
    assert [s["name"] for s in vietnam.json()["items"]] == [
        f"{token} Supplier 2",
        f"{token} Supplier 4",
    ]
    by_code = await client.get("/v1/suppliers", params={"q": f"{token}-CODE-3"}, headers=headers)
    assert [s["id"] for s in by_code.json()["items"]] == [made[3]["id"]]
    by_name = await client.get("/v1/suppliers", params={"q": "supplier 1"}, headers=headers)
    assert [s["id"] for s in by_name.json()["items"]] == [made[1]["id"]]

    # The registry holds everyone's suppliers, canonical fields only, paged by name too.
    registry, pages = await _all_pages(client, "/v1/supplier-registry", headers, q=token, limit=2)
    assert pages == 3
    assert [s["name"] for s in registry] == sorted(s["name"] for s in registry)
    assert len({s["id"] for s in registry}) == 6
    assert all(set(s) == CANONICAL_FIELDS for s in registry)
    in_vietnam = await client.get(
        "/v1/supplier-registry", params={"q": token, "country": "VN"}, headers=other_headers
    )
    assert {s["id"] for s in in_vietnam.json()["items"]} == {made[2]["id"], made[4]["id"]}
    assert f"{token}-code" not in in_vietnam.text
    for wildcard in ("%", "_", "\\"):  # LIKE wildcards are searched for, not expanded
        literal = await client.get("/v1/supplier-registry", params={"q": wildcard}, headers=headers)
        assert literal.json()["items"] == []
        own = await client.get("/v1/suppliers", params={"q": wildcard}, headers=headers)
        assert own.json()["items"] == []
    by_os = await new_supplier(client, headers, os_id=(identifier := os_id()))
    found = await client.get(
        "/v1/supplier-registry", params={"q": identifier.lower()}, headers=other_headers
    )
    assert [s["id"] for s in found.json()["items"]] == [by_os["id"]]


async def test_concurrent_links(client, make_tenant):
    brands = [await make_tenant() for _ in range(4)]
    headers = [await brand.headers() for brand in brands]
    body = factory()
    same_factory = await asyncio.gather(
        *(client.post("/v1/suppliers", json=body, headers=h) for h in headers)
    )
    assert sorted(r.status_code for r in same_factory) == [200, 200, 200, 201]
    assert len({r.json()["supplier"]["id"] for r in same_factory}) == 1

    # One tenant racing itself for one internal code on three new factories: one wins, the
    # others are 409 and leave nothing behind, not even their new registry entries.
    bodies = [factory(internal_code="SAME-CODE") for _ in range(3)]
    racing = await asyncio.gather(
        *(client.post("/v1/suppliers", json=b, headers=headers[0]) for b in bodies)
    )
    assert sorted(r.status_code for r in racing) == [201, 409, 409]
    for b, response in zip(bodies, racing, strict=True):
        registry = await client.get(
            "/v1/supplier-registry", params={"q": b["name"][:30]}, headers=headers[0]
        )
        assert len(registry.json()["items"]) == (1 if response.status_code == 201 else 0)
    coded = await client.get("/v1/suppliers", params={"q": "SAME-CODE"}, headers=headers[0])
    assert len(coded.json()["items"]) == 1
