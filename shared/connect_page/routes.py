"""The connect endpoints the `oauth_start` function serves beside POST /oauth/start: the Connect page and its
assets, the SDK module, connect sessions (internal callers) and connect flows' status (the session or ID token)."""

from __future__ import annotations

import re
from pathlib import Path
from uuid import UUID

import flask
from werkzeug.wrappers import Response as BaseResponse

from shared.bootstrap import Container
from shared.connect_page import pages
from shared.errors import FlowNotFound, NotFound, SessionExpired, SessionInvalid
from shared.http import cors, handle_errors, json_response, parse_json, parse_query, preflight, require_method
from shared.schemas_connect import CreateSessionBody, FlowQuery
from shared.services.integrations import ListQuery

FLOW_PATH = re.compile(r"/connect/flows/([^/]+)")
ASSETS = {"connect.css": "text/css", "page.js": "text/javascript"}
SDK_FILE = Path(__file__).resolve().parents[2] / "sdk" / "js" / "src" / "connect.js"


def serve_connect(request: flask.Request, app: Container) -> BaseResponse:
    path = request.path
    if path == "/connect":
        require_method(request, "GET", "HEAD")
        return connect_page(request, app)
    if path == "/connect.js":
        require_method(request, "GET", "HEAD")
        return sdk_module()
    if path.startswith("/connect/assets/") and path.removeprefix("/connect/assets/") in ASSETS:
        require_method(request, "GET", "HEAD")
        name = path.removeprefix("/connect/assets/")
        return static(pages.asset(name), ASSETS[name])
    if path == "/connect/sessions":
        require_method(request, "POST")
        caller = app.internal_callers.caller(request)
        minted = app.connect_sessions.create(caller, parse_json(request, CreateSessionBody).to_request())
        body = {"token": minted.token, "expires_at": minted.expires_at, "connect_url": minted.connect_url}
        return json_response(body, 201, {"Cache-Control": "no-store"})
    match = FLOW_PATH.fullmatch(path)
    if match is not None:
        origins = app.settings.allowed_origins
        if request.method == "OPTIONS":
            return preflight(request, origins, "GET")
        response = handle_errors(lambda req: flow_status(req, app, match.group(1)))(request)
        return cors(request, response, origins) if isinstance(response, flask.Response) else response
    raise NotFound(f"no endpoint at {path[:100]!r}", code="not_found")


def flow_status(request: flask.Request, app: Container, raw_id: str) -> BaseResponse:
    require_method(request, "GET", "OPTIONS")
    caller = app.authenticator.caller(request)
    query = parse_query(request, FlowQuery)
    try:
        flow_id = UUID(raw_id)
    except ValueError:
        raise FlowNotFound("no connect flow with this id") from None
    view = app.connect_sessions.flow_status(caller.entity_id, flow_id, query.seconds)
    return json_response(view, headers={"Cache-Control": "no-store"})


def connect_page(request: flask.Request, app: Container) -> BaseResponse:
    base = app.settings.base_url
    try:
        session = app.connect_sessions.authenticate(request.args.get("session", ""))
    except SessionExpired:
        return pages.message_page(base, 401, "This link has expired",
                                  "Go back to the application and open the Connect page again.")  # fmt: skip
    except SessionInvalid:
        return pages.message_page(base, 401, "This link is not valid",
                                  "Go back to the application and open the Connect page from there.")  # fmt: skip
    service = app.integration_service
    integrations = service.list(session.entity_id, ListQuery(None, None, 100, None)).items
    if session.integration_id is not None:
        integrations = [i for i in integrations if i.id == session.integration_id]
    elif session.allowed_providers is not None:
        integrations = [i for i in integrations if session.permits(i.provider)]
    return pages.connect_page(base, session, service.providers(), integrations, app.clock.now())


def static(body: bytes, mimetype: str) -> flask.Response:
    response = flask.Response(body, mimetype=mimetype)
    response.headers["Cache-Control"] = "public, max-age=300"
    response.headers["X-Content-Type-Options"] = "nosniff"
    return response


def sdk_module() -> flask.Response:
    """The JS SDK as an ES module: public code, imported cross-origin by the product's pages (CORS, no cookies)."""
    response = static(SDK_FILE.read_bytes(), "text/javascript")
    response.headers["Access-Control-Allow-Origin"] = "*"
    response.headers["Cross-Origin-Resource-Policy"] = "cross-origin"
    return response
