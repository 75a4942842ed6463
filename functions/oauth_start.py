"""POST /oauth/start: begin connecting a provider account for the calling entity (an ID token's or a connect
session's). The same function serves the Connect experience: GET /connect (the hosted page and its assets),
GET /connect.js (the JS SDK), POST /connect/sessions and GET /connect/flows/{flow_id} (shared/connect_page)."""

import flask
import functions_framework
from werkzeug.exceptions import HTTPException
from werkzeug.wrappers import Response as BaseResponse

from shared.bootstrap import check, container
from shared.http import cors, framework_error, handle_errors, json_response, parse_json, preflight, require_method
from shared.schemas import StartBody

functions_framework.errorhandler(HTTPException)(framework_error)  # routing errors in the one shape
check(client_secrets=False)  # start only builds authorization URLs: client ids suffice


@functions_framework.http
@handle_errors
def oauth_start(request: flask.Request) -> BaseResponse:
    app = container()
    if request.path != "/oauth/start":
        from shared.connect_page.routes import serve_connect  # here: starting a flow loads no page or its schemas

        return serve_connect(request, app)
    if request.method == "OPTIONS":
        return preflight(request, app.settings.allowed_origins, "POST")
    require_method(request, "POST", "OPTIONS")
    caller = app.authenticator.caller(request)
    body = parse_json(request, StartBody).to_request()
    started = app.connect_flow.start(caller.entity_id, body, caller.session, request.headers.get("Origin"))
    response = json_response({"authorization_url": started.authorization_url, "expires_at": started.expires_at,
                              "flow_id": str(started.flow_id)}, headers={"Cache-Control": "no-store"})  # fmt: skip
    if started.binding is not None:
        response.set_cookie(
            started.cookie_name, started.binding, max_age=app.settings.oauth_state_ttl, path="/oauth/callback",
            secure=app.settings.base_url.startswith("https://"), httponly=True, samesite="Lax",
        )  # fmt: skip
    return cors(request, response, app.settings.allowed_origins)
