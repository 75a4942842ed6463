"""A PostgreSQL error can quote the bound value it choked on (`CONTEXT: JSON data, line 1: …`), which
`hide_parameters` does not hide: the logs name the error's class and SQLSTATE only."""

from __future__ import annotations

import io
import logging
from collections.abc import Iterator

import flask
import pytest
from sqlalchemy import Engine, text

from shared.adapters.db import engine_for_url
from shared.config import load_settings
from shared.http import handle_errors
from shared.logs import configure_logging

SNIPPET = "bound-value-4711-do-not-log"


@pytest.fixture
def pg_engine(pg_url: str) -> Iterator[Engine]:
    engine = engine_for_url(pg_url)
    yield engine
    engine.dispose()


def _fail(engine: Engine) -> None:
    with engine.connect() as conn:
        conn.execute(text("SELECT CAST(:value AS jsonb)"), {"value": '{"k": "' + SNIPPET + '" oops}'})


def test_the_database_really_quotes_the_value(pg_engine):
    with pytest.raises(Exception) as caught:  # noqa: PT011 - the point is what the driver's text holds
        _fail(pg_engine)
    assert SNIPPET in str(caught.value)


def test_an_unhandled_database_error_is_logged_by_class_and_sqlstate(pg_engine, caplog):
    def handler(request: flask.Request) -> flask.Response:
        _fail(pg_engine)
        return flask.Response("unreachable")

    app = flask.Flask("t")
    with app.test_request_context("/integrations"), caplog.at_level(logging.DEBUG):
        response = handle_errors(handler)(flask.request)
    assert response.status_code == 500
    assert SNIPPET not in caplog.text
    assert "ProgrammingError" in caplog.text
    assert "SQLSTATE 22P02" in caplog.text
    assert "test_db_errors_in_logs.py" in caplog.text, "where it failed is still logged"


@pytest.mark.parametrize("log_format", ["text", "json"])
def test_any_log_line_with_a_database_error_is_scrubbed(pg_engine, log_format):
    stream = io.StringIO()
    root = logging.getLogger()
    before = list(root.handlers), root.level
    try:
        configure_logging(load_settings(log_format=log_format), stream=stream)
        try:
            _fail(pg_engine)
        except Exception:
            logging.getLogger("broker.local").exception("refresh job failed")
    finally:
        root.handlers[:], _ = before
        root.setLevel(before[1])
    output = stream.getvalue()
    assert "refresh job failed" in output
    assert SNIPPET not in output
    assert "SQLSTATE 22P02" in output
