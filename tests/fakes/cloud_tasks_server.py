"""An in-memory Cloud Tasks v2 for tests, speaking gRPC on 127.0.0.1 (what google-cloud-tasks' client sends).

Built on the client library's own proto-plus messages. It keeps what the broker depends on: tasks are created on
queues that exist (NOT_FOUND otherwise), a task name is taken once (ALREADY_EXISTS), an HTTP task needs a URL.
`deliver()` plays the queue: it POSTs each waiting task's request to its URL, as Cloud Tasks does (the OIDC token
it would sign is recorded, not signed: the functions under test run without a scheduler identity), keeping a task
whose target answered non-2xx for the next call. Tests can add queues (`add_queue`), read the tasks of each queue
(`tasks`) and fail the next call (`fail_next`).

    with LocalCloudTasks.start() as tasks:
        client = CloudTasksQueue.build_client(tasks.grpc_endpoint)
"""

from __future__ import annotations

import threading
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import grpc  # grpc ships no type stubs
import requests
from google.cloud.tasks_v2 import types as t

SERVICE = "google.cloud.tasks.v2.CloudTasks"
Code = grpc.StatusCode


@dataclass
class Delivery:
    queue: str
    name: str
    status: int


class _State:
    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.queues: dict[str, list[t.Task]] = {}
        self.names: set[str] = set()
        self.calls: Counter[str] = Counter()
        self.failures: dict[str, Any] = {}

    def create_task(self, request: t.CreateTaskRequest) -> t.Task:
        with self.lock:
            self.calls["CreateTask"] += 1
            failure = self.failures.pop("CreateTask", None)
            if failure is not None:
                raise _Abort(failure, "injected failure")
            if request.parent not in self.queues:
                raise _Abort(Code.NOT_FOUND, f"queue {request.parent} does not exist")
            task = t.Task(request.task)
            if not task.http_request.url:
                raise _Abort(Code.INVALID_ARGUMENT, "http_request.url is required")
            if task.name:
                if not task.name.startswith(request.parent + "/tasks/"):
                    raise _Abort(Code.INVALID_ARGUMENT, "the task name must be under its queue")
                if task.name in self.names:
                    raise _Abort(Code.ALREADY_EXISTS, "the task exists or existed recently")
                self.names.add(task.name)
            else:
                task.name = f"{request.parent}/tasks/{len(self.names)}-{id(task)}"
            self.queues[request.parent].append(task)
            return task


class _Abort(Exception):
    def __init__(self, code: Any, message: str) -> None:
        super().__init__(message)
        self.code, self.message = code, message


def _create_handler(state: _State) -> Any:
    def handle(request: Any, context: Any) -> Any:
        try:
            return state.create_task(request)
        except _Abort as exc:
            context.abort(exc.code, exc.message)

    return grpc.unary_unary_rpc_method_handler(
        handle, request_deserializer=t.CreateTaskRequest.deserialize, response_serializer=t.Task.serialize
    )


class LocalCloudTasks:
    """A running fake: `grpc_endpoint` ('127.0.0.1:port')."""

    def __init__(self) -> None:
        self._state = _State()
        self._grpc = grpc.server(ThreadPoolExecutor(max_workers=8, thread_name_prefix="fake-tasks-grpc"))
        handlers = {"CreateTask": _create_handler(self._state)}
        self._grpc.add_generic_rpc_handlers((grpc.method_handlers_generic_handler(SERVICE, handlers),))
        self.grpc_endpoint = f"127.0.0.1:{self._grpc.add_insecure_port('127.0.0.1:0')}"

    @classmethod
    def start(cls) -> LocalCloudTasks:
        server = cls()
        server._grpc.start()
        return server

    def add_queue(self, project: str, location: str, queue: str) -> str:
        name = f"projects/{project}/locations/{location}/queues/{queue}"
        with self._state.lock:
            self._state.queues.setdefault(name, [])
        return name

    def tasks(self) -> dict[str, list[t.Task]]:
        """{queue id: its waiting tasks}."""
        with self._state.lock:
            return {name.rsplit("/", 1)[1]: list(tasks) for name, tasks in self._state.queues.items()}

    @property
    def calls(self) -> Counter[str]:
        return self._state.calls

    def fail_next(self, code: Any) -> None:
        self._state.failures["CreateTask"] = code

    def deliver(self, concurrency: int = 4, timeout: float = 120) -> list[Delivery]:
        """POST every waiting task to its URL (`concurrency` at once, as a queue's max_concurrent_dispatches);
        a task answered 2xx is done, any other stays queued."""
        with self._state.lock:
            waiting = [(queue, task) for queue, tasks in self._state.queues.items() for task in tasks]

        def send(item: tuple[str, t.Task]) -> Delivery:
            queue, task = item
            http = task.http_request
            response = requests.post(http.url, data=http.body, headers=dict(http.headers), timeout=timeout)
            if 200 <= response.status_code < 300:
                with self._state.lock:
                    self._state.queues[queue].remove(task)
            return Delivery(queue.rsplit("/", 1)[1], task.name, response.status_code)

        with ThreadPoolExecutor(max_workers=concurrency) as pool:
            return list(pool.map(send, waiting))

    def stop(self) -> None:
        self._grpc.stop(grace=None).wait()

    def __enter__(self) -> LocalCloudTasks:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()
