"""HTTP helpers shared by every entry point, and the one place that maps errors to responses.

Error body, for every function: `{"error": {"code": "<stable code>", "message": "<what was expected/found>"}}`.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from functools import wraps
from typing import Any

import flask

from shared.errors import BrokerError

log = logging.getLogger("broker.http")

Handler = Callable[[flask.Request], flask.Response]


def json_response(body: Any, status: int = 200, headers: dict[str, str] | None = None) -> flask.Response:
    response = flask.Response(json.dumps(body, default=str), status=status, mimetype="application/json")
    for name, value in (headers or {}).items():
        response.headers[name] = value
    return response


def error_response(error: BrokerError) -> flask.Response:
    headers = {"Cache-Control": "no-store"}
    retry_after = error.details.get("retry_after")
    if retry_after is not None:
        headers["Retry-After"] = str(int(retry_after))
    body = {"error": {"code": error.code, "message": error.message}}
    return json_response(body, error.http_status, headers)


def handle_errors(handler: Handler) -> Handler:
    """Wrap an entry point: domain errors become their response; anything else a plain 500 with no trace."""

    @wraps(handler)
    def wrapper(request: flask.Request) -> flask.Response:
        try:
            return handler(request)
        except BrokerError as error:
            if error.http_status >= 500:
                log.error("request failed: %s (%s)", error.code, error.message)
            return error_response(error)
        except Exception:
            log.exception("unhandled error")  # the trace goes to the log, never to the caller
            return error_response(BrokerError("the broker failed to handle this request"))

    return wrapper
