"""`make fuzz`: schemathesis against a live server, every check, tokens valid for every operation.

    uv run --frozen python -m tests.contract.fuzz [--max-examples N] [--max-time S] [--keep]

A fresh embedded PostgreSQL (under `.wg-data/fuzz`), the demo data, `wg-api serve` on a free port,
then two runs of `schemathesis run openapi/openapi.json` with all checks:

1. every operation, with the token of a brand's admin client (all of an admin's scopes), except
   the two that could take the fuzzer's own credentials away (revoking or rotating an API client);
2. those two, with the token of a second admin client made for them: whatever they revoke, the
   first run is over.

The exit status is non-zero when any check failed in either run. Configuration (which statuses
count as accepting valid data) is `tests/contract/schemathesis.toml`; the hooks are
`tests/contract/fuzz_hooks.py`.
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx

from wg_api.settings import PROJECT_ROOT

HERE = Path(__file__).resolve().parent
CONFIG = HERE / "schemathesis.toml"
SCHEMA = PROJECT_ROOT / "openapi" / "openapi.json"
FUZZ_TENANT = "northwind-apparel"
# Operations that revoke or replace an API client's credentials: their own run, their own token.
CREDENTIAL_OPERATIONS = (
    "V1ApiClientsApiClientIdRevoke",
    "V1ApiClientsApiClientIdRotateSecretRotateSecret",
)
READY_SECONDS = 90.0


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def wg_api(env: dict[str, str], *args: str) -> Any:
    done = subprocess.run(
        [sys.executable, "-m", "wg_api.cli", *args],
        env=env,
        check=True,
        capture_output=True,
        text=True,
        timeout=300,
    )
    return json.loads(done.stdout.strip().splitlines()[-1])


def wait_ready(base_url: str, server: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + READY_SECONDS
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise SystemExit(f"wg-api serve exited with {server.returncode}")
        try:
            if httpx.get(f"{base_url}/readyz", timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise SystemExit(f"wg-api serve was not ready within {READY_SECONDS:.0f} s")


def token(base_url: str, client_id: str, client_secret: str) -> str:
    basic = base64.b64encode(f"{client_id}:{client_secret}".encode()).decode()
    response = httpx.post(
        f"{base_url}/oauth/token",
        data={"grant_type": "client_credentials"},
        headers={"Authorization": f"Basic {basic}"},
        timeout=10,
    )
    response.raise_for_status()
    access_token: str = response.json()["access_token"]
    return access_token


def schemathesis(
    base_url: str, bearer: str, args: argparse.Namespace, *selection: str, report: str
) -> int:
    command = [
        sys.executable,
        "-m",
        "schemathesis.cli",
        "--config-file",
        str(CONFIG),
        "run",
        str(SCHEMA),
        "--url",
        base_url,
        "--header",
        f"Authorization: Bearer {bearer}",
        "--checks",
        "all",
        "--max-examples",
        str(args.max_examples),
        "--seed",
        str(args.seed),
        # One at a time: concurrent requests on the same few demo rows meet in the database,
        # and the deadlocks they provoke are answered 503 `try-again` (by design, not a bug
        # for this check to find; tests/reliability covers them).
        "--workers",
        "1",
        "--request-timeout",
        "20",
        "--report",
        "junit",
        "--report-dir",
        str(args.report_dir / report),
        *selection,
    ]
    if args.max_time:
        command += ["--max-time", str(args.max_time)]
    env = {
        **os.environ,
        "SCHEMATHESIS_HOOKS": "tests.contract.fuzz_hooks",
        "FUZZ_BASE_URL": base_url,
        "FUZZ_TOKEN": bearer,
    }
    print("$", " ".join(c if "Bearer" not in c else "Authorization: Bearer ***" for c in command))
    return subprocess.run(command, env=env, cwd=PROJECT_ROOT, check=False).returncode


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--max-examples", type=int, default=50)
    parser.add_argument("--max-time", type=int, default=0, help="seconds per run; 0: no limit")
    parser.add_argument("--seed", type=int, default=int(os.environ.get("FUZZ_SEED", "1")))
    parser.add_argument("--data-dir", type=Path, default=PROJECT_ROOT / ".wg-data" / "fuzz")
    parser.add_argument(
        "--report-dir", type=Path, default=PROJECT_ROOT / ".wg-data" / "fuzz-report"
    )
    parser.add_argument("--keep", action="store_true", help="keep the previous run's database")
    args = parser.parse_args(argv)

    if not args.keep:
        shutil.rmtree(args.data_dir, ignore_errors=True)
    shutil.rmtree(args.report_dir, ignore_errors=True)
    port = free_port()
    base_url = f"http://127.0.0.1:{port}"
    env = {
        **os.environ,
        "WG_DATA_DIR": str(args.data_dir),
        "WG_PUBLIC_URL": base_url,
        "WG_LOG_LEVEL": "WARNING",
        # The fuzzer is one tenant sending thousands of requests: budgets must not be its limit.
        "WG_RATE_LIMIT_PER_MINUTE": "1000000",
        "WG_TOKEN_RATE_LIMIT_PER_MINUTE": "1000",
        "WG_UNAUTHENTICATED_PER_MINUTE": "1000000",
        "WG_TOKEN_FAILURES_PER_MINUTE": "1000000",
        "WG_OUTBOUND_ALLOW_LOOPBACK": "false",
        "WG_TOKEN_TTL_SECONDS": "3600",
    }
    env.pop("DATABASE_URL", None)
    demo = wg_api(env, "demo")
    fuzzer = next(t for t in demo["tenants"] if t["tenant"]["slug"] == FUZZ_TENANT)
    guard = wg_api(env, "client", "create", "--tenant", FUZZ_TENANT, "--name", "fuzz-credentials")
    server = subprocess.Popen(
        [sys.executable, "-m", "wg_api.cli", "serve", "--port", str(port)], env=env
    )
    try:
        wait_ready(base_url, server)
        credential_ops = [o for op in CREDENTIAL_OPERATIONS for o in ("--include-operation-id", op)]
        excluded = [o for op in CREDENTIAL_OPERATIONS for o in ("--exclude-operation-id", op)]
        everything = schemathesis(
            base_url,
            token(base_url, fuzzer["client_id"], fuzzer["client_secret"]),
            args,
            *excluded,
            report="main",
        )
        credentials = schemathesis(
            base_url,
            token(base_url, guard["client_id"], guard["client_secret"]),
            args,
            *credential_ops,
            report="credentials",
        )
    finally:
        server.terminate()
        try:
            server.wait(timeout=30)
        except subprocess.TimeoutExpired:
            server.kill()
    print(f"schemathesis: all operations exit {everything}, credential operations {credentials}")
    return 1 if everything or credentials else 0


if __name__ == "__main__":
    raise SystemExit(main())
