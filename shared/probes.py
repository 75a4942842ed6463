"""`/health` and `/ready` on every function (and on `broker serve`), answered before the function's own routes.

`/health` is Cloud Run's startup and liveness probe: it touches nothing (no database, no secret store, no settings
beyond those `broker function` validated at start-up), so a database outage never restarts healthy instances.
`/ready` is for operators: it checks the database and the secret store with this instance's own identity.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

import flask
from werkzeug.wrappers import Response as BaseResponse

from shared.http import handle_errors, json_response, require_method
from shared.services.health import readiness

if TYPE_CHECKING:
    from shared.bootstrap import Container

PROBE_METHODS = ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"]  # others answer 405 in our shape
NO_STORE = {"Cache-Control": "no-store"}


ALLOWED = ("GET", "HEAD", "OPTIONS")


def _options() -> BaseResponse:
    return flask.Response(status=204, headers={"Allow": ", ".join(ALLOWED)})


@handle_errors
def health(request: flask.Request) -> BaseResponse:
    require_method(request, *ALLOWED)
    if request.method == "OPTIONS":
        return _options()
    return json_response({"status": "ok"}, headers=NO_STORE)


def ready(request: flask.Request, container: Container) -> BaseResponse:
    require_method(request, *ALLOWED)
    if request.method == "OPTIONS":
        return _options()
    checks = readiness(container.engine, container.secret_store)
    ok = all(value == "ok" for value in checks.values())
    body = {"status": "ok" if ok else "unavailable", "checks": checks}
    return json_response(body, 200 if ok else 503, headers=NO_STORE)


def add_probe_routes(app: flask.Flask, container: Callable[[], Container]) -> flask.Flask:
    """Register the probes on `app`: static rules, so they win over functions-framework's catch-all path."""
    ready_view = handle_errors(lambda request: ready(request, container()))
    app.add_url_rule("/health", "broker_health", lambda: health(flask.request), methods=PROBE_METHODS)
    app.add_url_rule("/ready", "broker_ready", lambda: ready_view(flask.request), methods=PROBE_METHODS)
    return app
