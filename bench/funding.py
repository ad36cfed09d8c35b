"""Funding under load: the statement of an initiative with 10,000 ledger bookings (JSON time,
CSV memory), and pledges committed on 32 connections at once (no funding event lost or doubled).

    python -m bench.funding [--bookings 10000] [--connections 32] [--rounds 10] [--repeats 20]
        [--database wg_bench_funding]

Builds its own database (`wg_bench_funding`, dropped at the end) on the embedded PostgreSQL or
DATABASE_URL's server, migrates it, and drives the real app in-process over ASGI (no sockets), so
the times include routing, auth, the tenant-bound transaction and JSON encoding. Prints figures.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import gc
import statistics
import time
import tracemalloc
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx
import sqlalchemy as sa
from sqlalchemy.engine import URL

from wg_api.app import asgi_app
from wg_api.funding import routes, service
from wg_api.identity import service as identity
from wg_api.platform.database import Database, make_engine, resolve_admin_url
from wg_api.platform.migrate import migrate
from wg_api.settings import Settings

DATABASE = "wg_bench_funding"
STATEMENT_LIMIT_MS = 100
ANALYZED = ("ledger_bookings", "ledger_entries", "payments", "expenses", "initiatives", "pledges")

# Bookings of one initiative: payments from four funders spread over 24 months, and expenses.
BOOKINGS = """
    WITH spec AS (
        SELECT n, gen_random_uuid() AS booking, gen_random_uuid() AS record,
               timestamptz '2025-01-01 00:00:00Z' + (n * interval '1 hour') AS at,
               (n % 5) < 3 AS is_payment, (n % 4) + 1 AS funder,
               1000 + (n * 7919) % 90000 AS amount
        FROM generate_series(1, :count) n
    ),
    pay AS (
        INSERT INTO payments (id, tenant_id, working_group_id, initiative_id, pledge_id, amount,
                              currency, amount_in_initiative_currency, received_on)
        SELECT s.record, p.tenant_id, p.working_group_id, p.initiative_id, p.id, 1, 'HKD', 1,
               s.at::date
        FROM spec s JOIN pledges p ON p.initiative_id = :initiative
         AND p.tenant_id = (CAST(:funders AS uuid[]))[s.funder]
        WHERE s.is_payment
        RETURNING id
    ),
    spend AS (
        INSERT INTO expenses (id, working_group_id, initiative_id, description, category, amount,
                              currency, amount_in_initiative_currency, incurred_on)
        SELECT s.record, i.working_group_id, i.id, 'Bench expense ' || s.n, 'bench', s.amount,
               'HKD', s.amount, s.at::date
        FROM spec s, initiatives i WHERE i.id = :initiative AND NOT s.is_payment
        RETURNING id
    ),
    bookings AS (
        INSERT INTO ledger_bookings (id, working_group_id, initiative_id, tenant_id, kind,
                                     description, booked_at, payment_id, expense_id)
        SELECT s.booking, i.working_group_id, i.id,
               CASE WHEN s.is_payment THEN (CAST(:funders AS uuid[]))[s.funder] END,
               CASE WHEN s.is_payment THEN 'payment' ELSE 'expense' END,
               CASE WHEN s.is_payment THEN 'Payment ' ELSE 'Expense ' END || s.n, s.at,
               CASE WHEN s.is_payment THEN s.record END,
               CASE WHEN s.is_payment THEN NULL ELSE s.record END
        FROM spec s, initiatives i, (SELECT count(*) FROM pay) p, (SELECT count(*) FROM spend) e
        WHERE i.id = :initiative
        RETURNING id
    )
    INSERT INTO ledger_entries (booking_id, working_group_id, initiative_id, tenant_id, account,
                                debit, credit, currency)
    SELECT s.booking, i.working_group_id, i.id,
           CASE WHEN s.is_payment THEN (CAST(:funders AS uuid[]))[s.funder] END,
           side.account, side.debit, side.credit, 'HKD'
    FROM spec s, initiatives i, (SELECT count(*) FROM bookings) b,
         LATERAL (VALUES
            (CASE WHEN s.is_payment THEN 'cash' ELSE 'expenses' END, s.amount, 0::bigint),
            (CASE WHEN s.is_payment THEN 'contributions' ELSE 'cash' END, 0::bigint, s.amount)
         ) AS side (account, debit, credit)
    WHERE i.id = :initiative
"""


@dataclasses.dataclass
class Actor:
    id: uuid.UUID
    headers: dict[str, str]


async def _tenant(database: Database, http: httpx.AsyncClient, slug: str) -> Actor:
    async with database.system_transaction() as session:
        tenant = await identity.create_tenant(
            session, slug=slug, name=f"Bench {slug}", kind="brand", timezone="Asia/Hong_Kong"
        )
    # The client as the tenant makes it: the system role has no privilege on tenant tables.
    async with database.transaction(tenant["id"]) as session:
        client = await identity.create_client(
            session, tenant_id=tenant["id"], name="bench", role="admin", scopes=None
        )
    response = await http.post(
        "/oauth/token",
        data={"grant_type": "client_credentials"},
        auth=(client.client_id, client.client_secret),
    )
    response.raise_for_status()
    return Actor(tenant["id"], {"Authorization": f"Bearer {response.json()['access_token']}"})


async def _call(http: httpx.AsyncClient, method: str, path: str, actor: Actor, **kw: Any) -> Any:
    response = await http.request(method, path, headers=actor.headers, **kw)
    if response.status_code >= 400:
        raise RuntimeError(f"{method} {path}: {response.status_code} {response.text}")
    return response.json()


async def _group(
    database: Database, http: httpx.AsyncClient, brands: int
) -> tuple[Actor, list[Actor], str]:
    run = uuid.uuid4().hex[:6]
    facilitator = await _tenant(database, http, f"bench-fac-{run}")
    group = await _call(http, "POST", "/v1/working-groups", facilitator, json={"name": "Bench"})
    members = []
    for n in range(brands):
        brand = await _tenant(database, http, f"bench-{run}-{n}")
        invitation = await _call(
            http,
            "POST",
            f"/v1/working-groups/{group['id']}/invitations",
            facilitator,
            json={"tenant_slug": f"bench-{run}-{n}", "role": "member"},
        )
        await _call(http, "POST", f"/v1/invitations/{invitation['id']}/accept", brand)
        members.append(brand)
    return facilitator, members, group["id"]


async def _initiative(
    http: httpx.AsyncClient, facilitator: Actor, group_id: str, target: int
) -> dict[str, Any]:
    made = await _call(
        http,
        "POST",
        f"/v1/working-groups/{group_id}/initiatives",
        facilitator,
        json={
            "title": "Bench initiative",
            "currency": "HKD",
            "budget": {"amount": target, "currency": "HKD"},
            "starts_on": "2025-01-01",
            "ends_on": "2027-12-31",
        },
    )
    opened: dict[str, Any] = await _call(
        http, "PATCH", f"/v1/initiatives/{made['id']}", facilitator, json={"status": "open"}
    )
    return opened


def _quantile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


async def statement_figures(
    database: Database,
    http: httpx.AsyncClient,
    facilitator: Actor,
    brands: list[Actor],
    group_id: str,
    bookings: int,
    repeats: int,
) -> dict[str, Any]:
    initiative = await _initiative(http, facilitator, group_id, 10**12)
    funders = brands[:4]
    for brand in funders:
        made = await _call(
            http,
            "POST",
            f"/v1/initiatives/{initiative['id']}/pledges",
            brand,
            json={"amount": {"amount": 10**13, "currency": "HKD"}},
        )
        await _call(http, "POST", f"/v1/pledges/{made['id']}/commit", brand)
    engine = make_engine(database.admin_url, pool_size=1)
    try:
        async with engine.begin() as conn:
            await conn.execute(
                sa.text(BOOKINGS),
                {
                    "count": bookings,
                    "initiative": uuid.UUID(initiative["id"]),
                    "funders": [b.id for b in funders],
                },
            )
            for table in ANALYZED:
                await conn.exec_driver_sql(f"ANALYZE {table}")
    finally:
        await engine.dispose()
    path = f"/v1/initiatives/{initiative['id']}/statement"
    figures: dict[str, Any] = {"bookings": bookings}
    for label, actor in (("facilitator", facilitator), ("member (totals_only)", brands[5])):
        times = []
        entries = 0
        for _ in range(repeats + 2):
            started = time.perf_counter()
            response = await http.get(path, headers=actor.headers)
            elapsed = (time.perf_counter() - started) * 1000
            response.raise_for_status()
            entries = len(response.json()["entries"])
            times.append(elapsed)
        times = times[2:]  # the first two warm caches and plans
        figures[label] = {
            "entries": entries,
            "median_ms": round(statistics.median(times), 1),
            "p90_ms": round(_quantile(times, 0.9), 1),
        }
    figures["csv_peak_kib"] = await _csv_peak(database, facilitator, initiative["id"])
    return figures


async def _csv_peak(database: Database, facilitator: Actor, initiative_id: str) -> dict[str, Any]:
    """Peak Python memory while streaming the CSV, against the size of the CSV itself."""
    async with database.transaction(facilitator.id) as session:
        source = await service.statement_source(session, facilitator.id, uuid.UUID(initiative_id))
        gc.collect()
        tracemalloc.start()
        size = 0
        async for chunk in routes._csv(session, source):
            size += len(chunk)
        _, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
    return {"csv_kib": size // 1024, "peak_kib": peak // 1024}


async def commit_figures(
    database: Database,
    http: httpx.AsyncClient,
    facilitator: Actor,
    brands: list[Actor],
    group_id: str,
    rounds: int,
) -> dict[str, Any]:
    """Each round: an initiative funded at the 16th of 32 commits fired at once."""
    latencies: list[float] = []
    started = time.perf_counter()
    initiatives = []
    retries = 0
    for _ in range(rounds):
        initiative = await _initiative(http, facilitator, group_id, len(brands) // 2 * 1000)
        initiatives.append(initiative["id"])
        pledges = [
            await _call(
                http,
                "POST",
                f"/v1/initiatives/{initiative['id']}/pledges",
                brand,
                json={"amount": {"amount": 1000, "currency": "HKD"}},
            )
            for brand in brands
        ]

        async def commit(brand: Actor, pledge_id: str) -> None:
            nonlocal retries
            while True:
                began = time.perf_counter()
                response = await http.post(f"/v1/pledges/{pledge_id}/commit", headers=brand.headers)
                latencies.append((time.perf_counter() - began) * 1000)
                if response.status_code == 503:  # try again, as a client would
                    retries += 1
                    await asyncio.sleep(0.05)
                    continue
                if response.status_code != 200:
                    raise RuntimeError(response.text)
                return

        await asyncio.gather(*(commit(b, p["id"]) for b, p in zip(brands, pledges, strict=True)))
    elapsed = time.perf_counter() - started
    engine = make_engine(database.admin_url, pool_size=1)
    try:
        async with engine.connect() as conn:
            funded = (
                await conn.execute(
                    sa.text(
                        "SELECT data->'initiative'->>'id' AS id, count(*) AS n FROM events "
                        "WHERE type = 'initiative.funded' AND tenant_id = :tenant GROUP BY 1"
                    ),
                    {"tenant": facilitator.id},
                )
            ).all()
            committed = await conn.scalar(
                sa.text(
                    "SELECT count(*) FROM events WHERE type = 'pledge.committed' "
                    "AND tenant_id = :tenant AND data->>'initiative_id' = ANY(:ids)"
                ),
                {"tenant": facilitator.id, "ids": initiatives},
            )
            statuses = (
                await conn.execute(
                    sa.text(
                        "SELECT status, count(*) FROM initiatives WHERE id = ANY(:ids) GROUP BY 1"
                    ),
                    {"ids": [uuid.UUID(i) for i in initiatives]},
                )
            ).all()
    finally:
        await engine.dispose()
    per_initiative = {row.id: row.n for row in funded}
    return {
        "connections": len(brands),
        "commits": len(brands) * rounds,
        "commits_per_s": round(len(brands) * rounds / elapsed, 1),
        "median_ms": round(statistics.median(latencies), 1),
        "p99_ms": round(_quantile(latencies, 0.99), 1),
        "retried_503": retries,
        "initiatives_funded": dict((row[0], row[1]) for row in statuses),
        "funded_events_lost": sum(1 for i in initiatives if per_initiative.get(i, 0) == 0),
        "funded_events_doubled": sum(1 for n in per_initiative.values() if n > 1),
        "pledge_committed_events": committed,
    }


@asynccontextmanager
async def _app(settings: Settings, database: Database) -> AsyncIterator[httpx.AsyncClient]:
    """The app with its lifespan in this event loop (the pool's connections belong to it)."""
    app = asgi_app(settings, database)
    inbox: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
    outbox: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
    lifespan = asyncio.create_task(
        app({"type": "lifespan", "asgi": {"version": "3.0"}, "state": {}}, inbox.get, outbox.put)
    )
    await inbox.put({"type": "lifespan.startup"})
    started = await outbox.get()
    if started["type"] != "lifespan.startup.complete":
        raise RuntimeError(f"the app did not start: {started}")
    try:
        async with httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="http://bench.local"
        ) as http:
            yield http
    finally:
        await inbox.put({"type": "lifespan.shutdown"})
        await outbox.get()
        await lifespan


async def main(
    bookings: int, connections: int, rounds: int, repeats: int, name: str = DATABASE
) -> None:
    settings = dataclasses.replace(
        Settings.from_env(),
        rate_limit_per_minute=1_000_000,
        token_rate_limit_per_minute=1_000_000,
        db_pool_size=connections + 4,
        log_level="WARNING",
    )
    admin_url: URL = resolve_admin_url(settings).set(database=name)
    await _drop(admin_url)
    await migrate(admin_url, settings)
    database = Database.connect(admin_url, settings)
    try:
        async with _app(settings, database) as http:
            facilitator, brands, group_id = await _group(database, http, connections)
            statement = await statement_figures(
                database, http, facilitator, brands, group_id, bookings, repeats
            )
            commits = await commit_figures(database, http, facilitator, brands, group_id, rounds)
    finally:
        await database.dispose()
        await _drop(admin_url)
    print(f"statement of {statement['bookings']} bookings (limit {STATEMENT_LIMIT_MS} ms, JSON):")
    for label in ("facilitator", "member (totals_only)"):
        line = statement[label]
        verdict = "ok" if line["median_ms"] < STATEMENT_LIMIT_MS else "OVER"
        print(
            f"  {label:22} {line['entries']:>6} entries  median {line['median_ms']:>6} ms  "
            f"p90 {line['p90_ms']:>6} ms  {verdict}"
        )
    csv = statement["csv_peak_kib"]
    print(f"  CSV streamed: {csv['csv_kib']} KiB written, peak Python memory {csv['peak_kib']} KiB")
    print(f"pledges committed on {commits['connections']} connections at once:")
    for key, value in commits.items():
        print(f"  {key}: {value}")


async def _drop(admin_url: URL) -> None:
    engine = make_engine(admin_url.set(database="postgres"), pool_size=1)
    try:
        async with engine.connect() as conn:
            conn = await conn.execution_options(isolation_level="AUTOCOMMIT")
            await conn.exec_driver_sql(
                f'DROP DATABASE IF EXISTS "{admin_url.database}" WITH (FORCE)'
            )
    finally:
        await engine.dispose()


MIN_CONNECTIONS = 6


def run() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bookings", type=int, default=10_000)
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--rounds", type=int, default=10)
    parser.add_argument("--repeats", type=int, default=20)
    parser.add_argument("--database", default=DATABASE, help="the database it makes and drops")
    args = parser.parse_args()
    if args.connections < MIN_CONNECTIONS:
        # One brand per connection, and the statement is read as the sixth (a plain member).
        parser.error(f"--connections must be at least {MIN_CONNECTIONS}")
    asyncio.run(main(args.bookings, args.connections, args.rounds, args.repeats, args.database))


if __name__ == "__main__":
    run()
