"""GET /token/{integration_id}: internal callers get a valid access token (or static credentials). The same callers
reach the events operator API under /events (shared/api/events.py)."""

import flask
import functions_framework
from werkzeug.exceptions import HTTPException
from werkzeug.wrappers import Response as BaseResponse

from shared.api.events import serve_events
from shared.bootstrap import check, container
from shared.http import framework_error, handle_errors, json_response, require_method
from shared.schemas_internal import token_options, token_target

functions_framework.errorhandler(HTTPException)(framework_error)  # routing errors in the one shape
check(token_callers=True)  # settings, catalog and its callers, now: a misconfigured revision never becomes ready


@functions_framework.http
@handle_errors
def token_fetch(request: flask.Request) -> BaseResponse:
    app = container()
    if request.path == "/events" or request.path.startswith("/events/"):
        return serve_events(request, app)
    require_method(request, "GET")
    caller = app.internal_callers.caller(request)
    min_ttl, force = token_options(request)
    body = app.token_service.fetch(token_target(request), caller, min_ttl=min_ttl, force=force)
    return json_response(body, headers={"Cache-Control": "no-store", "Pragma": "no-cache"})
