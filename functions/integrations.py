"""/integrations and /providers: the frontend's integrations API (one function, routed by path)."""

import flask
import functions_framework
from werkzeug.exceptions import HTTPException
from werkzeug.wrappers import Response as BaseResponse

from shared.api.integrations import ENDPOINTS
from shared.api.router import serve
from shared.bootstrap import check, container
from shared.http import framework_error, handle_errors

functions_framework.errorhandler(HTTPException)(framework_error)  # routing errors in the one shape
check()  # settings and catalog, now: a misconfigured revision never becomes ready


@functions_framework.http
@handle_errors
def integrations(request: flask.Request) -> BaseResponse:
    return serve(request, container(), ENDPOINTS)
