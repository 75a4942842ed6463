"""GET /token/{integration_id}: internal callers get a valid access token (or static credentials). The same callers
reach GET /audit (the audit trail, shared/api/internal.py) and the events operator API under /events
(shared/api/events.py)."""

import flask
import functions_framework
from werkzeug.exceptions import HTTPException
from werkzeug.wrappers import Response as BaseResponse

from shared.api.internal import AUDIT_PATH, audit_page, fetch_token
from shared.bootstrap import check, container
from shared.http import framework_error, handle_errors, json_response, require_method

functions_framework.errorhandler(HTTPException)(framework_error)  # routing errors in the one shape
check(token_callers=True)  # settings, catalog and its callers, now: a misconfigured revision never becomes ready


@functions_framework.http
@handle_errors
def token_fetch(request: flask.Request) -> BaseResponse:
    app = container()
    if request.path == "/events" or request.path.startswith("/events/"):
        from shared.api.events import serve_events  # here: the token path's cold start does not load the API schemas

        return serve_events(request, app)
    require_method(request, "GET")
    body = audit_page(request, app) if request.path == AUDIT_PATH else fetch_token(request, app)
    return json_response(body, headers={"Cache-Control": "no-store", "Pragma": "no-cache"})
