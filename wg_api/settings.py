"""All configuration, read once from the environment and typed."""

from __future__ import annotations

import os
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import TypeVar

PROJECT_ROOT = Path(__file__).resolve().parent.parent
N = TypeVar("N", int, float)


def _env_number(name: str, default: N) -> N:
    """An int or float variable (the type of `default`); unset or empty gives the default."""
    raw = os.environ.get(name)
    if raw is None or raw == "":
        return default
    try:
        return type(default)(raw)
    except ValueError as exc:
        kind = "an integer" if isinstance(default, int) else "a number"
        raise ValueError(f"{name} must be {kind}, got {raw!r}") from exc


def _env_bool(name: str, default: bool) -> bool:
    raw = os.environ.get(name, "").strip().lower()
    if raw == "":
        return default
    if raw in ("1", "true", "yes", "on"):
        return True
    if raw in ("0", "false", "no", "off"):
        return False
    raise ValueError(f"{name} must be true or false, got {raw!r}")


def _env_str(name: str, default: str) -> str:
    raw = os.environ.get(name)
    return default if raw is None or raw == "" else raw


@dataclass(frozen=True)
class Settings:
    """Every knob of the service; README.md ("Configuration") documents each one."""

    database_url: str | None = None
    app_database_url: str | None = None
    system_database_url: str | None = None
    data_dir: Path = PROJECT_ROOT / ".wg-data"
    signing_key_file: Path | None = None
    public_url: str = "http://127.0.0.1:8000"
    log_level: str = "INFO"
    max_body_bytes: int = 1024 * 1024
    idempotency_ttl_hours: int = 24
    event_retention_days: int = 30
    shared_event_delay_seconds: float = 300.0
    token_ttl_seconds: int = 900
    revocation_cache_seconds: int = 30
    rate_limit_per_minute: int = 600
    token_rate_limit_per_minute: int = 30
    unauthenticated_per_minute: int = 120
    token_failures_per_minute: int = 10
    outbound_allow_loopback: bool = False
    db_pool_size: int = 10
    db_pool_timeout_seconds: float = 1.0
    db_statement_timeout_ms: int = 10_000
    worker_statement_timeout_ms: int = 300_000
    body_timeout_seconds: float = 30.0
    serve_workers: int = 0
    db_pgbouncer: bool = False
    worker_metrics_port: int = 0
    job_poll_seconds: float = 1.0
    leader_retry_seconds: float = 2.0
    job_interval_seconds: int = 0
    job_timeout_seconds: float = 300.0
    job_retry_seconds: float = 30.0
    role_prefix: str = "wg"
    webhook_retry_scale: float = 1.0
    webhook_timeout_seconds: float = 15.0
    webhook_concurrency: int = 64
    webhook_endpoint_concurrency: int = 8
    webhook_poll_seconds: float = 0.5
    import_max_rows: int = 100_000
    import_max_bytes: int = 100 * 1024 * 1024
    # Supplier links younger than this get no zero-tolerance alerts and no audit overlaps.
    cosourcing_min_link_age_days: int = 30

    @property
    def pg_data_dir(self) -> Path:
        return self.data_dir / "postgres"

    @property
    def key_file(self) -> Path:
        return self.signing_key_file or self.data_dir / "signing-keys.json"

    @property
    def owner_role(self) -> str:
        return f"{self.role_prefix}_owner"

    @property
    def app_role(self) -> str:
        return f"{self.role_prefix}_app"

    @property
    def system_role(self) -> str:
        return f"{self.role_prefix}_system"

    @classmethod
    def from_env(cls) -> Settings:
        data_dir = Path(_env_str("WG_DATA_DIR", str(PROJECT_ROOT / ".wg-data"))).resolve()
        key_file = os.environ.get("WG_SIGNING_KEY_FILE")
        return cls(
            database_url=os.environ.get("DATABASE_URL") or None,
            app_database_url=os.environ.get("WG_APP_DATABASE_URL") or None,
            system_database_url=os.environ.get("WG_SYSTEM_DATABASE_URL") or None,
            data_dir=data_dir,
            signing_key_file=Path(key_file).resolve() if key_file else None,
            public_url=_env_str("WG_PUBLIC_URL", "http://127.0.0.1:8000").rstrip("/"),
            log_level=_env_str("WG_LOG_LEVEL", "INFO").upper(),
            max_body_bytes=_env_number("WG_MAX_BODY_BYTES", 1024 * 1024),
            idempotency_ttl_hours=_env_number("WG_IDEMPOTENCY_TTL_HOURS", 24),
            event_retention_days=_env_number("WG_EVENT_RETENTION_DAYS", 30),
            shared_event_delay_seconds=_env_number("WG_SHARED_EVENT_DELAY_SECONDS", 300.0),
            token_ttl_seconds=_env_number("WG_TOKEN_TTL_SECONDS", 900),
            # Capped: a revoked client's live tokens must stop working within 60 seconds.
            revocation_cache_seconds=min(60, _env_number("WG_REVOCATION_CACHE_SECONDS", 30)),
            rate_limit_per_minute=_env_number("WG_RATE_LIMIT_PER_MINUTE", 600),
            token_rate_limit_per_minute=_env_number("WG_TOKEN_RATE_LIMIT_PER_MINUTE", 30),
            unauthenticated_per_minute=_env_number("WG_UNAUTHENTICATED_PER_MINUTE", 120),
            token_failures_per_minute=_env_number("WG_TOKEN_FAILURES_PER_MINUTE", 10),
            outbound_allow_loopback=_env_bool("WG_OUTBOUND_ALLOW_LOOPBACK", False),
            db_pool_size=_env_number("WG_DB_POOL_SIZE", 10),
            db_pool_timeout_seconds=_env_number("WG_DB_POOL_TIMEOUT_SECONDS", 1.0),
            db_statement_timeout_ms=_env_number("WG_DB_STATEMENT_TIMEOUT_MS", 10_000),
            worker_statement_timeout_ms=_env_number("WG_WORKER_STATEMENT_TIMEOUT_MS", 300_000),
            body_timeout_seconds=_env_number("WG_BODY_TIMEOUT_SECONDS", 30.0),
            serve_workers=_env_number("WG_WORKERS", 0),
            db_pgbouncer=_env_bool("WG_DB_PGBOUNCER", False),
            worker_metrics_port=_env_number("WG_WORKER_METRICS_PORT", 0),
            job_poll_seconds=_env_number("WG_JOB_POLL_SECONDS", 1.0),
            leader_retry_seconds=_env_number("WG_LEADER_RETRY_SECONDS", 2.0),
            job_interval_seconds=_env_number("WG_JOB_INTERVAL_SECONDS", 0),
            job_timeout_seconds=_env_number("WG_JOB_TIMEOUT_SECONDS", 300.0),
            job_retry_seconds=_env_number("WG_JOB_RETRY_SECONDS", 30.0),
            role_prefix=_env_str("WG_DB_ROLE_PREFIX", "wg"),
            webhook_retry_scale=_env_number("WG_WEBHOOK_RETRY_SCALE", 1.0),
            webhook_timeout_seconds=_env_number("WG_WEBHOOK_TIMEOUT_SECONDS", 15.0),
            webhook_concurrency=_env_number("WG_WEBHOOK_CONCURRENCY", 64),
            webhook_endpoint_concurrency=_env_number("WG_WEBHOOK_ENDPOINT_CONCURRENCY", 8),
            webhook_poll_seconds=_env_number("WG_WEBHOOK_POLL_SECONDS", 0.5),
            import_max_rows=_env_number("WG_IMPORT_MAX_ROWS", 100_000),
            import_max_bytes=_env_number("WG_IMPORT_MAX_BYTES", 100 * 1024 * 1024),
            cosourcing_min_link_age_days=max(0, _env_number("WG_COSOURCING_MIN_LINK_AGE_DAYS", 30)),
        )


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return Settings.from_env()
