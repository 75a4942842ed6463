"""The floor for P1: the same server stack (functions-framework, the broker's engine) answering one primary-key
SELECT as JSON, with nothing else: no auth, no decrypt, no audit."""

import flask
import functions_framework
from sqlalchemy import select

from shared.adapters.orm import IntegrationRow
from shared.bootstrap import container
from shared.http import json_response


@functions_framework.http
def floor(request: flask.Request) -> flask.Response:
    integration_id = request.path.rsplit("/", 1)[-1]
    with container().engine.connect() as conn:
        row = conn.execute(select(IntegrationRow.id).where(IntegrationRow.id == integration_id)).one_or_none()
    return json_response({"integration_id": str(row.id) if row else None})
