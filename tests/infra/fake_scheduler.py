"""An in-memory Cloud Scheduler v1 speaking gRPC on 127.0.0.1, for the operator commands (`broker scheduler …`).

Built on the client library's own proto-plus messages, like tests/fakes/secret_manager_server.py: what the real
client sends is what it parses. It keeps what the commands depend on: NOT_FOUND for an unknown job, PAUSED and
ENABLED states, a run recording an attempt. Tests count calls per RPC (`calls`).

    with LocalScheduler.start() as scheduler:
        scheduler.add_job(JOB, uri="https://refresh.example/refresh")
        client = build_scheduler_client(scheduler.endpoint)
"""

from __future__ import annotations

import threading
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from typing import Any

import grpc
from google.cloud.scheduler_v1 import types as t

SERVICE = "google.cloud.scheduler.v1.CloudScheduler"
State = t.Job.State
METHODS: dict[str, Any] = {
    "GetJob": t.GetJobRequest,
    "RunJob": t.RunJobRequest,
    "PauseJob": t.PauseJobRequest,
    "ResumeJob": t.ResumeJobRequest,
}


class _Abort(Exception):
    def __init__(self, code: Any, message: str) -> None:
        super().__init__(message)
        self.code, self.message = code, message


class SchedulerState:
    def __init__(self) -> None:
        self.jobs: dict[str, Any] = {}
        self.calls: Counter[str] = Counter()
        self._lock = threading.Lock()

    def call(self, method: str, request: Any) -> Any:
        with self._lock:
            self.calls[method] += 1
            job = self.jobs.get(request.name)
            if job is None:
                raise _Abort(grpc.StatusCode.NOT_FOUND, f"Job not found: {request.name}")
            now = datetime.now(UTC)
            if method == "PauseJob":
                job.state = State.PAUSED
            elif method == "ResumeJob":
                job.state = State.ENABLED
            elif method == "RunJob":
                job.last_attempt_time = now
                job.status = {"code": 0}
            return t.Job(job)


def _handler(state: SchedulerState, method: str) -> Any:
    def handle(request: Any, context: Any) -> Any:
        try:
            return state.call(method, request)
        except _Abort as exc:
            context.abort(exc.code, exc.message)

    return grpc.unary_unary_rpc_method_handler(
        handle, request_deserializer=METHODS[method].deserialize, response_serializer=t.Job.serialize
    )


class LocalScheduler:
    def __init__(self) -> None:
        self.state = SchedulerState()
        self._server = grpc.server(ThreadPoolExecutor(max_workers=4, thread_name_prefix="fake-scheduler"))
        handlers = {method: _handler(self.state, method) for method in METHODS}
        self._server.add_generic_rpc_handlers((grpc.method_handlers_generic_handler(SERVICE, handlers),))
        self.endpoint = f"127.0.0.1:{self._server.add_insecure_port('127.0.0.1:0')}"

    @classmethod
    def start(cls) -> LocalScheduler:
        scheduler = cls()
        scheduler._server.start()
        return scheduler

    def add_job(self, name: str, *, uri: str, schedule: str = "*/5 * * * *") -> None:
        self.state.jobs[name] = t.Job(
            name=name,
            schedule=schedule,
            time_zone="Etc/UTC",
            state=State.ENABLED,
            http_target={"uri": uri, "http_method": t.HttpMethod.POST},
            schedule_time=datetime.now(UTC) + timedelta(minutes=5),
        )

    @property
    def calls(self) -> Counter[str]:
        return self.state.calls

    def stop(self) -> None:
        self._server.stop(grace=None).wait()

    def __enter__(self) -> LocalScheduler:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()
