"""GET /oauth/callback: the provider sends the browser back here; finish the flow and redirect to the app (a popup
flow ends on the result page, which posts the outcome to its opener)."""

import flask
import functions_framework
from werkzeug.exceptions import HTTPException
from werkzeug.wrappers import Response as WerkzeugResponse

from shared.bootstrap import check, container
from shared.connect_page.pages import ending_response, refused_page
from shared.domain.oauth import digest
from shared.http import framework_error, handle_errors, require_method
from shared.services.connect import StateRefused, binding_cookie_name

functions_framework.errorhandler(HTTPException)(framework_error)  # routing errors in the one shape
check()  # settings and catalog, now: a misconfigured revision never becomes ready


@functions_framework.http
@handle_errors
def oauth_callback(request: flask.Request) -> WerkzeugResponse:
    require_method(request, "GET")
    params = {
        key: request.args.get(key, "")
        for key in ("state", "code", "iss", "error", "error_description")
        if key in request.args
    }
    try:
        ending = container().connect_flow.end(params, dict(request.cookies))
    except StateRefused as refused:
        return refused_page(refused.message, refused.code)
    response = ending_response(container().settings.base_url, ending)  # a redirect, or a popup's result page
    response.headers["Cache-Control"] = "no-store"
    response.headers["Referrer-Policy"] = "no-referrer"  # the callback URL carries the code
    if "state" in params:
        response.delete_cookie(binding_cookie_name(digest(params["state"])), path="/oauth/callback")
    return response
