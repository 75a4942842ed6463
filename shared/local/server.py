"""One Flask app serving every function that exists at one address, for `make run` and tests."""

from __future__ import annotations

import importlib
import logging
import re
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from importlib import resources

import flask
from werkzeug.exceptions import HTTPException
from werkzeug.serving import WSGIRequestHandler
from werkzeug.wrappers import Response as BaseResponse

from shared.bootstrap import Container
from shared.http import Handler, framework_error, json_response
from shared.local.demo_oauth import DemoAuthServer
from shared.local.demo_routes import demo_blueprint
from shared.openapi import openapi_document
from shared.probes import add_probe_routes
from shared.services.refresh_job import run_refresh_job

log = logging.getLogger("broker.local")
ENTITY_RE = re.compile(r"[\x21-\x7e]{1,255}")  # fullmatch, as the authenticators


@dataclass(frozen=True)
class Route:
    rule: str
    module: str  # functions.<name>: the deployed entry point, served here unchanged
    target: str
    methods: tuple[str, ...]  # what the function serves (the OpenAPI test compares); every method reaches it


# As functions-framework does in a deployment: the function itself answers methods it does not serve (405, Allow).
EVERY_METHOD = ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "TRACE"]


# Each function's routes as the load balancer maps them in a deployment; entries arrive with the functions.
INTEGRATION_METHODS = ("GET", "PATCH", "DELETE", "OPTIONS")
ROUTES: tuple[Route, ...] = (
    Route("/oauth/start", "functions.oauth_start", "oauth_start", ("POST", "OPTIONS")),
    Route("/oauth/callback", "functions.oauth_callback", "oauth_callback", ("GET",)),
    Route("/connect", "functions.oauth_start", "oauth_start", ("GET",)),
    Route("/connect.js", "functions.oauth_start", "oauth_start", ("GET",)),
    Route("/connect/assets/<asset>", "functions.oauth_start", "oauth_start", ("GET",)),
    Route("/connect/sessions", "functions.oauth_start", "oauth_start", ("POST",)),
    Route("/connect/flows/<flow_id>", "functions.oauth_start", "oauth_start", ("GET", "OPTIONS")),
    Route("/integrations", "functions.integrations", "integrations", ("GET", "POST", "OPTIONS")),
    Route("/integrations/<integration_id>", "functions.integrations", "integrations", INTEGRATION_METHODS),
    Route("/integrations/<integration_id>/test", "functions.integrations", "integrations", ("POST", "OPTIONS")),
    Route("/integrations/<integration_id>/sync", "functions.integrations", "integrations", ("POST", "OPTIONS")),
    Route("/providers", "functions.integrations", "integrations", ("GET", "OPTIONS")),
    Route("/token/<integration_id>", "functions.token_fetch", "token_fetch", ("GET",)),
    Route("/audit", "functions.token_fetch", "token_fetch", ("GET",)),
    Route("/refresh", "functions.token_refresh", "token_refresh", ("POST",)),
    Route("/refresh/dispatch", "functions.token_refresh", "token_refresh", ("POST",)),
    Route("/refresh/shard", "functions.token_refresh", "token_refresh", ("POST",)),
    Route("/dispatch", "functions.token_refresh", "token_refresh", ("POST",)),
    Route("/events", "functions.token_fetch", "token_fetch", ("GET",)),
    Route("/events/destinations", "functions.token_fetch", "token_fetch", ("GET",)),
    Route("/events/replay", "functions.token_fetch", "token_fetch", ("POST",)),
    Route("/events/<event_id>", "functions.token_fetch", "token_fetch", ("GET",)),
)
LOCAL_DISPATCH_INTERVAL = 1.0  # seconds: `make run` delivers an event within a few seconds of its change


def create_local_app(container: Container, routes: tuple[Route, ...] = ROUTES) -> flask.Flask:
    app = flask.Flask("broker-local")
    app.config["MAX_CONTENT_LENGTH"] = 64 * 1024

    @app.get("/")
    def home() -> flask.Response:
        page = resources.files("shared.local").joinpath("home.html").read_text(encoding="utf-8")
        return flask.Response(page, mimetype="text/html")

    @app.post("/demo/session")
    def demo_session() -> flask.Response:
        """The sample page's "backend": a connect session for the typed entity (a real product's backend calls
        POST /connect/sessions with its API key instead)."""
        from shared.services.connect_sessions import SessionRequest

        entity = str((flask.request.get_json(silent=True) or {}).get("entity_id", ""))
        if not ENTITY_RE.fullmatch(entity):
            return json_response({"error": {"code": "validation_failed", "message": "entity_id: 1-255 printable"}}, 422)
        origin = container.settings.base_url.rstrip("/")
        minted = container.connect_sessions.create("dev:sample-page", SessionRequest(entity, origin))
        return json_response({"token": minted.token, "expires_at": minted.expires_at})

    add_probe_routes(app, lambda: container)
    app.register_blueprint(demo_blueprint(DemoAuthServer(container.clock)))
    for route in routes:
        handler = getattr(importlib.import_module(route.module), route.target)
        app.add_url_rule(route.rule, f"{route.target} {route.rule}", _view(handler), methods=EVERY_METHOD)

    @app.get("/openapi.json")
    def openapi() -> flask.Response:
        return json_response(openapi_document())

    app.register_error_handler(HTTPException, framework_error)

    return app


def _view(handler: Handler) -> Callable[..., BaseResponse]:
    def view(**_path: str) -> BaseResponse:
        return handler(flask.request)

    return view


class PathOnlyRequestHandler(WSGIRequestHandler):
    """Access log lines without query strings: the callback's query carries the authorization code and state."""

    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        path = self.path.split("?", 1)[0]
        self.log("info", '"%s %s" %s %s', self.command, path, code, size)


def start_local_dispatcher(container: Container, interval: float = LOCAL_DISPATCH_INTERVAL) -> threading.Thread | None:
    """Stand in for the events schedule during `make run`: dispatch every `interval` seconds, in process, when
    WEBHOOK_URLS or PUBSUB_TOPIC give events somewhere to go."""
    if not container.event_sinks:
        return None

    def loop() -> None:
        while True:
            time.sleep(interval)
            counts = container.dispatcher.run_safely(budget=5.0)
            if any(counts.get(key) for key in ("delivered", "retried", "dead", "error")):
                log.info("events: %s", counts)

    thread = threading.Thread(target=loop, name="local-dispatcher", daemon=True)
    thread.start()
    return thread


def start_local_scheduler(container: Container) -> threading.Thread | None:
    """Stand in for Cloud Scheduler during `make run`: run the refresh job (and its housekeeping) every
    LOCAL_REFRESH_INTERVAL seconds, and the event dispatcher every second."""
    start_local_dispatcher(container)
    interval = container.settings.local_refresh_interval
    if interval <= 0:
        return None

    def loop() -> None:
        while True:
            time.sleep(interval)
            try:
                counts = run_refresh_job(
                    container.refresh_store, container.refresher, container.clock, container.job_settings
                )
                done = container.housekeeping.run()
                if counts["claimed"] or any(any(n for n in part.values()) for part in done.values()):
                    log.info("refresh job: %s", {**counts, **done})
            except Exception:  # keep the local scheduler alive; the next run retries
                log.exception("refresh job failed")

    thread = threading.Thread(target=loop, name="local-scheduler", daemon=True)
    thread.start()
    return thread
