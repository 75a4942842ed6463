"""GET /oauth/callback: the provider sends the browser back here; finish the flow and redirect to the app (a popup
flow ends on the result page, which posts the outcome to its opener)."""

import flask
import functions_framework
from markupsafe import escape
from werkzeug.exceptions import HTTPException
from werkzeug.wrappers import Response as WerkzeugResponse

from shared.bootstrap import check, container
from shared.connect_page.pages import result_page
from shared.domain.oauth import digest
from shared.http import framework_error, handle_errors, require_method
from shared.services.connect import StateRefused, binding_cookie_name

functions_framework.errorhandler(HTTPException)(framework_error)  # routing errors in the one shape
check()  # settings and catalog, now: a misconfigured revision never becomes ready

PAGE = "<!doctype html><title>Connection failed</title><h1>Connection failed</h1><p>{}</p>"


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
        page = flask.Response(PAGE.format(escape(refused.message)), 400, mimetype="text/html")
        page.headers["X-Error-Code"] = refused.code
        return page
    if ending.message is not None and ending.origin is not None:
        response: WerkzeugResponse = result_page(container().settings.base_url, ending.message, ending.origin)
    else:
        response = flask.redirect(ending.location, 302)
    response.headers["Cache-Control"] = "no-store"
    response.headers["Referrer-Policy"] = "no-referrer"  # the callback URL carries the code
    if "state" in params:
        response.delete_cookie(binding_cookie_name(digest(params["state"])), path="/oauth/callback")
    return response
