"""POST /refresh: Cloud Scheduler runs the refresh job, its housekeeping and an event dispatch; it answers counts by
outcome. POST /refresh/dispatch: the same, but the refreshes fan out as shards on per-provider Cloud Tasks queues;
POST /refresh/shard: one such task. POST /dispatch (the events schedule, every minute): only the event dispatch."""

import flask
import functions_framework
from werkzeug.exceptions import HTTPException

from shared.bootstrap import check, container
from shared.http import framework_error, handle_errors, json_response, parse_json, require_method
from shared.schemas_refresh import ShardBody
from shared.services.dispatcher import AFTER_REFRESH_BUDGET, DISPATCH_BUDGET
from shared.services.refresh_job import run_refresh_job

functions_framework.errorhandler(HTTPException)(framework_error)  # routing errors in the one shape
check()  # settings and catalog, now: a misconfigured revision never becomes ready
NO_STORE = {"Cache-Control": "no-store"}


@functions_framework.http
@handle_errors
def token_refresh(request: flask.Request) -> flask.Response:
    require_method(request, "POST")
    app = container()
    app.scheduler_caller.caller(request)
    if request.path == "/dispatch":
        return json_response(app.dispatcher.run(DISPATCH_BUDGET), headers=NO_STORE)
    if request.path == "/refresh/shard":
        shard = parse_json(request, ShardBody)
        return json_response(app.refresh_fanout.run_shard(shard.provider, shard.limit), headers=NO_STORE)
    fanout = request.path == "/refresh/dispatch"
    counts = (
        {"dispatch": app.refresh_fanout.dispatch()}
        if fanout
        else run_refresh_job(app.refresh_store, app.refresher, app.clock, app.job_settings)
    )
    done = {**counts, **app.housekeeping.run(), "events": app.dispatcher.run_safely(AFTER_REFRESH_BUDGET)}
    return json_response(done, headers=NO_STORE)
