"""The bench runner: real endpoints beside their ceiling, under the same load, in one run.

    make bench                          # generate the data set if needed, then every endpoint
    make bench BENCH_ARGS=--quick       # 2 s per endpoint: a smoke run
    uv run python -m bench.run --only findings --duration 20

It generates the data set if it is missing (bench/generate.py), starts `wg-api serve` and the
ceiling app (bench/ceiling.py) on free ports of 127.0.0.1 against the bench database, drives each
endpoint with wrk from a separate process (32 connections for a fixed time, after a warm-up), and
prints throughput, p50, p99, errors and the server's resident memory, with the ceiling's figures
and the ratio beside them. An endpoint that answers 404 (not built yet) is skipped with a note.
The figures also go to bench/results/<time>.json.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import functools
import json
import math
import os
import platform
import re
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.parse
import uuid
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import psutil

from bench.ceiling import INSIGHTS_SQL
from bench.generate import (
    BENCH_DATABASE,
    BIG_TENANT_SLUG,
    Spec,
    bench_admin_url,
    bench_clients,
    connect_kwargs,
    generate,
    libpq_url,
)
from wg_api.cli import SERVERS, default_workers
from wg_api.settings import PROJECT_ROOT, Settings
from wg_api.sharing.service import ROUNDING_BASE

RESULTS_DIR = PROJECT_ROOT / "bench" / "results"
HOST = "127.0.0.1"
# Targets of the design brief ("Performance targets") and of issue 15 (serving on every core):
# list and read endpoints at least 80 % of their ceiling's throughput with a p99 at most 1.5
# times the ceiling's, /v1/me at least 60 %.
TARGET_RATIO = 0.80
TARGET_P99_MS = 50.0
TARGET_P99_FACTOR = 1.5
TARGET_RSS_MB = 250.0
EXCEPTION_LINE = re.compile(r"^[\w.]+(Error|Exception): ")


@dataclass(frozen=True)
class Endpoint:
    """One line of the table. Paths may name `{tenant_id}`, `{group_id}`, `{finding_id}`,
    `{supplier_id}` and `{shared_id}` of the data set."""

    name: str
    path: str
    ceiling: str | None
    auth: bool = True
    # The design brief's throughput and p99 targets apply to list and read endpoints.
    targeted: bool = True
    # Concurrent connections if not the run's (--connections).
    connections: int | None = None
    target_ratio: float = TARGET_RATIO


ENDPOINTS: tuple[Endpoint, ...] = (
    Endpoint("healthz", "/healthz", "/healthz", auth=False, targeted=False),
    Endpoint("me", "/v1/me", "/me?tenant_id={tenant_id}", target_ratio=0.60),
    Endpoint("findings", "/v1/findings", "/findings?tenant_id={tenant_id}"),
    Endpoint(
        "findings?area&status",
        "/v1/findings?area=health_and_safety&status=open",
        "/findings?tenant_id={tenant_id}&area=health_and_safety&status=open",
    ),
    Endpoint("suppliers", "/v1/suppliers", "/suppliers?tenant_id={tenant_id}"),
    # Reads of one resource: the tenant's newest finding, its first linked supplier, and the
    # first shared finding of the group's list.
    Endpoint(
        "finding",
        "/v1/findings/{finding_id}",
        "/finding?tenant_id={tenant_id}&id={finding_id}",
    ),
    Endpoint(
        "supplier",
        "/v1/suppliers/{supplier_id}",
        "/supplier?tenant_id={tenant_id}&id={supplier_id}",
    ),
    Endpoint(
        "shared-findings",
        "/v1/working-groups/{group_id}/shared-findings",
        "/shared-findings?tenant_id={tenant_id}&group_id={group_id}",
    ),
    Endpoint(
        "shared-findings?area",
        "/v1/working-groups/{group_id}/shared-findings?area=child_labour",
        "/shared-findings?tenant_id={tenant_id}&group_id={group_id}&area=child_labour",
    ),
    Endpoint(
        "shared-finding",
        "/v1/working-groups/{group_id}/shared-findings/{shared_id}",
        "/shared-finding?tenant_id={tenant_id}&group_id={group_id}&id={shared_id}",
    ),
    # Two filters whose rows are rare and spread over the list's order (0.04 % of the group).
    Endpoint(
        "shared-findings?area&country",
        "/v1/working-groups/{group_id}/shared-findings?area=bonded_labour&country=TR",
        "/shared-findings?tenant_id={tenant_id}&group_id={group_id}&area=bonded_labour&country=TR",
    ),
    # The insights query has its own target (one query under 250 ms, also timed apart below the
    # table), so one connection: p50 is what one member waits for an answer. 32 connections of
    # a query that takes both cores for half a second only measure the queue.
    Endpoint(
        "insights",
        "/v1/working-groups/{group_id}/insights?group_by=area,country,period",
        "/insights?tenant_id={tenant_id}&group_id={group_id}&group_by=area,country,period",
        targeted=False,
        connections=1,
    ),
    Endpoint(
        "insights?area",
        "/v1/working-groups/{group_id}/insights?group_by=country,period&area=child_labour",
        "/insights?tenant_id={tenant_id}&group_id={group_id}&group_by=country,period"
        "&area=child_labour",
        targeted=False,
        connections=1,
    ),
)
# Groupings timed as single queries besides the insights lines': the coarsest and the finest.
EXTRA_INSIGHTS = (
    "group_by=",
    "group_by=area",
    "group_by=period,kind",
    "group_by=area,country,period,severity,kind",
)
TARGET_INSIGHTS_MS = 250.0
INSIGHT_FILTERS = ("supplier_id", "area", "severity", "country", "period", "kind")


@dataclass
class Load:
    """What wrk measured for one endpoint on one server."""

    requests: int
    seconds: float
    p50_ms: float
    p99_ms: float
    errors: int
    cpu_us: float  # the server processes' CPU time per request (PostgreSQL's not included)
    rss_mb: float  # the largest resident memory of one server (worker) process after the load
    # PostgreSQL's CPU time per request (all its processes), when it runs on this machine
    db_cpu_us: float = math.nan

    @property
    def rps(self) -> float:
        return self.requests / self.seconds if self.seconds else 0.0


@dataclass
class Line:
    endpoint: Endpoint
    real: Load | None = None
    ceiling: Load | None = None
    note: str = ""

    @property
    def ratio(self) -> float | None:
        if self.real is None or self.ceiling is None or not self.ceiling.rps:
            return None
        return self.real.rps / self.ceiling.rps

    @property
    def cpu_ratio(self) -> float | None:
        """Ceiling CPU per request / real CPU per request: the throughput ratio of two
        CPU-bound single-process servers, and much less disturbed by other work on the machine."""
        if self.real is None or self.ceiling is None or not self.real.cpu_us:
            return None
        return self.ceiling.cpu_us / self.real.cpu_us

    def verdict(self) -> str:
        if self.real is None or not self.endpoint.targeted:
            return ""
        misses = []
        if self.ratio is not None and self.ratio < self.endpoint.target_ratio:
            misses.append("ratio")
        if self.real.p99_ms >= TARGET_P99_MS:
            misses.append("p99")
        if self.ceiling is not None and self.real.p99_ms > TARGET_P99_FACTOR * self.ceiling.p99_ms:
            misses.append("p99/ceiling")
        if self.real.errors:
            misses.append("errors")
        return "ok" if not misses else "MISS " + ",".join(misses)


@dataclass
class Options:
    duration: float
    warmup: float
    connections: int
    only: list[str] = field(default_factory=list)
    database: str = BENCH_DATABASE
    # The 1-minute load average before the bench started anything: other work on the machine.
    load_before: float = 0.0
    insight_runs: int = 5
    # Server processes of each server (the real one and the ceiling alike), and which server.
    workers: int = 0
    server: str = "uvicorn"
    # Each endpoint's time is split into this many turns, real and ceiling alternating, so that
    # a machine that slows down or speeds up in the middle weighs on both alike.
    rounds: int = 4


# ---- the load tool -------------------------------------------------------------------------------

WRK_REPORT = """
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    "WRK_JSON {\\"requests\\": %d, \\"duration_us\\": %d, "
    .. "\\"p50_us\\": %d, \\"p99_us\\": %d, \\"connect\\": %d, \\"read\\": %d, "
    .. "\\"write\\": %d, \\"status\\": %d, \\"timeout\\": %d}\\n",
    summary.requests, summary.duration, latency:percentile(50), latency:percentile(99),
    e.connect, e.read, e.write, e.status, e.timeout))
end
"""


def wrk_path() -> str:
    found = shutil.which("wrk")
    if found is None:
        raise SystemExit(
            "The bench drives load with wrk, which is not installed. `make bench` installs it "
            "(Debian/Ubuntu: apt-get install wrk; macOS: brew install wrk)."
        )
    return found


def run_wrk(
    url: str, headers: dict[str, str], seconds: float, connections: int, script: Path
) -> dict[str, int]:
    """wrk in its own process, one thread (the server has the other core), bounded in time."""
    command = [
        wrk_path(),
        "--threads",
        "1",
        "--connections",
        str(connections),
        "--duration",
        f"{max(1, round(seconds))}s",
        "--timeout",
        "5s",
        "--script",
        str(script),
    ]
    for name, value in headers.items():
        command += ["--header", f"{name}: {value}"]
    finished = subprocess.run(
        [*command, url], capture_output=True, text=True, timeout=seconds + 60, check=False
    )
    for line in finished.stdout.splitlines():
        if line.startswith("WRK_JSON "):
            report: dict[str, int] = json.loads(line.removeprefix("WRK_JSON "))
            return report
    raise RuntimeError(f"wrk gave no report: {finished.stdout}\n{finished.stderr}")


# ---- servers -------------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind((HOST, 0))
        port: int = probe.getsockname()[1]
        return port


@dataclass
class Server:
    name: str
    process: subprocess.Popen[bytes]
    base_url: str
    log: Path

    def _processes(self) -> list[psutil.Process]:
        parent = psutil.Process(self.process.pid)
        return [parent, *parent.children(recursive=True)]

    def rss_mb(self) -> float:
        """The largest resident memory of one process of the server (a worker's, with several;
        the supervisor holds no app)."""
        try:
            return max(p.memory_info().rss for p in self._processes()) / 2**20
        except psutil.NoSuchProcess:
            return float("nan")

    def cpu_seconds(self) -> float:
        try:
            return sum(sum(p.cpu_times()[:2]) for p in self._processes())
        except psutil.NoSuchProcess:
            return float("nan")

    def wait_until_idle(self, limit: float = 120.0) -> None:
        """Until the server's processes stop using CPU on their own: each worker loads the Chinese
        dictionary in a thread after it answers (about a second of CPU), which must not be billed
        to the first endpoint measured. At most `limit` seconds."""
        deadline = time.monotonic() + limit
        before = self.cpu_seconds()
        while time.monotonic() < deadline:
            time.sleep(1.0)
            now = self.cpu_seconds()
            if now - before < 0.05:
                return
            before = now

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)


@dataclass
class DatabaseCpu:
    """PostgreSQL's processes on this machine (its postmaster and every backend), whose CPU time
    the bench bills per request beside the server's: the part of an endpoint's cost that the
    server's own CPU column does not show. Absent (NaN) when the database runs elsewhere."""

    postmaster: psutil.Process | None

    @classmethod
    def of(cls, admin_url: Any) -> DatabaseCpu:
        async def postmaster() -> psutil.Process:
            conn = await asyncpg.connect(**connect_kwargs(admin_url))
            try:  # the backend's parent, asked while the backend lives
                return psutil.Process(
                    psutil.Process(await conn.fetchval("SELECT pg_backend_pid()")).ppid()
                )
            finally:
                await conn.close()

        try:
            return cls(asyncio.run(postmaster()))
        except (psutil.Error, OSError):  # another machine's (or another container's) server
            return cls(None)

    def cpu_seconds(self) -> float:
        if self.postmaster is None:
            return math.nan
        # The postmaster's own time and its ended children's (it reaps every backend), then the
        # backends that live now.
        user, system, children_user, children_system = self.postmaster.cpu_times()[:4]
        total = user + system + children_user + children_system
        for process in self.postmaster.children():
            with contextlib.suppress(psutil.Error):  # a backend that ended meanwhile
                total += sum(process.cpu_times()[:2])
        return total


def start_server(
    name: str, command: list[str], env: dict[str, str], port: int, logs: Path
) -> Server:
    log = logs / f"{name}.log"
    with log.open("wb") as out:
        process = subprocess.Popen(
            command, env=env, stdout=out, stderr=subprocess.STDOUT, cwd=PROJECT_ROOT
        )
    server = Server(name, process, f"http://{HOST}:{port}", log)
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit(f"{name} exited with {process.returncode}:\n{log.read_text()[-3000:]}")
        with contextlib.suppress(httpx.HTTPError):
            if httpx.get(f"{server.base_url}/healthz", timeout=2).status_code == 200:
                return server
        time.sleep(0.2)
    server.stop()
    raise SystemExit(f"{name} did not answer /healthz within 90 s:\n{log.read_text()[-3000:]}")


@contextlib.contextmanager
def servers(
    settings: Settings, database_url: str, workdir: Path, options: Options
) -> Iterator[tuple[Server, Server]]:
    real_port, ceiling_port = free_port(), free_port()
    env = {
        **os.environ,
        "DATABASE_URL": database_url,
        "WG_DATA_DIR": str(workdir),  # its own signing keys; the database is DATABASE_URL's
        "WG_PUBLIC_URL": f"http://{HOST}:{real_port}",
        "WG_LOG_LEVEL": "WARNING",
        "WG_RATE_LIMIT_PER_MINUTE": str(10**9),
        "WG_TOKEN_TTL_SECONDS": "3600",
        "PYTHONUNBUFFERED": "1",
    }
    started: list[Server] = []
    try:
        started.append(
            start_server(
                "wg-api",
                [
                    sys.executable,
                    "-m",
                    "wg_api.cli",
                    "serve",
                    "--host",
                    HOST,
                    "--port",
                    str(real_port),
                    "--workers",
                    str(options.workers),
                    "--server",
                    options.server,
                ],
                env,
                real_port,
                workdir,
            )
        )
        started.append(
            start_server(
                "ceiling",
                [
                    sys.executable,
                    "-m",
                    "bench.ceiling",
                    "--host",
                    HOST,
                    "--port",
                    str(ceiling_port),
                    "--workers",
                    str(options.workers),
                    "--server",
                    options.server,
                ],
                env,
                ceiling_port,
                workdir,
            )
        )
        for server in started:
            server.wait_until_idle()
        yield started[0], started[1]
    finally:
        for server in started:
            server.stop()


# ---- measuring -----------------------------------------------------------------------------------


def get_token(server: Server, client_id: str, client_secret: str) -> str:
    response = httpx.post(
        f"{server.base_url}/oauth/token",
        data={"grant_type": "client_credentials"},
        auth=(client_id, client_secret),
        timeout=10,
    )
    response.raise_for_status()
    token: str = response.json()["access_token"]
    return token


def measure(
    server: Server,
    endpoint: Endpoint,
    path: str,
    headers: dict[str, str],
    options: Options,
    script: Path,
    settle: Callable[[], None],
    *,
    seconds: float | None = None,
    warm: bool = True,
    database: DatabaseCpu | None = None,
) -> Load | str:
    """Warm up (with `warm`), then load for `seconds` (default: the endpoint's duration); a
    string says why the endpoint was not measured. `settle` waits until the requests still in
    flight when wrk stopped are answered."""
    url = server.base_url + path
    connections = endpoint.connections or options.connections
    probe = httpx.get(url, headers=headers, timeout=60)
    if probe.status_code == 404:
        return "not built yet (404)"
    if probe.status_code != 200:
        cause = ""
        if probe.status_code >= 500:
            logged = server.log.read_text(errors="replace").splitlines()
            raised = [_exception_of(line) for line in logged if "Error: " in line]
            cause = f"; the server logged: {raised[-1][:300]}" if raised else ""
        return f"answers {probe.status_code}{cause}"
    with contextlib.suppress(ValueError):
        body = probe.json()
        if isinstance(body, dict) and body.get("items") == []:
            return "empty list: the bench data set has nothing for it yet"
    if warm and options.warmup > 0:
        run_wrk(url, headers, options.warmup, connections, script)
        settle()
    cpu_before = server.cpu_seconds()
    db_before = database.cpu_seconds() if database else math.nan
    report = run_wrk(url, headers, seconds or options.duration, connections, script)
    cpu = server.cpu_seconds() - cpu_before
    settle()
    db_cpu = (database.cpu_seconds() if database else math.nan) - db_before
    errors = sum(report[k] for k in ("connect", "read", "write", "status", "timeout"))
    return Load(
        requests=report["requests"],
        seconds=report["duration_us"] / 1e6,
        p50_ms=report["p50_us"] / 1000,
        p99_ms=report["p99_us"] / 1000,
        errors=errors,
        cpu_us=cpu / report["requests"] * 1e6 if report["requests"] else 0.0,
        rss_mb=server.rss_mb(),
        db_cpu_us=db_cpu / report["requests"] * 1e6 if report["requests"] else math.nan,
    )


def combined(loads: list[Load]) -> Load:
    """One endpoint's turns as one load: requests, time, errors and CPU summed; the latency
    percentiles are the turns' own, weighted by their requests (wrk reports percentiles per run,
    not its histogram: an estimate of the whole, exact for one turn)."""
    requests = sum(load.requests for load in loads)

    def weighted(values: list[float]) -> float:
        if not requests:
            return max(values, default=0.0)
        return sum(v * load.requests for v, load in zip(values, loads, strict=True)) / requests

    return Load(
        requests=requests,
        seconds=sum(load.seconds for load in loads),
        p50_ms=weighted([load.p50_ms for load in loads]),
        p99_ms=weighted([load.p99_ms for load in loads]),
        errors=sum(load.errors for load in loads),
        cpu_us=weighted([load.cpu_us for load in loads]),
        rss_mb=max(load.rss_mb for load in loads),
        db_cpu_us=weighted([load.db_cpu_us for load in loads]),
    )


def measure_both(
    real: Server,
    ceiling: Server | None,
    endpoint: Endpoint,
    paths: tuple[str, str | None],
    headers: dict[str, str],
    options: Options,
    script: Path,
    settle: Callable[[], None],
    database: DatabaseCpu | None = None,
) -> tuple[Load | str, Load | str | None]:
    """The real server and its ceiling in `options.rounds` alternating turns of the endpoint's
    duration shared out; each warmed up before its first turn."""
    turn = options.duration / options.rounds
    real_loads: list[Load] = []
    ceiling_loads: list[Load] = []

    def one_turn(server: Server, path: str, sent: dict[str, str], first: bool) -> Load | str:
        return measure(
            server,
            endpoint,
            path,
            sent,
            options,
            script,
            settle,
            seconds=turn,
            warm=first,
            database=database,
        )

    for index in range(options.rounds):
        load = one_turn(real, paths[0], headers, index == 0)
        if isinstance(load, str):
            return load, None
        real_loads.append(load)
        if ceiling is None or paths[1] is None:
            continue
        other = one_turn(ceiling, paths[1], {}, index == 0)
        if isinstance(other, str):
            return combined(real_loads), other
        ceiling_loads.append(other)
    return combined(real_loads), combined(ceiling_loads) if ceiling_loads else None


def _exception_of(log_line: str) -> str:
    """`SomeError: message` from a JSON log line's traceback (or the line itself)."""
    with contextlib.suppress(ValueError, AttributeError):
        trace = json.loads(log_line).get("exception")
        if isinstance(trace, str):
            raised = [line for line in trace.splitlines() if EXCEPTION_LINE.match(line)]
            if raised:
                return raised[-1]
    return log_line


async def _busy_backends(admin_url: Any) -> int:
    conn = await asyncpg.connect(**connect_kwargs(admin_url))
    try:
        busy: int = await conn.fetchval(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
            "AND backend_type = 'client backend' AND state = 'active' "
            "AND pid <> pg_backend_pid()"
        )
        return busy
    finally:
        await conn.close()


def wait_until_settled(admin_url: Any, limit: float = 120.0) -> None:
    """Until no query of the bench database runs (the servers' in-flight requests are done), so
    one load never spills into the next measurement; at most `limit` seconds."""
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline and asyncio.run(_busy_backends(admin_url)):
        time.sleep(0.2)


async def dataset_context(admin_url: Any) -> dict[str, str]:
    conn = await asyncpg.connect(**connect_kwargs(admin_url))
    try:
        tenant_id = await conn.fetchval("SELECT id FROM tenants WHERE slug = $1", BIG_TENANT_SLUG)
        # The big tenant's group with shared findings (the generator's sharing group).
        group_id = await conn.fetchval(
            "SELECT m.group_id FROM working_group_members m WHERE m.tenant_id = $1 "
            "AND m.role IN ('member', 'facilitator') AND m.status = 'active' "
            "ORDER BY EXISTS (SELECT 1 FROM shared_findings s WHERE s.group_id = m.group_id) "
            "DESC, m.group_id LIMIT 1",
            tenant_id,
        )
        findings = await conn.fetchval(
            "SELECT count(*) FROM findings WHERE tenant_id = $1", tenant_id
        )
        shared = await conn.fetchval(
            "SELECT count(*) FROM shared_findings WHERE group_id = $1", group_id
        )
        own = await conn.fetchval(
            "SELECT count(*) FROM shares WHERE tenant_id = $1 AND group_id = $2 "
            "AND status = 'active'",
            tenant_id,
            group_id,
        )
        members = await conn.fetchval(
            "SELECT count(*) FROM working_group_members WHERE group_id = $1 "
            "AND role IN ('member', 'facilitator') AND status = 'active'",
            group_id,
        )
        finding_id = await conn.fetchval(
            "SELECT id FROM findings WHERE tenant_id = $1 ORDER BY observed_on DESC, id DESC "
            "LIMIT 1",
            tenant_id,
        )
        supplier_id = await conn.fetchval(
            "SELECT supplier_id FROM supplier_links WHERE tenant_id = $1 "
            "ORDER BY supplier_name, supplier_id LIMIT 1",
            tenant_id,
        )
        shared_id = await conn.fetchval(
            "SELECT id FROM shared_findings WHERE group_id = $1 "
            "ORDER BY supplier_name, supplier_id, observed_period DESC, id LIMIT 1",
            group_id,
        )
        postgres = await conn.fetchval("SHOW server_version")
    finally:
        await conn.close()
    return {
        "tenant_id": str(tenant_id),
        "group_id": str(group_id),
        "finding_id": str(finding_id),
        "supplier_id": str(supplier_id),
        "shared_id": str(shared_id),
        "tenant_findings": str(findings),
        "group_shared_findings": str(shared),
        "tenant_shared_findings": str(own),
        "group_members": str(members),
        "postgres": str(postgres),
    }


# ---- the insights query on its own ---------------------------------------------------------------


@dataclass
class InsightTiming:
    """One insights query (the SQL function the endpoint calls), timed in the database session."""

    query: str
    cells: int
    suppressed: int
    runs_ms: list[float]

    @property
    def median_ms(self) -> float:
        return statistics.median(self.runs_ms)


def insight_queries(chosen: list[Endpoint]) -> list[str]:
    """The query strings of the chosen insights lines, then the extra groupings."""
    queries = [e.path.partition("?")[2] for e in chosen if e.name.startswith("insights")]
    return [*queries, *(q for q in EXTRA_INSIGHTS if queries and q not in queries)]


async def time_insights(
    admin_url: Any, settings: Settings, context: dict[str, str], queries: list[str], runs: int
) -> list[InsightTiming]:
    """Each query as the app runs it: the app role, the member tenant bound, the same call with
    the same parameters; one warm-up, then `runs` timed calls (wall time of the call over the
    local socket: the database's time plus a round trip)."""
    conn = await asyncpg.connect(**connect_kwargs(admin_url))
    timings = []
    try:
        await conn.execute(f'SET ROLE "{settings.app_role}"')
        await conn.execute("SELECT set_config('app.tenant_id', $1, false)", context["tenant_id"])
        for query in queries:
            params = dict(urllib.parse.parse_qsl(query, keep_blank_values=True))
            dims = [d for d in params.get("group_by", "").split(",") if d]
            filters = [params.get(name) for name in INSIGHT_FILTERS]
            args = [uuid.UUID(context["group_id"]), dims, *filters, ROUNDING_BASE]
            if filters[0] is not None:
                args[2] = uuid.UUID(filters[0])
            rows = await conn.fetch(INSIGHTS_SQL, *args)
            elapsed = []
            for _ in range(runs):
                started = time.perf_counter()
                await conn.fetch(INSIGHTS_SQL, *args)
                elapsed.append((time.perf_counter() - started) * 1000)
            suppressed = sum(1 for row in rows if row["findings"] is None)
            timings.append(InsightTiming(query, len(rows) - suppressed, suppressed, elapsed))
    finally:
        await conn.close()
    return timings


def run(settings: Settings, options: Options) -> list[Line]:
    wrk_path()
    options.load_before = os.getloadavg()[0]
    spec = Spec()
    result = asyncio.run(generate(settings, spec, database=options.database))
    print(
        f"data set: {'present' if result.skipped else 'generated'} "
        f"({result.seconds:.1f} s): {json.dumps(result.counts)}"
    )
    admin_url = bench_admin_url(settings, options.database)
    context = asyncio.run(dataset_context(admin_url))
    credentials = asyncio.run(bench_clients(admin_url, settings, [BIG_TENANT_SLUG]))[
        BIG_TENANT_SLUG
    ]
    chosen = [e for e in ENDPOINTS if not options.only or e.name in options.only]
    database = DatabaseCpu.of(admin_url)
    lines: list[Line] = []
    with tempfile.TemporaryDirectory(prefix="wg-bench-") as tmp:
        workdir = Path(tmp)
        script = workdir / "report.lua"
        script.write_text(WRK_REPORT)
        with servers(settings, libpq_url(admin_url), workdir, options) as (real, ceiling):
            for endpoint in chosen:
                line = Line(endpoint)
                lines.append(line)
                headers: dict[str, str] = {}
                if endpoint.auth:
                    token = get_token(real, credentials.client_id, credentials.client_secret)
                    headers["Authorization"] = f"Bearer {token}"
                settle = functools.partial(wait_until_settled, admin_url)
                path = endpoint.path.format(**context)
                ceiling_path = (
                    endpoint.ceiling.format(**context) if endpoint.ceiling is not None else None
                )
                measured, ceiling_load = measure_both(
                    real,
                    ceiling,
                    endpoint,
                    (path, ceiling_path),
                    headers,
                    options,
                    script,
                    settle,
                    database,
                )
                if isinstance(measured, str):
                    line.note = measured
                    print(f"  {endpoint.name}: skipped, {measured}")
                    continue
                line.real = measured
                if isinstance(ceiling_load, str):
                    line.note = f"ceiling {ceiling_load}"
                elif ceiling_load is not None:
                    line.ceiling = ceiling_load
                else:
                    line.note = "no ceiling endpoint yet"
                print(f"  {endpoint.name}: {line.real.rps:,.0f} req/s", flush=True)
    queries = insight_queries(chosen)
    timings = asyncio.run(
        time_insights(admin_url, settings, context, queries, options.insight_runs)
    )
    report(lines, options, context, timings)
    return lines


# ---- the report ----------------------------------------------------------------------------------


def _fmt(load: Load | None) -> list[str]:
    if load is None:
        return ["", "", "", "", "", "", ""]
    return [
        f"{load.rps:,.0f}" if load.rps >= 10 else f"{load.rps:.1f}",
        f"{load.p50_ms:.1f}",
        f"{load.p99_ms:.1f}",
        str(load.errors),
        f"{load.cpu_us:,.0f}",
        "" if math.isnan(load.db_cpu_us) else f"{load.db_cpu_us:,.0f}",
        f"{load.rss_mb:.0f}",
    ]


def table(lines: list[Line], connections: int) -> str:
    header = [
        "endpoint",
        "conns",
        "req/s",
        "p50 ms",
        "p99 ms",
        "errors",
        "CPU µs/req",
        "db CPU µs/req",
        "worker RSS MB",
        "ceiling req/s",
        "p50 ms",
        "p99 ms",
        "errors",
        "CPU µs/req",
        "db CPU µs/req",
        "RSS MB",
        "ratio",
        "CPU ratio",
        "target",
    ]
    rows = []
    for line in lines:
        ratio = f"{line.ratio:.0%}" if line.ratio is not None else ""
        cpu_ratio = f"{line.cpu_ratio:.0%}" if line.cpu_ratio is not None else ""
        rows.append(
            [
                line.endpoint.name,
                str(line.endpoint.connections or connections),
                *_fmt(line.real),
                *_fmt(line.ceiling),
                ratio,
                cpu_ratio,
                line.verdict(),
            ]
        )
    widths = [max(len(h), *(len(r[i]) for r in rows)) for i, h in enumerate(header)]
    out = [
        "| " + " | ".join(h.ljust(w) for h, w in zip(header, widths, strict=True)) + " |",
        "|" + "|".join("-" * (w + 2) for w in widths) + "|",
    ]
    for row in rows:
        cells = [row[0].ljust(widths[0])] + [
            cell.rjust(width) for cell, width in zip(row[1:], widths[1:], strict=True)
        ]
        out.append("| " + " | ".join(cells) + " |")
    return "\n".join(out)


def auth_cost(lines: list[Line]) -> str | None:
    """What /v1/me costs the server beyond /healthz: authentication, rate limit, transaction."""
    by_name = {line.endpoint.name: line.real for line in lines}
    health, me = by_name.get("healthz"), by_name.get("me")
    if health is None or me is None or not health.rps or not me.rps:
        return None
    cpu = me.cpu_us - health.cpu_us
    service = 1e6 / me.rps - 1e6 / health.rps
    return (
        f"auth cost (/v1/me over /healthz): {cpu:+,.0f} µs of server CPU per request; "
        f"{service:+,.0f} µs of server time per request from throughput (1/req/s); "
        f"p50 {(me.p50_ms - health.p50_ms) * 1000:+,.0f} µs"
    )


def insights_table(timings: list[InsightTiming], context: dict[str, str]) -> str:
    header = ["insights query", "cells", "suppressed", "median ms", "min ms", "max ms", "target"]
    rows = [
        [
            t.query,
            str(t.cells),
            str(t.suppressed),
            f"{t.median_ms:,.0f}",
            f"{min(t.runs_ms):,.0f}",
            f"{max(t.runs_ms):,.0f}",
            "ok" if t.median_ms < TARGET_INSIGHTS_MS else "MISS",
        ]
        for t in timings
    ]
    widths = [max(len(h), *(len(r[i]) for r in rows)) for i, h in enumerate(header)]
    out = [
        f"one insights query over the group's {int(context['group_shared_findings']):,} shared "
        f"findings (group_insights() as the app role, a member bound; "
        f"{len(timings[0].runs_ms)} runs after a warm-up; target < {TARGET_INSIGHTS_MS:g} ms):",
        "| " + " | ".join(h.ljust(w) for h, w in zip(header, widths, strict=True)) + " |",
        "|" + "|".join("-" * (w + 2) for w in widths) + "|",
    ]
    for row in rows:
        cells = [row[0].ljust(widths[0])] + [
            cell.rjust(width) for cell, width in zip(row[1:], widths[1:], strict=True)
        ]
        out.append("| " + " | ".join(cells) + " |")
    return "\n".join(out)


def report(
    lines: list[Line],
    options: Options,
    context: dict[str, str],
    timings: list[InsightTiming] | None = None,
) -> None:
    timings = timings or []
    load1, _, _ = os.getloadavg()
    print()
    print(
        f"{options.server} with {options.workers} worker process(es) each; "
        f"{options.connections} connections unless the line says, "
        f"{options.duration:g} s per endpoint after "
        f"{options.warmup:g} s warm-up, in {options.rounds} turns alternating with the "
        f"ceiling; tenant with {context['tenant_findings']} findings, "
        f"member of a group of {context['group_members']} sharing tenants with "
        f"{context['group_shared_findings']} shared findings "
        f"({context['tenant_shared_findings']} its own); "
        f"PostgreSQL {context['postgres']}; Python {platform.python_version()}; "
        f"{os.cpu_count()} cores, load average {options.load_before:.2f} before the run "
        f"(other work), {load1:.2f} at its end (with the bench's own processes)"
    )
    print(table(lines, options.connections))
    for line in lines:
        if line.note:
            print(f"  {line.endpoint.name}: {line.note}")
    if cost := auth_cost(lines):
        print(cost)
    rss = max((line.real.rss_mb for line in lines if line.real), default=None)
    seen = (
        ""
        if rss is None
        else f" (max seen {rss:.0f} MB: {'ok' if rss < TARGET_RSS_MB else 'MISS'})"
    )
    print(
        f"targets: list/read endpoints >= {TARGET_RATIO:.0%} of the ceiling (/v1/me 60 %) with "
        f"p99 <= {TARGET_P99_FACTOR:g}x the ceiling's and < {TARGET_P99_MS:g} ms at 32 "
        f"connections; one API worker's RSS < {TARGET_RSS_MB:g} MB{seen}"
    )
    if timings:
        print()
        print(insights_table(timings, context))
    RESULTS_DIR.mkdir(exist_ok=True)
    path = RESULTS_DIR / time.strftime("%Y%m%d-%H%M%S.json")
    path.write_text(
        json.dumps(
            {
                "options": asdict(options),
                "context": context,
                "load_average": load1,
                "insights": [
                    {**asdict(t), "median_ms": t.median_ms, "target_ms": TARGET_INSIGHTS_MS}
                    for t in timings
                ],
                "lines": [
                    {
                        "endpoint": line.endpoint.name,
                        "path": line.endpoint.path,
                        "real": asdict(line.real) if line.real else None,
                        "ceiling": asdict(line.ceiling) if line.ceiling else None,
                        "ratio": line.ratio,
                        "cpu_ratio": line.cpu_ratio,
                        "note": line.note,
                    }
                    for line in lines
                ],
            },
            indent=2,
        )
    )
    print(f"written to {path.relative_to(PROJECT_ROOT)}")


def parse_args(argv: list[str] | None = None) -> Options:
    parser = argparse.ArgumentParser(prog="python -m bench.run", description=__doc__)
    parser.add_argument("--duration", type=float, default=10.0, help="seconds per endpoint")
    parser.add_argument("--warmup", type=float, default=2.0, help="seconds before measuring")
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--quick", action="store_true", help="2 s per endpoint, 1 s warm-up")
    parser.add_argument("--only", action="append", default=[], choices=[e.name for e in ENDPOINTS])
    parser.add_argument("--database", default=BENCH_DATABASE)
    parser.add_argument(
        "--insight-runs", type=int, default=5, help="timed runs of each insights query"
    )
    parser.add_argument(
        "--workers",
        type=int,
        default=0,
        help="server processes of each server; default: as `wg-api serve` (the usable CPUs)",
    )
    parser.add_argument("--server", default="uvicorn", choices=SERVERS)
    parser.add_argument(
        "--rounds",
        type=int,
        default=4,
        help="turns per endpoint, real server and ceiling alternating (default 4)",
    )
    args = parser.parse_args(argv)
    if args.quick:
        args.duration, args.warmup, args.rounds = 2.0, 1.0, min(args.rounds, 2)
    if not 1 <= args.duration <= 600 or not 0 <= args.warmup <= 60:
        parser.error("--duration must be 1..600 s and --warmup 0..60 s")
    if not 1 <= args.connections <= 1000:
        parser.error("--connections must be 1..1000")
    if not 1 <= args.insight_runs <= 100:
        parser.error("--insight-runs must be 1..100")
    if not 1 <= args.rounds <= 20 or args.duration / args.rounds < 1:
        parser.error("--rounds must be 1..20, with turns of 1 s or more")
    return Options(
        args.duration,
        args.warmup,
        args.connections,
        args.only,
        args.database,
        insight_runs=args.insight_runs,
        workers=args.workers or default_workers(),
        server=args.server,
        rounds=args.rounds,
    )


def main(argv: list[str] | None = None) -> int:
    run(Settings.from_env(), parse_args(argv))
    return 0


if __name__ == "__main__":
    sys.exit(main())
