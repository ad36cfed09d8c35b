"""The bench data generator on a tiny set: right counts, idempotent, and the real API serves it."""

from __future__ import annotations

import dataclasses
import uuid

import asyncpg

from bench.generate import (
    BIG_TENANT_SLUG,
    Spec,
    bench_admin_url,
    bench_clients,
    connect_kwargs,
    drop_database,
    generate,
)
from tests.conftest import serve_in_loop
from wg_api.app import asgi_app
from wg_api.platform.database import Database

SPEC = Spec(tenants=4, suppliers=150, findings=400, groups=2)


def quiet(*_: object) -> None:
    return None


async def test_generator_makes_a_consistent_set_that_the_api_serves(settings):
    name = f"wg_bench_smoke_{uuid.uuid4().hex[:8]}"
    try:
        first = await generate(settings, SPEC, database=name, log=quiet)
        assert not first.skipped
        assert first.counts["tenants"] == 4
        assert first.counts["suppliers"] == 150
        assert first.counts["findings"] == 400
        assert first.counts["working_groups"] == 2

        again = await generate(settings, SPEC, database=name, log=quiet)
        assert again.skipped
        assert again.counts == first.counts

        smaller = await generate(
            settings, dataclasses.replace(SPEC, findings=300), database=name, log=quiet
        )
        assert not smaller.skipped
        assert smaller.counts["findings"] == 300

        admin_url = bench_admin_url(settings, name)
        conn = await asyncpg.connect(**connect_kwargs(admin_url))
        try:
            unlinked = await conn.fetchval(
                "SELECT count(*) FROM findings f LEFT JOIN supplier_links l "
                "ON l.tenant_id = f.tenant_id AND l.supplier_id = f.supplier_id "
                "WHERE l.tenant_id IS NULL"
            )
            big_findings = await conn.fetchval(
                "SELECT count(*) FROM findings f JOIN tenants t ON t.id = f.tenant_id "
                "WHERE t.slug = $1",
                BIG_TENANT_SLUG,
            )
            big_links = await conn.fetchval(
                "SELECT count(*) FROM supplier_links l JOIN tenants t ON t.id = l.tenant_id "
                "WHERE t.slug = $1",
                BIG_TENANT_SLUG,
            )
        finally:
            await conn.close()
        assert unlinked == 0
        assert big_findings == round(300 * SPEC.big_share)

        # Every generated row passes through the real API's Structs (vocabularies, CAP, cases).
        credentials = (await bench_clients(admin_url, settings, [BIG_TENANT_SLUG]))[BIG_TENANT_SLUG]
        database = Database.connect(admin_url, settings)
        try:
            async with serve_in_loop(asgi_app(settings, database)) as http:
                token = await http.post(
                    "/oauth/token",
                    data={"grant_type": "client_credentials"},
                    auth=(credentials.client_id, credentials.client_secret),
                )
                assert token.status_code == 200, token.text
                headers = {"Authorization": f"Bearer {token.json()['access_token']}"}
                findings = await http.get("/v1/findings?limit=200", headers=headers)
                assert findings.status_code == 200, findings.text
                items = findings.json()["items"]
                assert len(items) == big_findings
                assert all(
                    (f["severity"] is not None) == (f["kind"] == "non_compliance") for f in items
                )
                suppliers = await http.get("/v1/suppliers?limit=200", headers=headers)
                assert suppliers.status_code == 200, suppliers.text
                assert len(suppliers.json()["items"]) == big_links
        finally:
            await database.dispose()
    finally:
        await drop_database(settings, name)
