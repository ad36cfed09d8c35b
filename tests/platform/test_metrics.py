"""Prometheus metrics: routes by template, no tenant in any label, the pools, job outcomes, webhook
outcomes, and the worker's own metrics port."""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import json
import re
import socket
import time
import uuid
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta

import httpx
from prometheus_client.parser import text_string_to_metric_families

from wg_api import cli
from wg_api.platform import jobs as jobs_module
from wg_api.platform.database import make_engine
from wg_api.platform.jobs import JobContext, JobRegistry, JobRunner, enqueue
from wg_api.platform.observability import (
    WEBHOOK_DELIVERIES,
    WEBHOOK_OUTCOMES,
    configure_logging,
    count_job,
)
from wg_api.settings import PROJECT_ROOT, Settings

UUID_TEXT = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")


def samples(text: str, name: str) -> dict[tuple[tuple[str, str], ...], float]:
    """Every sample called `name`, keyed by its sorted labels."""
    found: dict[tuple[tuple[str, str], ...], float] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == name:
                found[tuple(sorted(sample.labels.items()))] = sample.value
    return found


def value(text: str, name: str, **labels: str) -> float:
    return samples(text, name).get(tuple(sorted(labels.items())), 0.0)


async def scrape(client: httpx.AsyncClient) -> str:
    response = await client.get("/metrics")
    assert response.status_code == 200
    return response.text


async def poll(check: Callable[[], Awaitable[bool]], seconds: float = 10.0) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if await check():
            return True
        await asyncio.sleep(0.05)
    return False


async def test_requests_are_counted_per_route_template_with_status_and_latency(client, make_tenant):
    tenant = await make_tenant()
    headers = await tenant.headers()
    missing = uuid.uuid4()
    before = await scrape(client)
    for _ in range(2):
        response = await client.get(f"/v1/findings/{missing}", headers=headers)
        assert response.status_code == 404
    assert (await client.get("/v1/findings", headers=headers)).status_code == 200
    text = await scrape(client)

    routes = {dict(labels)["route"] for labels in samples(text, "wg_http_requests_total")}
    [finding_route] = [r for r in routes if re.fullmatch(r"/v1/findings/\{[^/]+\}", r)]
    assert str(missing) not in text
    count = value(text, "wg_http_requests_total", method="GET", route=finding_route, status="404")
    assert (
        count
        == value(before, "wg_http_requests_total", method="GET", route=finding_route, status="404")
        + 2
    )
    latency = value(
        text, "wg_http_request_duration_seconds_count", method="GET", route=finding_route
    )
    assert latency >= 2
    assert value(text, "wg_http_requests_total", method="GET", route="/v1/findings", status="200")
    assert "wg_http_requests_in_flight" in text


async def test_no_tenant_id_slug_or_client_in_any_label(client, make_tenant):
    tenant = await make_tenant()
    headers = await tenant.headers()
    await client.get("/v1/me", headers=headers)
    await client.get(f"/v1/tenants/{tenant.id}", headers=headers)
    await client.get(f"/v1/{tenant.slug}", headers=headers)
    await client.get("/v1/findings", params={"q": tenant.slug}, headers=headers)
    text = await scrape(client)
    for secret in (str(tenant.id), tenant.slug, tenant.client_id, tenant.name):
        assert secret not in text
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            for label_value in sample.labels.values():
                assert not UUID_TEXT.search(label_value), (sample.name, sample.labels)


async def test_pool_gauges_report_in_use_idle_and_waiting(client, database):
    text = await scrape(client)
    for state in ("in_use", "idle", "waiting"):
        assert ("engine", "app") in {
            pair
            for labels in samples(text, "wg_db_pool_connections")
            if ("state", state) in labels
            for pair in labels
        }

    engine = make_engine(database.admin_url, pool_size=1, max_overflow=0, metrics_name="probe")
    try:

        async def probe(state: str) -> float:
            return value(
                await scrape(client), "wg_db_pool_connections", engine="probe", state=state
            )

        async with engine.connect() as held:
            await held.exec_driver_sql("SELECT 1")
            assert await probe("in_use") == 1
            assert await probe("waiting") == 0

            async def second() -> None:
                async with engine.connect() as conn:
                    await conn.exec_driver_sql("SELECT 1")

            waiter = asyncio.create_task(second())

            async def one_waits() -> bool:
                return await probe("waiting") == 1

            assert await poll(one_waits)
        await asyncio.wait_for(waiter, 10)
        assert await probe("waiting") == 0
        assert await probe("in_use") == 0
        assert await probe("idle") == 1
    finally:
        await engine.dispose()


async def test_job_outcomes_are_counted(client, database, settings):
    name = f"test-metrics-{uuid.uuid4().hex[:8]}"
    jobs_registry = JobRegistry()

    @jobs_registry.job(name, every=timedelta(hours=1), max_attempts=1)
    async def flaky(job: JobContext) -> None:
        if job.fire_time.year == 2001:
            raise RuntimeError("boom")

    runner = JobRunner(database, settings, jobs_registry, "metrics-worker")
    async with database.system_transaction() as session:
        await enqueue(session, name, datetime(2000, 1, 1, tzinfo=UTC))
        await enqueue(session, name, datetime(2001, 1, 1, tzinfo=UTC))
    assert await runner.run_one()
    assert await runner.run_one()
    text = await scrape(client)
    assert value(text, "wg_job_runs_total", job_name=name, outcome="done") == 1
    assert value(text, "wg_job_runs_total", job_name=name, outcome="failed") == 1
    assert value(text, "wg_job_duration_seconds_count", job_name=name) == 1


async def test_webhook_outcomes_are_a_counter_other_code_increments(client):
    before = await scrape(client)
    for outcome in WEBHOOK_OUTCOMES:
        assert (("outcome", outcome),) in samples(before, "wg_webhook_deliveries_total")
    WEBHOOK_DELIVERIES.labels("delivered").inc()
    WEBHOOK_DELIVERIES.labels("retry").inc(2)
    after = await scrape(client)
    for outcome, added in (("delivered", 1), ("retry", 2), ("failed", 0)):
        assert (
            value(after, "wg_webhook_deliveries_total", outcome=outcome)
            == value(before, "wg_webhook_deliveries_total", outcome=outcome) + added
        )


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def test_the_worker_serves_its_metrics_on_its_port(settings, monkeypatch):
    """`wg-api worker` with WG_WORKER_METRICS_PORT: the port answers while the worker runs, with
    the job counters (counted by the runner itself, whatever the worker logs)."""
    port = free_port()
    name = f"test-port-{uuid.uuid4().hex[:8]}"
    scraped: list[str] = []

    async def fake_run_worker(worker_settings: Settings) -> None:
        count_job(name, "done", 0.012)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                async with httpx.AsyncClient() as http:
                    scraped.append((await http.get(f"http://127.0.0.1:{port}/metrics")).text)
                return
            except httpx.TransportError:
                await asyncio.sleep(0.05)

    monkeypatch.setattr(jobs_module, "run_worker", fake_run_worker)
    worker_settings = dataclasses.replace(settings, worker_metrics_port=port, log_level="WARNING")
    try:
        assert cli.cmd_worker(argparse.Namespace(), worker_settings) == 0
    finally:
        configure_logging(settings.log_level)
    [text] = scraped
    assert value(text, "wg_job_runs_total", job_name=name, outcome="done") == 1
    assert value(text, "wg_job_duration_seconds_sum", job_name=name) == 0.012
    assert "wg_db_pool_connections" in text


async def test_the_grafana_dashboard_reads_only_metrics_and_labels_we_export(client):
    """Every series and every `by (...)` label of deploy/grafana/wg-api.json exists."""
    WEBHOOK_DELIVERIES.labels("delivered")
    text = await scrape(client)
    exported: dict[str, set[str]] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            exported.setdefault(sample.name, set()).update(sample.labels)
    # Series the scrape shows only once something happened; their label names are fixed.
    exported.setdefault("wg_job_runs_total", set()).update({"job_name", "outcome"})
    for suffix in ("_bucket", "_count", "_sum"):
        exported.setdefault(f"wg_job_duration_seconds{suffix}", set()).update({"job_name"})
    exported["wg_job_duration_seconds_bucket"].add("le")
    dashboard = json.loads((PROJECT_ROOT / "deploy" / "grafana" / "wg-api.json").read_text())
    expressions = [t["expr"] for p in dashboard["panels"] for t in p["targets"]]
    assert expressions
    target_labels = {"job", "instance"}
    for expression in expressions:
        names = re.findall(r"\b(wg_[a-z_]+)", expression)
        assert names, expression
        for name in names:
            assert name in exported, (name, expression)
        for group in re.findall(r"by \(([^)]*)\)", expression):
            for label in (part.strip() for part in group.split(",")):
                assert any(label in exported[n] for n in names) or label in target_labels, (
                    label,
                    expression,
                )
