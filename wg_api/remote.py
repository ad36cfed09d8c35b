"""`wg-api remote`: the API over HTTP with client credentials, for integrators' scripts.

    wg-api remote import FILE            # NDJSON or CSV; prints the import's results
    wg-api remote export [filters] > FILE
    wg-api remote events --follow --cursor-file feed.cursor

The server, client id and secret come from `--url`, `--client-id`, `--client-secret` or
`WG_REMOTE_URL`, `WG_CLIENT_ID`, `WG_CLIENT_SECRET`; a token is fetched from `/oauth/token` and
fetched again when it expires. Results and data go to stdout, progress and problems to stderr.
Exit status: 0 done, 1 the request failed, 2 an import with failed rows.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any, BinaryIO

import httpx
import msgspec
from rich.console import Console
from rich.progress import (
    BarColumn,
    DownloadColumn,
    Progress,
    SpinnerColumn,
    TextColumn,
    TimeElapsedColumn,
    TransferSpeedColumn,
)

CHUNK = 256 * 1024
# Renew the token this long before it expires, so a request never carries a stale one.
TOKEN_MARGIN_SECONDS = 30.0
FILTERS = ("supplier_id", "area", "severity", "status", "observed_from", "observed_to")


class RemoteError(Exception):
    """A request the server refused: its problem document, for stderr."""

    def __init__(self, response: httpx.Response) -> None:
        self.status = response.status_code
        try:
            self.problem: Any = response.json()
        except ValueError:
            self.problem = {"status": response.status_code, "detail": response.text[:500]}
        super().__init__(f"HTTP {self.status}")


class RemoteClient:
    """An httpx client that brings its own bearer token (client-credentials grant)."""

    def __init__(
        self, url: str, client_id: str, client_secret: str, *, timeout: float = 300.0
    ) -> None:
        self.http = httpx.Client(base_url=url.rstrip("/"), timeout=timeout)
        self.client_id = client_id
        self.client_secret = client_secret
        self._token: str | None = None
        self._expires = 0.0

    def close(self) -> None:
        self.http.close()

    def token(self, *, renew: bool = False) -> str:
        if renew or self._token is None or time.monotonic() > self._expires:
            response = self.http.post(
                "/oauth/token",
                data={"grant_type": "client_credentials"},
                auth=(self.client_id, self.client_secret),
            )
            if response.status_code != 200:
                raise RemoteError(response)
            body = response.json()
            self._token = str(body["access_token"])
            lifetime = float(body.get("expires_in", 300))
            self._expires = time.monotonic() + max(0.0, lifetime - TOKEN_MARGIN_SECONDS)
        return self._token

    def headers(self, **extra: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token()}", **extra}

    def get(self, path: str, params: dict[str, Any]) -> httpx.Response:
        response = self.http.get(path, params=params, headers=self.headers())
        if response.status_code == 401:  # revoked or expired early: one more try
            self.token(renew=True)
            response = self.http.get(path, params=params, headers=self.headers())
        if response.status_code >= 400:
            raise RemoteError(response)
        return response


def _stderr() -> Console:
    return Console(stderr=True)


def _progress(*columns: Any, show: bool) -> Progress:
    return Progress(*columns, console=_stderr(), transient=True, disable=not show)


def _content_type(path: Path, format: str | None) -> str:
    chosen = format or ("csv" if path.suffix.lower() == ".csv" else "ndjson")
    return "text/csv" if chosen == "csv" else "application/x-ndjson"


def _chunks(source: BinaryIO, progress: Progress, task: Any) -> Iterator[bytes]:
    while chunk := source.read(CHUNK):
        progress.advance(task, len(chunk))
        yield chunk


def run_import(client: RemoteClient, args: argparse.Namespace) -> int:
    path = Path(args.file)
    params = {
        name: "true" for name, on in (("dry_run", args.dry_run), ("atomic", args.atomic)) if on
    }
    headers = client.headers(**{"Content-Type": _content_type(path, args.format)})
    if args.idempotency_key:
        headers["Idempotency-Key"] = args.idempotency_key
    progress = _progress(
        TextColumn("importing {task.description}"),
        BarColumn(),
        DownloadColumn(),
        TransferSpeedColumn(),
        TimeElapsedColumn(),
        show=args.progress,
    )
    with progress, path.open("rb") as source:
        task = progress.add_task(path.name, total=path.stat().st_size)
        response = client.http.post(
            "/v1/findings/import",
            params=params,
            content=_chunks(source, progress, task),
            headers=headers,
        )
    if response.status_code != 200:
        raise RemoteError(response)
    sys.stdout.write(response.text.rstrip("\n") + "\n")
    summary = response.json()["summary"]
    _stderr().print(
        f"{summary['rows']} rows: {summary['created']} created, {summary['updated']} updated, "
        f"{summary['unchanged']} unchanged, {summary['failed']} failed"
        + (f", {summary['not_written']} not written" if summary.get("not_written") else "")
    )
    return 2 if summary["failed"] else 0


def run_export(client: RemoteClient, args: argparse.Namespace) -> int:
    params = {name: getattr(args, name) for name in FILTERS if getattr(args, name) is not None}
    if args.updated_since:
        params["updated_since"] = args.updated_since
    params["format"] = args.format
    out = sys.stdout.buffer
    progress = _progress(
        SpinnerColumn(),
        TextColumn("exported {task.completed:,.0f} rows"),
        TimeElapsedColumn(),
        show=args.progress,
    )
    with (
        progress,
        client.http.stream(
            "GET", "/v1/findings/export", params=params, headers=client.headers()
        ) as response,
    ):
        if response.status_code != 200:
            response.read()
            raise RemoteError(response)
        task = progress.add_task("export", total=None)
        header_left = args.format == "csv"
        for chunk in response.iter_bytes(CHUNK):
            out.write(chunk)
            rows = chunk.count(b"\n")
            if header_left and rows:
                rows, header_left = rows - 1, False
            progress.advance(task, rows)
    out.flush()
    return 0


def _read_cursor(path: Path | None) -> str | None:
    if path is None or not path.exists():
        return None
    return path.read_text().strip() or None


def _save_cursor(path: Path | None, cursor: str) -> None:
    if path is None:
        return
    # Written aside and renamed: a kill mid-write never leaves half a cursor.
    temporary = path.with_name(path.name + ".tmp")
    temporary.write_text(cursor + "\n")
    temporary.replace(path)


def run_events(client: RemoteClient, args: argparse.Namespace) -> int:
    cursor_file = Path(args.cursor_file) if args.cursor_file else None
    cursor = _read_cursor(cursor_file)
    while True:
        params: dict[str, Any] = {"limit": 200}
        if cursor:
            params["after"] = cursor
        if args.types:
            params["types"] = args.types
        page = client.get("/v1/events", params).json()
        for event in page["items"]:
            sys.stdout.write(msgspec.json.encode(event).decode() + "\n")
        sys.stdout.flush()
        # Saved after the page is printed: a restart may repeat a page, never skip one.
        cursor = page["next_cursor"]
        _save_cursor(cursor_file, cursor)
        if page["has_more"]:
            continue
        if not args.follow:
            return 0
        time.sleep(args.poll_seconds)


COMMANDS = {"import": run_import, "export": run_export, "events": run_events}


def cmd_remote(args: argparse.Namespace, _settings: Any = None) -> int:
    missing = [
        flag
        for flag, value in (
            ("--url (WG_REMOTE_URL)", args.url),
            ("--client-id (WG_CLIENT_ID)", args.client_id),
            ("--client-secret (WG_CLIENT_SECRET)", args.client_secret),
        )
        if not value
    ]
    if missing:
        sys.stderr.write(f"wg-api remote: missing {', '.join(missing)}\n")
        return 1
    client = RemoteClient(args.url, args.client_id, args.client_secret)
    try:
        return COMMANDS[args.remote_command](client, args)
    except RemoteError as error:
        sys.stderr.write(msgspec.json.encode(error.problem).decode() + "\n")
        return 1
    except httpx.HTTPError as error:
        sys.stderr.write(f"wg-api remote: {error.__class__.__name__}: {error}\n")
        return 1
    except KeyboardInterrupt:
        return 0
    finally:
        with contextlib.suppress(Exception):
            client.close()


def add_parser(sub: Any) -> None:
    """Register `wg-api remote` and its commands on the `wg-api` subparsers."""
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--url", default=os.environ.get("WG_REMOTE_URL"))
    common.add_argument("--client-id", default=os.environ.get("WG_CLIENT_ID"))
    common.add_argument("--client-secret", default=os.environ.get("WG_CLIENT_SECRET"))
    common.add_argument(
        "--progress",
        action=argparse.BooleanOptionalAction,
        default=sys.stderr.isatty(),
        help="a progress bar on stderr (default: when stderr is a terminal)",
    )
    remote = sub.add_parser("remote", help="use a wg-api server over HTTP (client credentials)")
    remote.set_defaults(func=cmd_remote)
    commands = remote.add_subparsers(dest="remote_command", required=True)

    imports = commands.add_parser(
        "import", parents=[common], help="import findings from an NDJSON or CSV file"
    )
    imports.add_argument("file")
    imports.add_argument(
        "--format", choices=["ndjson", "csv"], default=None, help="default: by the file's suffix"
    )
    imports.add_argument("--dry-run", action="store_true", help="check every row, write nothing")
    imports.add_argument("--atomic", action="store_true", help="all rows or none")
    imports.add_argument("--idempotency-key", default=None)

    exports = commands.add_parser("export", parents=[common], help="export findings to stdout")
    exports.add_argument("--format", choices=["ndjson", "csv"], default="ndjson")
    for name in (*FILTERS, "updated_since"):
        exports.add_argument(f"--{name.replace('_', '-')}", dest=name, default=None)

    events = commands.add_parser("events", parents=[common], help="print the change feed as NDJSON")
    events.add_argument("--follow", action="store_true", help="keep polling for new events")
    events.add_argument("--types", default=None, help="comma-separated event types")
    events.add_argument(
        "--cursor-file", default=None, help="resume from the cursor saved here; save it there"
    )
    events.add_argument("--poll-seconds", type=float, default=2.0)
