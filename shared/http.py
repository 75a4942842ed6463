"""HTTP helpers shared by every entry point, and the one place that maps errors to responses.

Error body, for every function: `{"error": {"code": "<stable code>", "message": "<what was expected/found>"}}`.
"""

from __future__ import annotations

import json
import logging
import math
import re
from collections.abc import Callable, Iterable
from functools import wraps
from typing import Any, TypeVar

import flask
import pydantic
from werkzeug.exceptions import HTTPException
from werkzeug.wrappers import Response as BaseResponse

from shared.errors import (
    BadRequest,
    BrokerError,
    ConfigurationError,
    MethodNotAllowed,
    PayloadTooLarge,
    UnsupportedMediaType,
    ValidationFailed,
)
from shared.logs import database_error, where

M = TypeVar("M", bound=pydantic.BaseModel)

log = logging.getLogger("broker.http")

Handler = Callable[[flask.Request], BaseResponse]


def json_response(body: Any, status: int = 200, headers: dict[str, str] | None = None) -> flask.Response:
    response = flask.Response(json.dumps(body, default=str), status=status, mimetype="application/json")
    for name, value in (headers or {}).items():
        response.headers[name] = value
    return response


INTERNAL_ERROR = "the broker failed to handle this request"


def error_response(error: BrokerError) -> flask.Response:
    if isinstance(error, ConfigurationError):
        # Settings, catalog and data-key problems are the operator's (logged by handle_errors); their text names
        # variables, files and secrets, so a caller gets only the plain 500. Start-up checks catch most of them.
        error = BrokerError(INTERNAL_ERROR)
    headers = {"Cache-Control": "no-store"}
    retry_after = error.details.get("retry_after")
    if retry_after is not None:
        headers["Retry-After"] = str(int(retry_after))
    if error.http_status == 401:  # RFC 6750: say how to authenticate (and, for a bad token, that it was bad)
        headers["WWW-Authenticate"] = str(error.details.get("challenge", 'Bearer realm="integrations-broker"'))
    if error.http_status == 405 and error.details.get("allow"):  # RFC 9110 §15.5.6: a 405 says what is allowed
        headers["Allow"] = ", ".join(sorted(error.details["allow"]))
    body = {"error": {"code": error.code, "message": error.message}}
    body["error"].update(error.details.get("public", {}))  # fields an error documents for callers (missing_scopes)
    return json_response(body, error.http_status, headers)


def handle_errors(handler: Handler) -> Handler:
    """Wrap an entry point: domain errors become their response; anything else a plain 500 with no trace."""

    @wraps(handler)
    def wrapper(request: flask.Request) -> BaseResponse:
        try:
            return handler(request)
        except BrokerError as error:
            if error.http_status >= 500:
                log.error("request failed: %s (%s)", error.code, error.message)
            return error_response(error)
        except Exception as exc:
            summary = database_error(exc)
            if summary is None:
                log.exception("unhandled error")  # the trace goes to the log, never to the caller
            else:  # the driver's text can quote a bound value: its class, SQLSTATE and frames only
                log.error("unhandled error: %s\n%s", summary, where(exc))
            return error_response(BrokerError(INTERNAL_ERROR))

    return wrapper


def framework_error(exc: HTTPException) -> flask.Response:
    """What the web framework answers before any function code runs (a path it cannot route, such as one with a
    line break, `/favicon.ico`, a method a local route does not take), in the one error shape. Each function
    registers it with `functions_framework.errorhandler(HTTPException)`; the local server uses it too."""
    code = (exc.name or "error").lower().replace(" ", "_")
    allowed = getattr(exc, "valid_methods", None)
    error = BrokerError(exc.description or code, code=code, details={"allow": allowed} if allowed else None)
    error.http_status = exc.code or 500
    return error_response(error)


MAX_BODY_BYTES = 64 * 1024


def parse_json(request: flask.Request, model: type[M]) -> M:
    """The body as `model` (pydantic, unknown fields forbidden), or a 4xx that says what was wrong."""
    if request.content_length is not None and request.content_length > MAX_BODY_BYTES:
        raise PayloadTooLarge(f"the body must be at most {MAX_BODY_BYTES} bytes")
    if request.mimetype != "application/json":
        raise UnsupportedMediaType("expected Content-Type: application/json")
    raw = request.get_data(cache=True)
    if len(raw) > MAX_BODY_BYTES:
        raise PayloadTooLarge(f"the body must be at most {MAX_BODY_BYTES} bytes")
    try:
        parsed = model.model_validate_json(raw or b"{}")
    except pydantic.ValidationError as exc:
        if any(e["type"] == "json_invalid" for e in exc.errors()):
            raise BadRequest("the body is not valid JSON", code="malformed_json") from None
        problems = "; ".join(
            f"{'.'.join(str(p) for p in e['loc']) or 'body'}: {e['msg']}" for e in exc.errors(include_input=False)
        )
        raise ValidationFailed(problems[:1000]) from None
    if _unsafe_number(parsed):
        raise ValidationFailed(
            "numbers must be finite (no NaN, Infinity or overflow such as 1e400) and integers within "
            "±9007199254740991 (I-JSON, RFC 7493), so every reader gets back what was sent"
        )
    return parsed


def parse_query(request: flask.Request, model: type[M]) -> M:
    """The query string as `model`: unknown parameters are 400 `unknown_parameter`, repeated ones and bad values
    422 `validation_failed`, each saying which."""
    unknown = sorted(set(request.args) - set(model.model_fields))
    if unknown:
        raise BadRequest(f"unknown query parameter(s): {', '.join(unknown)[:200]}", code="unknown_parameter")
    repeated = sorted(name for name, values in request.args.lists() if len(values) > 1)
    if repeated:
        raise ValidationFailed(f"{', '.join(n[:32] for n in repeated)}: give each query parameter once")
    try:
        return model.model_validate(request.args.to_dict())
    except pydantic.ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in e['loc']) or 'query'}: {e['msg']}" for e in exc.errors(include_input=False)
        )
        raise ValidationFailed(problems[:1000]) from None


MAX_SAFE_INTEGER = 2**53 - 1


def _unsafe_number(value: object) -> bool:
    """A number the JSON grammar cannot carry back (NaN, ±Infinity; the parser reads 1e400 as Infinity), or an
    integer past IEEE double precision. PostgreSQL refuses the first kind; SQLite kept them and every later
    answer was invalid JSON. (Nesting is bounded by the parser's recursion limit.)"""
    if isinstance(value, bool):
        return False
    if isinstance(value, float):
        return not math.isfinite(value)
    if isinstance(value, int):
        return abs(value) > MAX_SAFE_INTEGER
    if isinstance(value, pydantic.BaseModel):
        return any(_unsafe_number(item) for item in value.__dict__.values())
    if isinstance(value, dict):
        return any(_unsafe_number(item) for item in value.values())
    if isinstance(value, list | tuple):
        return any(_unsafe_number(item) for item in value)
    return False


_CREDENTIAL = re.compile(r"[\x21-\x7e]+")  # visible ASCII, no whitespace (fullmatch)


def bearer_credential(header: str) -> str | None:
    """The credential of `Authorization: Bearer <credential>`: the scheme in any case, one space, then visible
    ASCII with no whitespace in or around it (RFC 6750). None for anything else: a key is never trimmed into
    one that matches."""
    scheme, space, credential = header.partition(" ")
    if scheme.lower() != "bearer" or not space or not _CREDENTIAL.fullmatch(credential):
        return None
    return credential


def require_method(request: flask.Request, *methods: str) -> None:
    """405 with `Allow: <methods>` unless the request uses one of `methods` (every method the function serves)."""
    if request.method not in methods:
        raise method_not_allowed(request, methods)


def method_not_allowed(request: flask.Request, allowed: Iterable[str]) -> MethodNotAllowed:
    methods = sorted(set(allowed))
    return MethodNotAllowed(f"expected {' or '.join(methods)}, got {request.method[:16]}", details={"allow": methods})


def cors(request: flask.Request, response: flask.Response, allowed_origins: list[str]) -> flask.Response:
    """Credentialed CORS for listed origins only; other origins get no CORS headers at all."""
    origin = request.headers.get("Origin")
    response.vary.add("Origin")
    if origin and origin in allowed_origins:
        response.headers["Access-Control-Allow-Origin"] = origin
        response.headers["Access-Control-Allow-Credentials"] = "true"
    return response


def preflight(request: flask.Request, allowed_origins: list[str], methods: str) -> flask.Response:
    response = flask.Response(status=204)
    if request.headers.get("Origin") in allowed_origins:
        response.headers["Access-Control-Allow-Methods"] = methods
        response.headers["Access-Control-Allow-Headers"] = "Authorization, Content-Type, X-Entity-Id"
        response.headers["Access-Control-Max-Age"] = "600"
    return cors(request, response, allowed_origins)
