"""`wg-api remote` against a live server (uvicorn on a free port in a thread), run as a real
subprocess: import, export, the round trip, the feed followed and resumed from a cursor file."""

from __future__ import annotations

import asyncio
import dataclasses
import json
import os
import socket
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import uvicorn
from sqlalchemy.engine import URL

from tests.findings.conftest import finding_body
from tests.suppliers.conftest import new_supplier
from wg_api.app import asgi_app
from wg_api.settings import Settings

DEADLINE_SECONDS = 20.0


@pytest.fixture(scope="module")
def live_url(settings: Settings, admin_url: URL, database: Any) -> Iterator[str]:
    """The app served by uvicorn in a thread of its own, on the tests' database."""
    live = dataclasses.replace(
        settings, database_url=admin_url.render_as_string(hide_password=False)
    )
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    config = uvicorn.Config(
        asgi_app(live), log_config=None, access_log=False, lifespan="on", workers=1
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 60
    while not server.started:
        assert thread.is_alive(), "the server stopped while starting"
        assert time.monotonic() < deadline, "the server did not start"
        time.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=15)
        sock.close()


@dataclasses.dataclass
class Result:
    code: int
    stdout: str
    stderr: str


def _env(url: str, tenant: Any) -> dict[str, str]:
    return {
        **os.environ,
        "WG_REMOTE_URL": url,
        "WG_CLIENT_ID": tenant.client_id,
        "WG_CLIENT_SECRET": tenant.client_secret,
    }


async def remote(url: str, tenant: Any, *args: str, stdout: Path | None = None) -> Result:
    """`wg-api remote ARGS` with the tenant's credentials in the environment."""
    out = stdout.open("wb") if stdout is not None else None
    try:
        process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "wg_api.cli",
            "remote",
            *args,
            env=_env(url, tenant),
            stdout=out or asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        output, errors = await asyncio.wait_for(process.communicate(), 60)
    finally:
        if out is not None:
            out.close()
    assert process.returncode is not None
    return Result(process.returncode, (output or b"").decode(), errors.decode())


@pytest.fixture
async def owner(client: Any, make_tenant: Any) -> Any:
    tenant = await make_tenant()
    headers = await tenant.headers()
    supplier = await new_supplier(client, headers)
    tenant.supplier_id = supplier["id"]
    tenant.auth = headers
    return tenant


async def test_import_then_export_then_import_again_unchanged(live_url, owner, tmp_path):
    rows = [finding_body(owner.supplier_id, external_id=f"CLI-{i}") for i in range(25)]
    source = tmp_path / "findings.ndjson"
    source.write_text("".join(json.dumps(row) + "\n" for row in rows))
    imported = await remote(live_url, owner, "import", str(source), "--progress")
    assert imported.code == 0, imported.stderr
    result = json.loads(imported.stdout)  # the progress bar went to stderr, not here
    assert result["summary"]["created"] == 25
    assert "25 rows: 25 created" in imported.stderr

    for format in ("ndjson", "csv"):
        exported_file = tmp_path / f"export.{format}"
        exported = await remote(
            live_url, owner, "export", "--format", format, "--progress", stdout=exported_file
        )
        assert exported.code == 0, exported.stderr
        lines = exported_file.read_text().splitlines()
        assert len(lines) == 25 + (format == "csv")
        again = await remote(live_url, owner, "import", str(exported_file))
        assert again.code == 0, again.stderr
        assert json.loads(again.stdout)["summary"]["unchanged"] == 25


async def test_export_filters_and_flags_instead_of_the_environment(live_url, owner, tmp_path):
    rows = [
        finding_body(owner.supplier_id, external_id="F-1", area="working_hours"),
        finding_body(owner.supplier_id, external_id="F-2", area="health_and_safety"),
    ]
    source = tmp_path / "two.ndjson"
    source.write_text("".join(json.dumps(row) + "\n" for row in rows))
    assert (await remote(live_url, owner, "import", str(source))).code == 0
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "wg_api.cli",
        "remote",
        "export",
        "--area",
        "health_and_safety",
        "--url",
        live_url,
        "--client-id",
        owner.client_id,
        "--client-secret",
        owner.client_secret,
        env={k: v for k, v in os.environ.items() if not k.startswith(("WG_REMOTE", "WG_CLIENT"))},
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    output, _ = await asyncio.wait_for(process.communicate(), 60)
    assert process.returncode == 0
    assert [json.loads(line)["external_id"] for line in output.decode().splitlines()] == ["F-2"]


async def test_failed_rows_and_refused_requests_set_the_exit_status(live_url, owner, tmp_path):
    source = tmp_path / "bad.csv"
    source.write_text("external_id,colour\nX,blue\n")
    refused = await remote(live_url, owner, "import", str(source))
    assert refused.code == 1
    assert refused.stdout == ""
    assert "colour" in json.loads(refused.stderr)["detail"]

    rows = [finding_body(owner.supplier_id, external_id="OK"), {"external_id": "NOPE"}]
    mixed = tmp_path / "mixed.ndjson"
    mixed.write_text("".join(json.dumps(row) + "\n" for row in rows))
    partly = await remote(live_url, owner, "import", str(mixed), "--dry-run")
    assert partly.code == 2
    result = json.loads(partly.stdout)
    assert result["dry_run"] is True
    assert [r["status"] for r in result["results"]] == ["created", "failed"]

    wrong = dataclasses.replace(owner, client_secret="not-the-secret")
    unauthorised = await remote(live_url, wrong, "events")
    assert unauthorised.code == 1
    assert unauthorised.stdout == ""


async def test_events_follow_prints_the_feed_and_resumes_from_the_cursor_file(
    live_url, owner, client, tmp_path
):
    first = await client.post(
        "/v1/findings",
        json=finding_body(owner.supplier_id, external_id="EV-A"),
        headers=owner.auth,
    )
    assert first.status_code == 201
    cursor_file = tmp_path / "feed.cursor"
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "wg_api.cli",
        "remote",
        "events",
        "--follow",
        "--types",
        "finding.created",
        "--cursor-file",
        str(cursor_file),
        "--poll-seconds",
        "0.2",
        env=_env(live_url, owner),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    assert process.stdout is not None
    seen: list[dict[str, Any]] = []
    try:
        line = await asyncio.wait_for(process.stdout.readline(), DEADLINE_SECONDS)
        seen.append(json.loads(line))
        # Written while the command follows the feed: it prints it without being restarted.
        second = await client.post(
            "/v1/findings",
            json=finding_body(owner.supplier_id, external_id="EV-B"),
            headers=owner.auth,
        )
        assert second.status_code == 201
        line = await asyncio.wait_for(process.stdout.readline(), DEADLINE_SECONDS)
        seen.append(json.loads(line))
    finally:
        process.terminate()
        await asyncio.wait_for(process.wait(), DEADLINE_SECONDS)
    assert [e["data"]["external_id"] for e in seen] == ["EV-A", "EV-B"]
    assert all(e["type"] == "finding.created" for e in seen)
    assert cursor_file.read_text().strip()

    third = await client.post(
        "/v1/findings",
        json=finding_body(owner.supplier_id, external_id="EV-C"),
        headers=owner.auth,
    )
    assert third.status_code == 201
    resumed = await remote(
        live_url, owner, "events", "--types", "finding.created", "--cursor-file", str(cursor_file)
    )
    assert resumed.code == 0, resumed.stderr
    printed = [json.loads(line)["data"]["external_id"] for line in resumed.stdout.splitlines()]
    # Resumed after EV-A; EV-B again only if the command was stopped between printing its page
    # and saving the cursor (at least once: a page may repeat, none is skipped).
    assert printed in (["EV-C"], ["EV-B", "EV-C"])
