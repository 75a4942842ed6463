"""The project's own demo authorization server (rotating refresh tokens, a used one rejected), served over HTTP in
this process, so tests can mint many grants directly."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager

import flask
from werkzeug.serving import make_server

from shared.domain.clock import SystemClock
from shared.local.demo_oauth import DemoAuthServer
from shared.local.demo_routes import demo_blueprint
from tests.support.postgres import free_port


@contextmanager
def serving_demo_provider() -> Iterator[tuple[DemoAuthServer, str]]:
    """The server and its base URL, for as long as the block runs."""
    server = DemoAuthServer(SystemClock())
    app = flask.Flask("demo-provider")
    app.register_blueprint(demo_blueprint(server))
    port = free_port()
    http = make_server("127.0.0.1", port, app, threaded=True)
    thread = threading.Thread(target=http.serve_forever, daemon=True)
    thread.start()
    try:
        yield server, f"http://127.0.0.1:{port}"
    finally:
        http.shutdown()
