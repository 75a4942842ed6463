"""`broker`: the project's command line (migrate, serve)."""

from __future__ import annotations

import argparse
import logging
import os
import sys

from shared.config import get_settings
from shared.errors import ConfigurationError

TRY_NEXT = """
Integrations broker (local, embedded defaults) on {base}
  data:      {data_dir} (SQLite + embedded vault; delete it to start over)
  open:      {base}/ in a browser and click Connect (the demo provider works offline)
  try:       curl {base}/health
             curl {base}/ready
  connect:   curl -s -X POST {base}/oauth/start -H 'X-Entity-Id: user-1' -H 'Content-Type: application/json' \\
                  -d '{{"provider": "demo"}}'
  demo:      the `demo` provider's OAuth server runs at {base}/demo/oauth/ (client {client})
Stop with Ctrl-C.
"""


def _settings_for_local_run() -> None:
    from shared.local.demo_oauth import DEMO_CLIENT_ID, DEMO_CLIENT_SECRET

    os.environ.setdefault("DEMO_CLIENT_ID", DEMO_CLIENT_ID)
    os.environ.setdefault("DEMO_CLIENT_SECRET", DEMO_CLIENT_SECRET)


def cmd_migrate(_args: argparse.Namespace) -> int:
    from shared.adapters import schema
    from shared.bootstrap import container

    engine = container().engine
    schema.upgrade(engine)
    print(f"database at revision {schema.current_revision(engine)}")
    return 0


def cmd_serve(args: argparse.Namespace) -> int:
    from werkzeug.serving import run_simple

    from shared.bootstrap import container
    from shared.local.demo_oauth import DEMO_CLIENT_ID
    from shared.local.server import PathOnlyRequestHandler, create_local_app, start_local_scheduler

    app_container = container()
    settings = app_container.settings
    if settings.is_production:
        raise ConfigurationError("ENVIRONMENT: `broker serve` is the local run and refuses ENVIRONMENT=production")
    app = create_local_app(app_container)
    port = args.port or settings.port
    print(TRY_NEXT.format(base=f"http://127.0.0.1:{port}", data_dir=settings.local_data_dir, client=DEMO_CLIENT_ID))
    start_local_scheduler(app_container)
    run_simple("127.0.0.1", port, app, threaded=True, request_handler=PathOnlyRequestHandler)
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="broker", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("migrate", help="apply database migrations").set_defaults(run=cmd_migrate)
    serve = commands.add_parser("serve", help="serve every function locally at one address")
    serve.add_argument("--port", type=int, default=None, help="default: $PORT or 8080")
    serve.set_defaults(run=cmd_serve)
    args = parser.parse_args(argv)
    try:
        if args.command == "serve":
            _settings_for_local_run()
        logging.basicConfig(level=get_settings().log_level, format="%(levelname)s %(name)s: %(message)s")
        logging.getLogger("alembic.runtime.plugins").setLevel(logging.WARNING)
        return int(args.run(args))
    except ConfigurationError as exc:
        print(f"broker: {exc.message}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
