"""`broker scheduler status|run|pause|resume`: the refresh job in Cloud Scheduler."""

from __future__ import annotations

import argparse
import sys
from typing import Any


def register(commands: Any) -> None:
    scheduler = commands.add_parser("scheduler", help="the refresh job in Cloud Scheduler: status, run, pause, resume")
    scheduler.add_argument("action", choices=["status", "run", "pause", "resume"])
    scheduler.add_argument("--job", required=True, help="the full name (terraform output refresh_job) or an id")
    scheduler.add_argument("--project", default=None, help="with a job id: the project (default: $GCP_PROJECT)")
    scheduler.add_argument("--location", default=None, help="with a job id: the region")
    scheduler.add_argument("--endpoint", default=None, help=argparse.SUPPRESS)  # a local Cloud Scheduler (tests)
    scheduler.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from google.api_core import exceptions

    from shared.config import get_settings
    from shared.ops import build_scheduler_client, job_name, scheduler_job

    name = job_name(args.job, args.project or get_settings().gcp_project, args.location)
    try:
        status = scheduler_job(build_scheduler_client(args.endpoint), args.action, name)
    except exceptions.GoogleAPICallError as exc:
        print(f"broker: scheduler {args.action} {name}: {exc.message}", file=sys.stderr)
        return 1
    if args.action == "run":
        print("run dispatched: `broker scheduler status` shows its result once it has finished")
    print("\n".join(status.lines()))
    return 0
