"""The floor for P1, the physical minimum of this stack: the same server (`broker function`: functions-framework's
app and gunicorn) answering one primary-key SELECT of the integration's whole row through raw pg8000 with a
prepared statement (one round trip), one connection per server thread. No SQLAlchemy, auth, decrypt or audit."""

import json
import os
import threading
from typing import Any
from urllib.parse import unquote, urlsplit

import flask
import functions_framework
import pg8000.native

_local = threading.local()


def _statement() -> Any:
    statement = getattr(_local, "statement", None)
    if statement is None:
        url = urlsplit(os.environ["DATABASE_URL"])
        conn = pg8000.native.Connection(
            unquote(url.username or ""), host=url.hostname or "127.0.0.1", port=url.port or 5432,
            password=unquote(url.password) if url.password else None, database=url.path.lstrip("/"),
        )  # fmt: skip
        statement = conn.prepare("SELECT * FROM entity_integrations WHERE id = CAST(:id AS uuid)")
        _local.statement = statement
    return statement


@functions_framework.http
def floor(request: flask.Request) -> flask.Response:
    rows = _statement().run(id=request.path.rsplit("/", 1)[-1])
    body = {"integration_id": str(rows[0][0]) if rows else None}
    return flask.Response(json.dumps(body), mimetype="application/json")
