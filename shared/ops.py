"""Operator tasks behind `broker scheduler …` and `broker migrate --grant-to …`.

The refresh job is a Cloud Scheduler job (terraform/scheduler.tf): see its state, run it now, pause, resume.
The Cloud Scheduler client is built only when a command needs it, never at import.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any, Literal

from sqlalchemy import Engine, text

from shared.errors import ConfigurationError

if TYPE_CHECKING:
    from google.cloud.scheduler_v1 import CloudSchedulerClient

Action = Literal["status", "run", "pause", "resume"]

_JOB_NAME = re.compile(r"projects/[^/\s]+/locations/[^/\s]+/jobs/[A-Za-z0-9_-]{1,500}")  # fullmatch
_JOB_ID = re.compile(r"[A-Za-z0-9_-]{1,500}")


def job_name(job: str, project: str | None = None, location: str | None = None) -> str:
    """The job's full name from `projects/<p>/locations/<l>/jobs/<id>`, or from an id with project and location."""
    if job.startswith("projects/"):
        if not _JOB_NAME.fullmatch(job):
            raise ConfigurationError(f"--job: expected projects/<project>/locations/<location>/jobs/<id>, got {job!r}")
        return job
    if not _JOB_ID.fullmatch(job):
        raise ConfigurationError(f"--job: expected a job id (letters, digits, '-', '_') or a full name, got {job!r}")
    if not project or not location:
        raise ConfigurationError("--job: a job id needs --project (or GCP_PROJECT) and --location")
    return f"projects/{project}/locations/{location}/jobs/{job}"


def build_scheduler_client(endpoint: str | None = None) -> CloudSchedulerClient:
    """Google's default credentials, or anonymous ones on a plaintext gRPC channel to a local `endpoint`."""
    from google.cloud.scheduler_v1 import CloudSchedulerClient

    if endpoint is None:
        return CloudSchedulerClient()
    import grpc
    from google.auth.credentials import AnonymousCredentials
    from google.cloud.scheduler_v1.services.cloud_scheduler.transports import CloudSchedulerGrpcTransport

    credentials = AnonymousCredentials()  # type: ignore[no-untyped-call]
    transport = CloudSchedulerGrpcTransport(credentials=credentials, channel=grpc.insecure_channel(endpoint))
    return CloudSchedulerClient(transport=transport)


@dataclass(frozen=True)
class JobStatus:
    name: str
    state: str
    schedule: str
    time_zone: str
    target: str
    last_attempt: datetime | None
    last_result: str
    next_run: datetime | None

    def lines(self) -> list[str]:
        return [
            f"job:       {self.name}",
            f"state:     {self.state}",
            f"schedule:  {self.schedule} ({self.time_zone})",
            f"target:    {self.target}",
            f"last run:  {_when(self.last_attempt)} ({self.last_result})",
            f"next run:  {_when(self.next_run)}",
        ]


def scheduler_job(client: CloudSchedulerClient, action: Action, name: str) -> JobStatus:
    """Apply `action` to the job and return its state afterwards (`status` only reads it)."""
    if action == "status":
        job = client.get_job(name=name)
    elif action == "run":
        job = client.run_job(name=name)
    elif action == "pause":
        job = client.pause_job(name=name)
    elif action == "resume":
        job = client.resume_job(name=name)
    else:  # pragma: no cover - argparse limits the choices
        raise ValueError(action)
    return _status(job)


def _status(job: Any) -> JobStatus:
    target = job.http_target
    method = target.http_method.name if target.uri else ""
    if job.last_attempt_time:
        code = job.status.code
        last = "ok" if code == 0 else f"failed: code {code} {job.status.message}".rstrip()
    else:
        last = "never ran"
    return JobStatus(
        name=job.name,
        state=job.state.name,
        schedule=job.schedule,
        time_zone=job.time_zone or "Etc/UTC",
        target=f"{method} {target.uri}".strip() or "(not an HTTP job)",
        last_attempt=job.last_attempt_time or None,
        last_result=last,
        next_run=job.schedule_time or None,
    )


def _when(moment: datetime | None) -> str:
    return moment.isoformat(timespec="seconds") if moment else "—"


# --- Database privileges of the functions' users --------------------------------------------------------------

# IAM database users: a service account's email without ".gserviceaccount.com" (or a plain role name).
_DB_ROLE = re.compile(r"[a-z0-9][a-z0-9._@-]{0,62}")  # fullmatch
APP_PRIVILEGES = "SELECT, INSERT, UPDATE, DELETE"


def grant_app_privileges(engine: Engine, users: Iterable[str]) -> list[str]:
    """Let each database user read and write the broker's tables (no DDL), now and for tables added later.

    Run by the schema owner (the migration job's user) after migrating; idempotent. On MySQL the grant is on the
    database (`'user'@'%'`, as Cloud SQL names IAM users), which covers later tables too, and alembic_version
    with them: MySQL cannot take one table out of a database-wide grant. SQLite has no users. Returns the users
    granted.
    """
    roles = list(dict.fromkeys(users))
    for role in roles:
        if not _DB_ROLE.fullmatch(role):
            raise ConfigurationError(f"--grant-to: {role!r} is not a database user name (e.g. sa@project.iam)")
    if engine.dialect.name == "mysql" and roles:
        return _grant_on_mysql(engine, roles)
    if engine.dialect.name != "postgresql" or not roles:
        return []
    quote = engine.dialect.identifier_preparer.quote
    with engine.begin() as conn:
        for role in roles:
            grantee = quote(role)
            conn.execute(text(f"GRANT {APP_PRIVILEGES} ON ALL TABLES IN SCHEMA public TO {grantee}"))
            conn.execute(text(f"GRANT USAGE, SELECT, UPDATE ON ALL SEQUENCES IN SCHEMA public TO {grantee}"))
            conn.execute(text(f"REVOKE INSERT, UPDATE, DELETE ON alembic_version FROM {grantee}"))
            conn.execute(
                text(f"ALTER DEFAULT PRIVILEGES IN SCHEMA public GRANT {APP_PRIVILEGES} ON TABLES TO {grantee}")
            )
            conn.execute(
                text(f"ALTER DEFAULT PRIVILEGES IN SCHEMA public GRANT USAGE, SELECT, UPDATE ON SEQUENCES TO {grantee}")
            )
    return roles


def _grant_on_mysql(engine: Engine, users: list[str]) -> list[str]:
    with engine.begin() as conn:
        database = engine.dialect.identifier_preparer.quote(str(conn.execute(text("SELECT DATABASE()")).scalar_one()))
        for user in users:  # the name matched _DB_ROLE: no quote can be in it
            conn.execute(text(f"GRANT {APP_PRIVILEGES} ON {database}.* TO '{user}'@'%'"))
    return users
