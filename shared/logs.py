"""Logging, configured once per process: Cloud Logging's structured JSON in production, readable text locally.

JSON lines carry `severity`, `message`, `logging.googleapis.com/trace` (from `traceparent` or
`X-Cloud-Trace-Context`, as `projects/<GCP_PROJECT>/traces/<id>`) and the request (`httpRequest`), which Cloud
Logging reads from stdout/stderr on Cloud Run. The request URL is logged without its query: the callback's query
holds the authorization code and the state.

A database error is logged by its class and SQLSTATE only: the driver's text can quote a bound value (PostgreSQL's
`CONTEXT: JSON data, line 1: …`), which SQLAlchemy's `hide_parameters` does not hide. Every installed handler
scrubs such records, whoever logged them.
"""

from __future__ import annotations

import logging
import sys
import threading
import traceback
from typing import IO, Any

from shared.config import Settings

TEXT_FORMAT = "%(levelname)s %(name)s: %(message)s"
QUIET_LOGGERS = {"alembic.runtime.plugins": logging.WARNING}

_lock = threading.Lock()
_installed: logging.Handler | None = None


def fields(**values: object) -> dict[str, Any]:
    """`extra=` for a log call: structured fields that JSON lines carry at the top of `jsonPayload` (the log-based
    metrics in terraform/monitoring.tf read them; tests/infra/test_logs.py keeps the two in step). Text lines
    leave them out. Never a secret, a token or a state."""
    return {"json_fields": values}


def wants_json(settings: Settings) -> bool:
    """LOG_FORMAT decides; `auto` means JSON in production and text everywhere else."""
    if settings.log_format == "auto":
        return settings.is_production
    return settings.log_format == "json"


def configure_logging(settings: Settings, *, stream: IO[str] | None = None) -> logging.Handler:
    """Install the root handler for `settings`, replacing the one a previous call installed (idempotent)."""
    global _installed
    handler = structured_handler(settings.gcp_project, stream) if wants_json(settings) else text_handler(stream)
    handler.addFilter(ScrubDatabaseErrors())
    root = logging.getLogger()
    with _lock:
        if _installed is not None:
            root.removeHandler(_installed)
        root.addHandler(handler)
        root.setLevel(settings.log_level)
        _installed = handler
    for name, level in QUIET_LOGGERS.items():
        logging.getLogger(name).setLevel(level)
    return handler


def text_handler(stream: IO[str] | None = None) -> logging.Handler:
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.setFormatter(logging.Formatter(TEXT_FORMAT))
    return handler


def structured_handler(project: str | None, stream: IO[str] | None = None) -> logging.Handler:
    # Imported here: google-cloud-logging costs import time that local runs and tests need not pay.
    from google.cloud.logging_v2.handlers import StructuredLogHandler

    handler = StructuredLogHandler(project_id=project, stream=stream or sys.stderr)  # type: ignore[no-untyped-call]
    # Runs before the library's own filter, which would otherwise log the full request URL, query included.
    handler.filters.insert(0, RequestWithoutQuery())
    return handler


class RequestWithoutQuery(logging.Filter):
    """Attach the current request (method, URL without its query, user agent, protocol) to each record."""

    def filter(self, record: logging.LogRecord) -> bool:
        if not hasattr(record, "http_request"):
            request = _current_request()
            if request is not None:
                record.http_request = request
        return True


def database_error(exc: BaseException) -> str | None:
    """`<class> (<driver class>, SQLSTATE <code>)` when `exc` is or was raised by a database error, else None."""
    # SQLAlchemy is not imported for this: a process that never loaded it (the token function's hot path) cannot
    # have raised one of its errors.
    sqlalchemy_errors = sys.modules.get("sqlalchemy.exc")
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if sqlalchemy_errors is not None and isinstance(current, sqlalchemy_errors.StatementError):
            orig = current.orig
            return f"{type(current).__name__} ({type(orig).__name__}, SQLSTATE {_sqlstate(orig)})"
        if type(current).__module__.partition(".")[0] in ("pg8000", "sqlite3"):
            return f"{type(current).__name__} (SQLSTATE {_sqlstate(current)})"
        current = current.__cause__ or current.__context__
    return None


def where(exc: BaseException) -> str:
    """The frames `exc` passed through (code only, never its message)."""
    return "".join(traceback.format_tb(exc.__traceback__)).rstrip()


def _sqlstate(error: BaseException | None) -> str:
    fields = error.args[0] if error is not None and error.args else None
    if isinstance(fields, dict) and isinstance(fields.get("C"), str):  # pg8000: the server's error fields
        return str(fields["C"])
    name = getattr(error, "sqlite_errorname", None)
    return name if isinstance(name, str) else "unknown"


class ScrubDatabaseErrors(logging.Filter):
    """Replace a database error's text and traceback in any record by its class, SQLSTATE and frames."""

    def filter(self, record: logging.LogRecord) -> bool:
        exc = record.exc_info[1] if record.exc_info else None
        summary = database_error(exc) if exc is not None else None
        if exc is not None and summary is not None:
            record.msg = f"{record.getMessage()}: {summary}\n{where(exc)}"
            record.args = None
            record.exc_info = None
            record.exc_text = None
        return True


def _current_request() -> dict[str, Any] | None:
    try:
        import flask
    except ImportError:  # pragma: no cover - flask comes with functions-framework
        return None
    if not flask.has_request_context():
        return None
    request = flask.request
    return {
        "requestMethod": request.method,
        "requestUrl": request.base_url,  # scheme, host and path: never the query string
        "userAgent": request.user_agent.string,
        "protocol": request.environ.get("SERVER_PROTOCOL"),
    }
