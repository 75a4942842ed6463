"""`broker function`: serve one function the way functions-framework does, plus the probes and a graceful SIGTERM.

functions-framework runs gunicorn (one worker, `THREADS` threads); gunicorn resets signal handlers in its worker,
so the handler that lets the refresh engine drain (shared.lifecycle) is installed by a `post_worker_init` hook.
Target and source come from `--target`/`--source` or, as with functions-framework, FUNCTION_TARGET and
FUNCTION_SOURCE; the port from PORT. Every function also answers `/health` and `/ready` (shared.probes), so the
entry points in functions/ stay as they are. The function module is imported before gunicorn forks its worker,
then the collector is frozen (`gc.freeze()`).

The cyclic collector is off from the process's start (`broker`'s command line turns it off before its imports)
until the first answer to a request other than a probe: start-up and the first request's deferred imports
allocate long-lived objects only (modules, classes, clients), which a collection would scan in vain, again and
again (about a sixth of the imports' time). Then everything alive is frozen and collecting starts.
"""

from __future__ import annotations

import gc
import os

import flask

PROBE_PATHS = ("/health", "/ready")  # Cloud Run's startup probe asks before the first request
# Cloud Run allows about 10 s between SIGTERM and SIGKILL: finish in-flight requests within that.
GRACEFUL_TIMEOUT = 9


def create_function_app(target: str, source: str) -> flask.Flask:
    """functions-framework's app for one function, with `/health` and `/ready` in front of its routes."""
    from functions_framework import create_app

    from shared.bootstrap import container
    from shared.probes import add_probe_routes

    app: flask.Flask = create_app(target, source)  # type: ignore[no-untyped-call]
    app.teardown_request(_collect_after_first_answer)
    return add_probe_routes(app, container)


def _collect_after_first_answer(_error: BaseException | None) -> None:
    if not gc.isenabled() and flask.request.path not in PROBE_PATHS:
        gc.freeze()
        gc.enable()


def serve_function(target: str | None, source: str | None, host: str, port: int) -> None:
    from functions_framework._http.gunicorn import GunicornApplication

    from shared.lifecycle import gunicorn_post_worker_init

    target = target or os.environ.get("FUNCTION_TARGET")
    if not target:
        raise SystemExit("broker function: --target or FUNCTION_TARGET is required")
    source = source or os.environ.get("FUNCTION_SOURCE") or f"functions/{target}.py"
    app = create_function_app(target, source)
    # Everything imported so far lives as long as the process: keep the collector from scanning it again and
    # again, and from touching (copying) its pages in the forked worker.
    gc.freeze()
    server = GunicornApplication(  # type: ignore[no-untyped-call]
        app, host, port, False, post_worker_init=gunicorn_post_worker_init, graceful_timeout=GRACEFUL_TIMEOUT
    )
    server.run()
