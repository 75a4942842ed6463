"""POST /oauth/start: begin connecting a provider account for the calling entity."""

import flask
import functions_framework
from werkzeug.exceptions import HTTPException

from shared.bootstrap import check, container
from shared.http import cors, framework_error, handle_errors, json_response, parse_json, preflight, require_method
from shared.schemas import StartBody

functions_framework.errorhandler(HTTPException)(framework_error)  # routing errors in the one shape
check(client_secrets=False)  # start only builds authorization URLs: client ids suffice


@functions_framework.http
@handle_errors
def oauth_start(request: flask.Request) -> flask.Response:
    app = container()
    if request.method == "OPTIONS":
        return preflight(request, app.settings.allowed_origins, "POST")
    require_method(request, "POST", "OPTIONS")
    entity_id = app.authenticator.entity_id(request)
    started = app.connect_flow.start(entity_id, parse_json(request, StartBody).to_request())
    response = json_response({"authorization_url": started.authorization_url, "expires_at": started.expires_at})
    response.headers["Cache-Control"] = "no-store"
    if started.binding is not None:
        response.set_cookie(
            started.cookie_name, started.binding, max_age=app.settings.oauth_state_ttl, path="/oauth/callback",
            secure=app.settings.base_url.startswith("https://"), httponly=True, samesite="Lax",
        )  # fmt: skip
    return cors(request, response, app.settings.allowed_origins)
