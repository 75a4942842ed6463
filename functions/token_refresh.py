"""POST /refresh: Cloud Scheduler runs the refresh job; it answers counts by outcome."""

import flask
import functions_framework

from shared.bootstrap import check, container
from shared.http import handle_errors, json_response, require_method
from shared.services.refresh_job import run_refresh_job

check()  # settings and catalog, now: a misconfigured revision never becomes ready


@functions_framework.http
@handle_errors
def token_refresh(request: flask.Request) -> flask.Response:
    require_method(request, "POST")
    app = container()
    app.scheduler_caller.caller(request)
    counts = run_refresh_job(app.refresh_store, app.refresher, app.clock, app.job_settings)
    return json_response(counts, headers={"Cache-Control": "no-store"})
