"""`broker`: the project's command line (migrate, serve, function, scheduler, sweep-secrets)."""

from __future__ import annotations

import argparse
import os
import sys

from shared.config import get_settings
from shared.errors import ConfigurationError
from shared.logs import configure_logging

TRY_NEXT = """
Integrations broker (local, embedded defaults) on {base}
  data:      {data_dir} (SQLite + embedded vault; delete it to start over)
  open:      {base}/ in a browser and click Connect (the demo provider works offline)
  try:       curl {base}/health
             curl {base}/ready
  connect:   curl -s -X POST {base}/oauth/start -H 'X-Entity-Id: user-1' -H 'Content-Type: application/json' \\
                  -d '{{"provider": "demo"}}'
  list:      curl -s {base}/integrations -H 'X-Entity-Id: user-1'    (API contract: {base}/openapi.json)
  demo:      the `demo` provider's OAuth server runs at {base}/demo/oauth/ (client {client})
Stop with Ctrl-C.
"""


def _settings_for_local_run() -> None:
    from shared.local.demo_oauth import DEMO_CLIENT_ID, DEMO_CLIENT_SECRET

    os.environ.setdefault("DEMO_CLIENT_ID", DEMO_CLIENT_ID)
    os.environ.setdefault("DEMO_CLIENT_SECRET", DEMO_CLIENT_SECRET)


def cmd_migrate(args: argparse.Namespace) -> int:
    from shared.adapters import schema
    from shared.adapters.db import NOT_REACHABLE_YET, wait_for_database
    from shared.bootstrap import container

    engine = container().engine
    try:
        wait_for_database(engine, args.connect_timeout)
    except NOT_REACHABLE_YET as exc:
        print(f"broker: the database did not answer within {args.connect_timeout:g} s: {type(exc).__name__}",
              file=sys.stderr)  # fmt: skip
        return 1
    schema.upgrade(engine)
    print(f"database at revision {schema.current_revision(engine)}")
    if args.grant_to:
        from shared.ops import grant_app_privileges

        granted = grant_app_privileges(engine, args.grant_to)
        print(f"granted the application's privileges to {', '.join(granted) or 'nobody (not PostgreSQL)'}")
    return 0


def cmd_serve(args: argparse.Namespace) -> int:
    from werkzeug.serving import run_simple

    from shared.bootstrap import container, validate
    from shared.lifecycle import drain_on_sigterm
    from shared.local.demo_oauth import DEMO_CLIENT_ID
    from shared.local.server import PathOnlyRequestHandler, create_local_app, start_local_scheduler

    if get_settings().is_production:
        raise ConfigurationError("ENVIRONMENT: `broker serve` is the local run and refuses ENVIRONMENT=production")
    validate(token_callers=True)  # the catalog and the client credentials, as each function checks them
    app_container = container()
    settings = app_container.settings
    app = create_local_app(app_container)
    port = args.port or settings.port
    print(TRY_NEXT.format(base=f"http://127.0.0.1:{port}", data_dir=settings.local_data_dir, client=DEMO_CLIENT_ID))
    start_local_scheduler(app_container)
    drain_on_sigterm()
    run_simple("127.0.0.1", port, app, threaded=True, request_handler=PathOnlyRequestHandler)
    return 0


def cmd_function(args: argparse.Namespace) -> int:
    from shared.function_server import serve_function

    serve_function(args.target, args.source, args.host, args.port or get_settings().port)
    return 0


def cmd_scheduler(args: argparse.Namespace) -> int:
    from google.api_core import exceptions

    from shared.ops import build_scheduler_client, job_name, scheduler_job

    name = job_name(args.job, args.project or get_settings().gcp_project, args.location)
    try:
        status = scheduler_job(build_scheduler_client(args.endpoint), args.action, name)
    except exceptions.GoogleAPICallError as exc:
        print(f"broker: scheduler {args.action} {name}: {exc.message}", file=sys.stderr)
        return 1
    if args.action == "run":
        print("run dispatched: `broker scheduler status` shows its result once it has finished")
    print("\n".join(status.lines()))
    return 0


def cmd_sweep(args: argparse.Namespace) -> int:
    from datetime import timedelta

    from shared.bootstrap import container

    app = container()
    report = app.housekeeping.sweep(limit=None, min_age=timedelta(hours=args.min_age_hours), dry_run=args.dry_run)
    if args.dry_run:
        print(f"would revoke and delete {len(report.orphans)} orphan secret(s)" + _names(report.orphans))
        return 0
    print(f"deleted {len(report.deleted)} orphan secret(s), {report.revoked} grant(s) revoked" + _names(report.deleted))
    if report.kept:
        print(f"kept {len(report.kept)}: the provider could not revoke now (run again later)" + _names(report.kept))
    return 0


def _names(names: list[str]) -> str:
    return "".join(f"\n  {name}" for name in names)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="broker", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    migrate = commands.add_parser("migrate", help="apply database migrations")
    migrate.add_argument(
        "--grant-to", action="append", default=[], metavar="DB_USER",
        help="then let this database user read and write the tables (repeat; PostgreSQL)",
    )  # fmt: skip
    migrate.add_argument(
        "--connect-timeout", type=float, default=0, metavar="SECONDS",
        help="wait up to this long for the database to answer, retrying with backoff (default 0: try once)",
    )  # fmt: skip
    migrate.set_defaults(run=cmd_migrate)
    serve = commands.add_parser("serve", help="serve every function locally at one address")
    serve.add_argument("--port", type=int, default=None, help="default: $PORT or 8080")
    serve.set_defaults(run=cmd_serve)
    function = commands.add_parser("function", help="serve one function (as deployed: functions-framework, gunicorn)")
    function.add_argument("--target", default=None, help="the function (default: $FUNCTION_TARGET)")
    function.add_argument(
        "--source", default=None, help="its file (default: $FUNCTION_SOURCE or functions/<target>.py)"
    )
    function.add_argument("--host", default="0.0.0.0", help="default: 0.0.0.0 (all interfaces, as on Cloud Run)")  # noqa: S104
    function.add_argument("--port", type=int, default=None, help="default: $PORT or 8080")
    function.set_defaults(run=cmd_function)
    scheduler = commands.add_parser("scheduler", help="the refresh job in Cloud Scheduler: status, run, pause, resume")
    scheduler.add_argument("action", choices=["status", "run", "pause", "resume"])
    scheduler.add_argument("--job", required=True, help="the full name (terraform output refresh_job) or an id")
    scheduler.add_argument("--project", default=None, help="with a job id: the project (default: $GCP_PROJECT)")
    scheduler.add_argument("--location", default=None, help="with a job id: the region")
    scheduler.add_argument("--endpoint", default=None, help=argparse.SUPPRESS)  # a local Cloud Scheduler (tests)
    scheduler.set_defaults(run=cmd_scheduler)
    sweep = commands.add_parser("sweep-secrets", help="revoke and delete master secrets that no integration points at")
    sweep.add_argument(
        "--min-age-hours", type=float, default=1.0, help="only secrets created this long ago (default 1)"
    )
    sweep.add_argument("--dry-run", action="store_true", help="list them, delete nothing")
    sweep.set_defaults(run=cmd_sweep)
    args = parser.parse_args(argv)
    try:
        if args.command == "serve":
            _settings_for_local_run()
        configure_logging(get_settings())
        return int(args.run(args))
    except ConfigurationError as exc:
        print(f"broker: {exc.message}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
