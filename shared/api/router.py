"""A tiny router for a function that serves several paths (Cloud Run hands every path to the one function)."""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from uuid import UUID

import flask
from werkzeug.wrappers import Response as BaseResponse

from shared.api.session_scope import check_session_scope
from shared.bootstrap import Container
from shared.errors import NotFound
from shared.http import cors, handle_errors, method_not_allowed, preflight

Handler = Callable[[flask.Request, Container, str, dict[str, str]], BaseResponse]


@dataclass(frozen=True)
class Endpoint:
    method: str
    path: str  # `/integrations/{integration_id}`: each `{name}` matches one path segment
    handler: Handler

    @property
    def pattern(self) -> re.Pattern[str]:
        return re.compile(re.sub(r"\\\{(\w+)\\\}", r"(?P<\1>[^/]+)", re.escape(self.path)))


def serve(request: flask.Request, app: Container, endpoints: Sequence[Endpoint]) -> BaseResponse:
    """Preflight, route, authenticate, handle; errors in the one shape; CORS for listed origins on every answer."""
    origins = app.settings.allowed_origins
    if request.method == "OPTIONS":
        methods = sorted({e.method for e in endpoints})
        return preflight(request, origins, ", ".join(methods))
    response = handle_errors(lambda req: _dispatch(req, app, endpoints))(request)
    response.headers.setdefault("Cache-Control", "no-store")
    if isinstance(response, flask.Response):
        return cors(request, response, origins)
    return response


def _dispatch(request: flask.Request, app: Container, endpoints: Sequence[Endpoint]) -> BaseResponse:
    matches = [(e, m) for e in endpoints if (m := e.pattern.fullmatch(request.path))]
    if not matches:
        raise NotFound(f"no endpoint at {request.path[:100]!r}", code="not_found")
    for endpoint, match in matches:
        if endpoint.method == request.method:
            caller = app.authenticator.caller(request)
            check_session_scope(caller, endpoint.method, endpoint.path, request, app.catalog)
            return endpoint.handler(request, app, caller.entity_id, match.groupdict())
    raise method_not_allowed(request, {"OPTIONS", *(e.method for e, _ in matches)})  # preflights on every path


def integration_id(params: dict[str, str]) -> UUID:
    """The path's integration id; a malformed one is simply not found (it cannot name anyone's integration)."""
    try:
        return UUID(params["integration_id"])
    except ValueError:
        raise NotFound("integration not found", code="integration_not_found") from None
