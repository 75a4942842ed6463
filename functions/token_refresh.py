"""POST /refresh: Cloud Scheduler runs the refresh job, its housekeeping and an event dispatch; it answers counts by
outcome. POST /dispatch (the events schedule, every minute): only the event dispatch."""

import flask
import functions_framework
from werkzeug.exceptions import HTTPException

from shared.bootstrap import check, container
from shared.http import framework_error, handle_errors, json_response, require_method
from shared.services.dispatcher import AFTER_REFRESH_BUDGET, DISPATCH_BUDGET
from shared.services.refresh_job import run_refresh_job

functions_framework.errorhandler(HTTPException)(framework_error)  # routing errors in the one shape
check()  # settings and catalog, now: a misconfigured revision never becomes ready


@functions_framework.http
@handle_errors
def token_refresh(request: flask.Request) -> flask.Response:
    require_method(request, "POST")
    app = container()
    app.scheduler_caller.caller(request)
    if request.path == "/dispatch":
        return json_response(app.dispatcher.run(DISPATCH_BUDGET), headers={"Cache-Control": "no-store"})
    counts = run_refresh_job(app.refresh_store, app.refresher, app.clock, app.job_settings)
    done = {**counts, **app.housekeeping.run(), "events": app.dispatcher.run_safely(AFTER_REFRESH_BUDGET)}
    return json_response(done, headers={"Cache-Control": "no-store"})
