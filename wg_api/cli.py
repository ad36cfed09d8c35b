"""The `wg-api` command. Every subcommand prints JSON on stdout (logs go to stderr), except
`db roles-sql`, which prints SQL, and `remote export`, which prints the exported file."""

from __future__ import annotations

import argparse
import asyncio
import importlib
import os
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import msgspec

from wg_api.settings import PROJECT_ROOT, Settings, get_settings


def _print(value: Any) -> None:
    sys.stdout.write(msgspec.json.encode(value, enc_hook=str).decode() + "\n")
    sys.stdout.flush()


async def _with_database(
    settings: Settings, work: Callable[[Any], Awaitable[Any]], *, migrate_first: bool = True
) -> Any:
    from wg_api.platform.database import Database, resolve_admin_url
    from wg_api.platform.migrate import migrate

    admin_url = resolve_admin_url(settings)
    if migrate_first:
        await migrate(admin_url, settings)
    database = Database.connect(admin_url, settings)
    try:
        return await work(database)
    finally:
        await database.dispose()


def cmd_migrate(args: argparse.Namespace, settings: Settings) -> int:
    from wg_api.platform.database import resolve_admin_url
    from wg_api.platform.migrate import head_revision, migrate

    asyncio.run(migrate(resolve_admin_url(settings), settings, revision=args.revision))
    _print({"migrated_to": args.revision if args.revision != "head" else head_revision(settings)})
    return 0


SERVERS = ("uvicorn", "granian")
GRACEFUL_SHUTDOWN_SECONDS = 10
WORKER_HEALTHCHECK_SECONDS = 60


def default_workers() -> int:
    """The CPUs this process may run on (its affinity, e.g. a container's cpuset)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not Linux
        return max(1, os.cpu_count() or 1)


def served_app() -> Any:
    """The factory each server process calls: the app, from the environment's settings."""
    from wg_api.app import asgi_app

    return asgi_app(get_settings(), freeze_after_startup=True)


def run_server(
    target: str,
    *,
    host: str,
    port: int,
    workers: int,
    server: str = "uvicorn",
    header_timeout_seconds: float = 30.0,
) -> None:
    """Serve the app made by the factory `target` ("module:function") with `workers` processes
    on uvloop; the bench serves its ceiling through this too, so both are served the same way.
    SIGTERM stops accepting and drains the requests in flight (up to 10 s) before exiting."""
    if server == "granian":
        # Measured in bench/serving.py against uvicorn; not a dependency (see bench/README.md).
        granian = importlib.import_module("granian")
        constants = importlib.import_module("granian.constants")
        http = importlib.import_module("granian.http")
        granian.Granian(
            target,
            address=host,
            port=port,
            interface=constants.Interfaces.ASGI,
            workers=workers,
            loop=constants.Loops.uvloop,
            http=constants.HTTPModes.http1,
            http1_settings=http.HTTP1Settings(
                header_read_timeout=int(header_timeout_seconds * 1000)
            ),
            factory=True,
            log_enabled=False,
            respawn_failed_workers=True,
            workers_kill_timeout=GRACEFUL_SHUTDOWN_SECONDS,
        ).serve()
        return
    import uvicorn

    uvicorn.run(
        target,
        factory=True,
        host=host,
        port=port,
        workers=workers,
        loop="uvloop",
        http="httptools",
        log_config=None,
        access_log=False,
        lifespan="on",
        timeout_graceful_shutdown=GRACEFUL_SHUTDOWN_SECONDS,
        # A worker still importing on a busy machine must not be taken for hung (the default,
        # 5 s, restarted workers in a loop on a loaded 2-core machine).
        timeout_worker_healthcheck=WORKER_HEALTHCHECK_SECONDS,
    )


def cmd_serve(args: argparse.Namespace, settings: Settings) -> int:
    from wg_api.platform.database import Database, resolve_admin_url
    from wg_api.platform.embedded import stop_on_termination
    from wg_api.platform.migrate import migrate
    from wg_api.platform.roles import check_logins

    async def prepare() -> str:
        admin_url = resolve_admin_url(settings)
        await migrate(admin_url, settings)
        database = Database.connect(admin_url, settings)
        try:
            await check_logins(database.app_engine, database.system_engine, settings.owner_role)
        finally:
            await database.dispose()
        return admin_url.render_as_string(hide_password=False)

    admin_url = asyncio.run(prepare())
    if not settings.database_url:
        # The server processes connect to the embedded server this process started and holds
        # (and stops when it exits): they never take a handle on it themselves.
        os.environ["DATABASE_URL"] = admin_url
    stop_on_termination()
    workers = args.workers or settings.serve_workers or default_workers()
    run_server(
        "wg_api.cli:served_app",
        host=args.host,
        port=args.port,
        workers=workers,
        server=args.server,
        header_timeout_seconds=settings.body_timeout_seconds or 30.0,
    )
    return 0


def cmd_openapi_export(args: argparse.Namespace, settings: Settings) -> int:
    from wg_api.app import create_app

    schema = create_app(settings).openapi_schema.to_schema()
    text = (
        msgspec.json.format(msgspec.json.encode(schema, order="sorted"), indent=2).decode() + "\n"
    )
    output = Path(args.output)
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(text)
    _print({"written": str(output), "paths": len(schema.get("paths", {}))})
    return 0


def cmd_tenant_create(args: argparse.Namespace, settings: Settings) -> int:
    from wg_api.identity import service
    from wg_api.sharing.aliases import ALIAS_POLICY

    async def work(database: Any) -> Any:
        async with database.system_transaction() as session:
            return await service.create_tenant(
                session,
                slug=args.slug,
                name=args.name,
                kind=args.kind,
                timezone=args.timezone,
                country=args.country,
                aliases=args.alias,
                alias_policy=ALIAS_POLICY,
            )

    _print(asyncio.run(_with_database(settings, work)))
    return 0


def cmd_client_create(args: argparse.Namespace, settings: Settings) -> int:
    from wg_api.identity import service
    from wg_api.identity.scopes import parse_scopes

    async def work(database: Any) -> Any:
        async with database.system_transaction() as session:
            tenant_id = await service.tenant_for_cli(session, args.tenant)
        # The client is the tenant's row: written as the app role, bound to that tenant.
        async with database.transaction(tenant_id) as session:
            return await service.create_client(
                session,
                tenant_id=tenant_id,
                name=args.name,
                role=args.role,
                scopes=parse_scopes(args.scopes) if args.scopes is not None else None,
            )

    client = asyncio.run(_with_database(settings, work))
    _print({**vars(client), "token_url": f"{settings.public_url}/oauth/token"})
    return 0


def cmd_db_roles_sql(args: argparse.Namespace, settings: Settings) -> int:
    from sqlalchemy.engine import make_url

    from wg_api.platform.database import EMBEDDED_DATABASE
    from wg_api.platform.roles import roles_sql

    database = args.database or (
        make_url(settings.database_url).database if settings.database_url else None
    )
    sys.stdout.write(roles_sql(settings, database or EMBEDDED_DATABASE))
    return 0


def cmd_keys_rotate(args: argparse.Namespace, settings: Settings) -> int:
    from wg_api.identity.keys import SigningKeys

    keys = SigningKeys.rotate(settings.key_file)
    _print({"active_kid": keys.active_kid, "kids": [k.kid for k in keys.key_set.keys]})
    return 0


def cmd_demo(args: argparse.Namespace, settings: Settings) -> int:
    from wg_api.demo import seed_demo

    _print(asyncio.run(_with_database(settings, lambda db: seed_demo(db, settings))))
    return 0


# Each domain's scheduled work lives in its own `tasks` module, which registers its jobs with the
# worker's registry when imported.
DOMAIN_TASKS = (
    "wg_api.identity.tasks",
    "wg_api.meetings.tasks",
    "wg_api.integrations.webhooks.tasks",
    "wg_api.cosourcing.tasks",
)


def load_domain_tasks() -> None:
    for module in DOMAIN_TASKS:
        importlib.import_module(module)


def cmd_worker(args: argparse.Namespace, settings: Settings) -> int:
    from wg_api.integrations.webhooks.delivery import run_webhook_deliveries
    from wg_api.platform.jobs import run_worker
    from wg_api.platform.observability import configure_logging, start_metrics_server

    load_domain_tasks()

    async def work() -> None:
        # Webhook deliveries run beside the jobs (once run_worker has migrated) and stop when
        # they do (SIGTERM, SIGINT).
        stop = asyncio.Event()
        deliveries = asyncio.create_task(run_webhook_deliveries(settings, stop))
        try:
            await run_worker(settings)
        finally:
            stop.set()
            await deliveries

    configure_logging(settings.log_level)
    if settings.worker_metrics_port:
        start_metrics_server(settings.worker_metrics_port)
    asyncio.run(work())
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="wg-api", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)

    serve = sub.add_parser("serve", help="migrate, then serve the API")
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=8000)
    serve.add_argument(
        "--workers",
        type=int,
        default=0,
        help="server processes; default WG_WORKERS, else the CPUs this process may use",
    )
    serve.add_argument("--server", default="uvicorn", choices=SERVERS, help=argparse.SUPPRESS)
    serve.set_defaults(func=cmd_serve)

    migrate = sub.add_parser("migrate", help="create roles and migrate the database")
    migrate.add_argument("--revision", default="head")
    migrate.set_defaults(func=cmd_migrate)

    openapi = sub.add_parser("openapi", help="the OpenAPI document")
    openapi_sub = openapi.add_subparsers(dest="openapi_command", required=True)
    export = openapi_sub.add_parser("export", help="write the OpenAPI document")
    export.add_argument("--output", default=str(PROJECT_ROOT / "openapi" / "openapi.json"))
    export.set_defaults(func=cmd_openapi_export)

    tenant = sub.add_parser("tenant", help="tenants")
    tenant_sub = tenant.add_subparsers(dest="tenant_command", required=True)
    tenant_create = tenant_sub.add_parser("create", help="create a tenant")
    tenant_create.add_argument("--slug", required=True)
    tenant_create.add_argument("--name", required=True)
    tenant_create.add_argument("--kind", default="brand", choices=["brand", "facilitator"])
    tenant_create.add_argument("--timezone", default="Asia/Hong_Kong")
    tenant_create.add_argument(
        "--country", default=None, help="ISO 3166-1 alpha-2 (its public holidays); default none"
    )
    tenant_create.add_argument(
        "--alias",
        action="append",
        default=[],
        help="another name the tenant goes by, scrubbed from shared text (repeatable)",
    )
    tenant_create.set_defaults(func=cmd_tenant_create)

    client = sub.add_parser("client", help="API clients")
    client_sub = client.add_subparsers(dest="client_command", required=True)
    client_create = client_sub.add_parser("create", help="create an API client")
    client_create.add_argument("--tenant", required=True, help="the tenant's slug")
    client_create.add_argument("--name", required=True)
    client_create.add_argument("--role", default="admin", choices=["admin", "editor", "viewer"])
    client_create.add_argument(
        "--scopes", default=None, help="space-separated; default: the role's"
    )
    client_create.set_defaults(func=cmd_client_create)

    db = sub.add_parser("db", help="the database")
    db_sub = db.add_subparsers(dest="db_command", required=True)
    roles_sql = db_sub.add_parser(
        "roles-sql",
        help="print the SQL a DBA runs once to make the owner, app and system roles (plain SQL "
        "for psql, not JSON)",
    )
    roles_sql.add_argument(
        "--database", default=None, help="the database name; default: DATABASE_URL's, or wg"
    )
    roles_sql.set_defaults(func=cmd_db_roles_sql)

    keys = sub.add_parser("keys", help="signing keys")
    keys_sub = keys.add_subparsers(dest="keys_command", required=True)
    keys_sub.add_parser("rotate", help="make a new signing key active").set_defaults(
        func=cmd_keys_rotate
    )

    sub.add_parser("demo", help="seed the demo data set").set_defaults(func=cmd_demo)
    sub.add_parser(
        "worker", help="run scheduled jobs (one worker leads the scheduler, all run jobs)"
    ).set_defaults(func=cmd_worker)

    from wg_api import remote

    remote.add_parser(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    settings = get_settings()
    try:
        result: int = args.func(args, settings)
    except Exception as exc:
        from wg_api.platform.errors import ProblemError
        from wg_api.platform.roles import RoleCheckFailed

        if isinstance(exc, RoleCheckFailed):
            sys.stderr.write(f"{exc}\n")
            return 2
        if isinstance(exc, ProblemError):
            _print({"error": exc.kind, "detail": exc.detail, "errors": exc.errors})
            return 1
        raise
    return result


if __name__ == "__main__":
    sys.exit(main())
