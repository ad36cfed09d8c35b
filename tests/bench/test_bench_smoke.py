"""The bench data generator on a tiny set: right counts, idempotent, and the real API serves it;
the ceiling and the runner's own insights timing answer what the API answers."""

from __future__ import annotations

import asyncio
import dataclasses
import os
import re
import subprocess
import sys
import uuid

import asyncpg
import pytest

from bench import ceiling
from bench import scrub as scrub_bench
from bench.generate import (
    BIG_TENANT_SLUG,
    FEW_CONTRIBUTORS,
    Spec,
    bench_admin_url,
    bench_clients,
    connect_kwargs,
    drop_database,
    generate,
    libpq_url,
)
from bench.run import ENDPOINTS, DatabaseCpu, dataset_context, time_insights
from tests.conftest import serve_in_loop
from tests.sharing.conftest import assert_tallies_exact
from wg_api.app import asgi_app
from wg_api.platform.database import Database

SPEC = Spec(tenants=8, suppliers=150, findings=400, groups=2, shared_findings=600)


def quiet(*_: object) -> None:
    return None


async def test_generator_makes_a_consistent_set_that_the_api_serves(settings):
    name = f"wg_bench_smoke_{uuid.uuid4().hex[:8]}"
    try:
        first = await generate(settings, SPEC, database=name, log=quiet)
        assert not first.skipped
        assert first.counts["tenants"] == 8
        assert first.counts["suppliers"] == 150
        assert first.counts["findings"] == 400
        assert first.counts["working_groups"] == 2
        assert first.counts["shared_findings"] == 600
        assert first.counts["shares"] > 0

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
            # Shared findings: by active sharing members, on their own linked suppliers, in
            # the supplier's country, as the anonymiser writes them.
            shared_wrong = await conn.fetchval(
                "SELECT count(*) FROM shared_findings f "
                "JOIN suppliers s ON s.id = f.supplier_id "
                "LEFT JOIN working_group_members m ON m.group_id = f.group_id "
                "AND m.tenant_id = f.contributor AND m.status = 'active' "
                "AND m.role IN ('member', 'facilitator') "
                "LEFT JOIN supplier_links l ON l.tenant_id = f.contributor "
                "AND l.supplier_id = f.supplier_id "
                "WHERE m.tenant_id IS NULL OR l.tenant_id IS NULL OR f.country <> s.country "
                "OR f.observed_period !~ '^20[0-9]{2}-Q[1-4]$' "
                "OR (f.severity IS NULL) <> (f.kind <> 'non_compliance') "
                "OR (f.child_labour_case IS NOT NULL AND f.child_labour_case ? 'remediation')"
            )
            groups_shared = await conn.fetchval(
                "SELECT count(DISTINCT group_id) FROM shared_findings"
            )
            # The big brand's shared findings are its findings, each with its active share.
            big_unshared = await conn.fetchval(
                "SELECT count(*) FROM shared_findings f JOIN tenants t ON t.id = f.contributor "
                "LEFT JOIN shares sh ON sh.shared_finding_id = f.id AND sh.tenant_id = t.id "
                "AND sh.status = 'active' "
                "LEFT JOIN findings o ON o.id = sh.finding_id AND o.tenant_id = t.id "
                "WHERE t.slug = $1 AND o.id IS NULL",
                BIG_TENANT_SLUG,
            )
            # The generator counts the insight tallies around the trigger: a recount agrees.
            for (group_id,) in await conn.fetch("SELECT DISTINCT group_id FROM shared_findings"):
                await assert_tallies_exact(conn, str(group_id))
            few = await conn.fetchval(
                "SELECT max(n) FROM (SELECT count(DISTINCT contributor) AS n "
                "FROM shared_findings WHERE country = ANY ($1::text[]) GROUP BY country) c",
                list(FEW_CONTRIBUTORS),
            )
        finally:
            await conn.close()
        assert unlinked == 0
        assert big_findings == round(300 * SPEC.big_share)
        assert shared_wrong == 0
        assert groups_shared == 1
        assert big_unshared == 0
        assert few is None or few <= max(FEW_CONTRIBUTORS.values())

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

                # The runner's group: the big brand, a member, reads the group's shared
                # findings (its own among them) and insights, some cells published.
                context = await dataset_context(admin_url)
                group = f"/v1/working-groups/{context['group_id']}"
                assert int(context["group_shared_findings"]) == 600
                shared = await http.get(f"{group}/shared-findings?limit=200", headers=headers)
                assert shared.status_code == 200, shared.text
                assert len(shared.json()["items"]) == 200
                own = await http.get(
                    f"{group}/shared-findings?limit=200&area=health_and_safety", headers=headers
                )
                assert own.status_code == 200, own.text
                assert any(item["is_own"] for item in own.json()["items"])
                query = "group_by=area,country,period"
                insights = await http.get(f"{group}/insights?{query}", headers=headers)
                assert insights.status_code == 200, insights.text
                answer = insights.json()
                assert answer["cells"]
                assert answer["suppressed_cells"]

                # The read lines' resources exist and are the caller's to read.
                reads = {
                    e.name: e
                    for e in ENDPOINTS
                    if e.name in ("finding", "supplier", "shared-finding")
                }
                assert len(reads) == 3
                read_ids = {}
                for line, endpoint in reads.items():
                    one = await http.get(endpoint.path.format(**context), headers=headers)
                    assert one.status_code == 200, (line, one.text)
                    read_ids[line] = one.json()["id"]

                # The runner's single-query timing calls what the endpoint calls.
                (timing,) = await time_insights(admin_url, settings, context, [query], runs=1)
                assert (timing.cells, timing.suppressed) == (
                    len(answer["cells"]),
                    answer["suppressed_cells"],
                )
        finally:
            await database.dispose()

        # The ceiling answers the same rows for the same requests.
        bare = ceiling.create_app(dataclasses.replace(settings, database_url=libpq_url(admin_url)))
        async with serve_in_loop(bare) as http:
            tenant = f"tenant_id={context['tenant_id']}&group_id={context['group_id']}"
            page = await http.get(f"/shared-findings?{tenant}")
            assert page.status_code == 200, page.text
            assert [item["id"] for item in page.json()["items"]] == [
                item["id"] for item in shared.json()["items"][:50]
            ]
            for line, endpoint in reads.items():
                assert endpoint.ceiling is not None
                one = await http.get(endpoint.ceiling.format(**context))
                assert one.status_code == 200, (line, one.text)
                assert one.json()["id"] == read_ids[line], line
            cells = await http.get(f"/insights?{tenant}&{query}")
            assert cells.status_code == 200, cells.text
            assert len(cells.json()["cells"]) == len(answer["cells"])
            assert cells.json()["suppressed_cells"] == answer["suppressed_cells"]

        # The in-process profile runs against the set and prints its figures.
        profiled = await asyncio.to_thread(
            subprocess.run,
            [
                *(sys.executable, "-m", "bench.inprocess", "/v1/me", "/v1/findings"),
                *("--requests", "20", "--profile", "--top", "5", "--database", name),
            ],
            env={**os.environ, "DATABASE_URL": libpq_url(admin_url)},
            capture_output=True,
            text=True,
            timeout=180,
            check=False,
        )
        assert profiled.returncode == 0, profiled.stderr[-3000:]
        assert re.search(r"^/v1/me: [\d,]+ µs CPU per request", profiled.stdout, re.M)
        assert re.search(r"^/v1/findings: [\d,]+ µs CPU per request", profiled.stdout, re.M)
        assert profiled.stdout.count("profiled:") == 2
    finally:
        await drop_database(settings, name)


def test_the_scrub_bench_prints_its_figures_beside_their_targets(capsys):
    scrub_bench.main(["--rounds", "1"])
    out = capsys.readouterr().out
    assert "CPU ms/KB" in out
    assert "< 2.0" in out
    assert "corpus targets: met" in out
    for kind in ("email", "phone", "id_number", "person", "organisation"):
        assert f"\n{kind} " in out


def test_turns_combine_into_one_load_weighted_by_requests():
    """`make bench` measures each endpoint in turns alternating with its ceiling: the turns
    add up (requests, time, errors, CPU) and their percentiles weigh by requests."""
    from bench.run import Load, combined, parse_args

    fast = Load(requests=300, seconds=1.0, p50_ms=10, p99_ms=20, errors=1, cpu_us=100, rss_mb=90)
    slow = Load(requests=100, seconds=1.0, p50_ms=30, p99_ms=60, errors=0, cpu_us=300, rss_mb=95)
    both = combined([fast, slow])
    assert (both.requests, both.seconds, both.errors, both.rss_mb) == (400, 2.0, 1, 95)
    assert both.rps == 200
    assert (both.p50_ms, both.p99_ms, both.cpu_us) == (15, 30, 150)
    assert parse_args([]).rounds == 4
    assert parse_args(["--quick"]).rounds == 2
    with pytest.raises(SystemExit):
        parse_args(["--duration", "3", "--rounds", "4"])  # turns under a second


def test_the_database_cpu_column_counts_the_servers_work(admin_url):
    """`make bench` bills PostgreSQL's CPU per request beside the server's: the processes it
    reads are the database server's, so a query's work shows in them."""
    server = admin_url.set(database="postgres")
    database = DatabaseCpu.of(server)
    if database.postmaster is None:
        pytest.skip("the database runs on another machine")

    async def busy() -> float:
        """The database's CPU seconds spent on a query, read while its backend still lives."""
        conn = await asyncpg.connect(**connect_kwargs(server))
        try:
            before = database.cpu_seconds()
            await conn.fetchval("SELECT count(*) FROM generate_series(1, 3000000)")
            return database.cpu_seconds() - before
        finally:
            await conn.close()

    assert asyncio.run(busy()) > 0.05
