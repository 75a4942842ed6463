"""`broker serve` (every function at one local address) and `broker function` (one function, as deployed)."""

from __future__ import annotations

import argparse
import os
from typing import Any

TRY_NEXT = """
Integrations broker (local, embedded defaults) on {base}
  data:      {data_dir} (SQLite + embedded vault; delete it to start over)
  open:      {base}/ in a browser: a sample product page connects the demo provider with the JS SDK (offline)
  try:       curl {base}/health
             curl {base}/ready
  connect:   curl -s -X POST {base}/oauth/start -H 'X-Entity-Id: user-1' -H 'Content-Type: application/json' \\
                  -d '{{"provider": "demo"}}'
  list:      curl -s {base}/integrations -H 'X-Entity-Id: user-1'    (API contract: {base}/openapi.json)
  demo:      the `demo` provider's OAuth server runs at {base}/demo/oauth/ (client {client})
Stop with Ctrl-C.
"""


def register(commands: Any) -> None:
    serve = commands.add_parser("serve", help="serve every function locally at one address")
    serve.add_argument("--port", type=int, default=None, help="default: $PORT or 8080")
    serve.set_defaults(run=run_serve, before_settings=settings_for_local_run)
    function = commands.add_parser("function", help="serve one function (as deployed: functions-framework, gunicorn)")
    function.add_argument("--target", default=None, help="the function (default: $FUNCTION_TARGET)")
    function.add_argument(
        "--source", default=None, help="its file (default: $FUNCTION_SOURCE or functions/<target>.py)"
    )
    function.add_argument("--host", default="0.0.0.0", help="default: 0.0.0.0 (all interfaces, as on Cloud Run)")  # noqa: S104
    function.add_argument("--port", type=int, default=None, help="default: $PORT or 8080")
    function.set_defaults(run=run_function)


def settings_for_local_run() -> None:
    from shared.local.demo_oauth import DEMO_CLIENT_ID, DEMO_CLIENT_SECRET

    os.environ.setdefault("DEMO_CLIENT_ID", DEMO_CLIENT_ID)
    os.environ.setdefault("DEMO_CLIENT_SECRET", DEMO_CLIENT_SECRET)


def run_serve(args: argparse.Namespace) -> int:
    from werkzeug.serving import run_simple

    from shared.bootstrap import container, validate
    from shared.config import get_settings
    from shared.errors import ConfigurationError
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


def run_function(args: argparse.Namespace) -> int:
    from shared.config import get_settings
    from shared.function_server import serve_function

    serve_function(args.target, args.source, args.host, args.port or get_settings().port)
    return 0
