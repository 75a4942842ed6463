"""POST /refresh: Cloud Scheduler runs the refresh job, then its housekeeping; it answers counts by outcome."""

import flask
import functions_framework
from werkzeug.exceptions import HTTPException

from shared.bootstrap import check, container
from shared.http import framework_error, handle_errors, json_response, require_method
from shared.services.refresh_job import run_refresh_job

functions_framework.errorhandler(HTTPException)(framework_error)  # routing errors in the one shape
check()  # settings and catalog, now: a misconfigured revision never becomes ready


@functions_framework.http
@handle_errors
def token_refresh(request: flask.Request) -> flask.Response:
    require_method(request, "POST")
    app = container()
    app.scheduler_caller.caller(request)
    counts = run_refresh_job(app.refresh_store, app.refresher, app.clock, app.job_settings)
    return json_response({**counts, **app.housekeeping.run()}, headers={"Cache-Control": "no-store"})
