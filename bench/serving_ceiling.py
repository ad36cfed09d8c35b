"""The serving ceiling of bench/serving.py: a trivial ASGI app served by `wg_api.cli.run_server`
exactly as `wg-api serve` serves the API (`python -m bench.serving_ceiling --port 8102`)."""

from __future__ import annotations

import argparse

from wg_api.cli import SERVERS, default_workers, run_server


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.serving_ceiling", description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8102)
    parser.add_argument("--workers", type=int, default=0)
    parser.add_argument("--server", default="uvicorn", choices=SERVERS)
    args = parser.parse_args(argv)
    run_server(
        "bench.serving:trivial_app",
        host=args.host,
        port=args.port,
        workers=args.workers or default_workers(),
        server=args.server,
    )


if __name__ == "__main__":
    main()
