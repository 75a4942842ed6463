"""/integrations and /providers: the frontend's integrations API (one function, routed by path)."""

import flask
import functions_framework
from werkzeug.wrappers import Response as BaseResponse

from shared.api.integrations import ENDPOINTS
from shared.api.router import serve
from shared.bootstrap import check, container
from shared.http import handle_errors

check()  # settings and catalog, now: a misconfigured revision never becomes ready


@functions_framework.http
@handle_errors
def integrations(request: flask.Request) -> BaseResponse:
    return serve(request, container(), ENDPOINTS)
