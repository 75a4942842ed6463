"""The project's own demo authorization server (rotating refresh tokens, a used one rejected), served over HTTP in
this process, so tests can mint many grants directly."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import flask
from werkzeug.serving import make_server

from shared.domain.clock import SystemClock
from shared.local.demo_oauth import DEMO_CLIENT_ID, DEMO_CLIENT_SECRET, DemoAuthServer
from shared.local.demo_routes import demo_blueprint
from tests.support.broker_env import DATA_KEY
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


def demo_broker_env(base: str, database_url: str, directory: Path, **extra: str) -> dict[str, str]:
    """The broker's environment with one provider, `remote-demo` (rotating), served at `base`: secrets in the
    database backend, the demo client's credentials, and `extra` settings."""
    providers = directory / "providers.yaml"
    providers.write_text(
        "providers:\n  remote-demo:\n    display_name: Remote demo\n    auth_mode: oauth2\n"
        f"    authorization_url: {base}/demo/oauth/authorize\n    token_url: {base}/demo/oauth/token\n"
        "    refresh_token_rotates: true\n",
        encoding="utf-8",
    )
    return {
        "DATABASE_URL": database_url, "SECRET_BACKEND": "database", "DATA_KEYS": f"1:{DATA_KEY}",
        "PROVIDERS_FILE": str(providers), "REMOTE_DEMO_CLIENT_ID": DEMO_CLIENT_ID,
        "REMOTE_DEMO_CLIENT_SECRET": DEMO_CLIENT_SECRET, **extra,
    }  # fmt: skip
