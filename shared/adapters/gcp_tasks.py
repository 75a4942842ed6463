"""TaskQueue on Google Cloud Tasks: one HTTP task per refresh shard, posted to token_refresh with an OIDC token.

Each task's request carries an OIDC token of `service_account` for `audience` (Cloud Run checks
roles/run.invoker, the function checks the account and the audience again, as for Cloud Scheduler). Named tasks
make a repeated dispatch harmless: ALREADY_EXISTS answers False. NOT_FOUND (no such queue) is QueueNotFound;
every other failure is TaskQueueUnavailable, whose message names the status and the exception class only.
"""

from __future__ import annotations

from typing import Any

import grpc  # grpc ships no type stubs
from google.api_core import exceptions as gexc
from google.auth import exceptions as auth_exceptions
from google.auth.credentials import AnonymousCredentials
from google.cloud import tasks_v2
from google.cloud.tasks_v2.services.cloud_tasks.transports import CloudTasksGrpcTransport

from shared.errors import QueueNotFound, TaskQueueUnavailable

DEFAULT_TIMEOUT = 10.0


class CloudTasksQueue:
    def __init__(
        self,
        client: tasks_v2.CloudTasksClient,
        *,
        project: str,
        location: str,
        url: str,
        service_account: str | None,
        audience: str | None,
        timeout: float = DEFAULT_TIMEOUT,
    ) -> None:
        self._client = client
        self._parent = f"projects/{project}/locations/{location}"
        self._url = url
        self._oidc = {"service_account_email": service_account, "audience": audience} if service_account else None
        self._timeout = timeout

    @staticmethod
    def build_client(endpoint: str | None = None) -> tasks_v2.CloudTasksClient:
        """The real client (Google's default credentials), or one speaking plaintext gRPC to a local `endpoint`
        (`host:port`) with anonymous credentials."""
        if endpoint is None:
            try:
                return tasks_v2.CloudTasksClient()
            except auth_exceptions.GoogleAuthError as exc:
                raise TaskQueueUnavailable(f"cloud tasks unavailable: {type(exc).__name__}") from None
        credentials = AnonymousCredentials()  # type: ignore[no-untyped-call]
        transport = CloudTasksGrpcTransport(credentials=credentials, channel=grpc.insecure_channel(endpoint))
        return tasks_v2.CloudTasksClient(transport=transport)

    def enqueue(self, queue: str, task_id: str, body: bytes) -> bool:
        queue_name = f"{self._parent}/queues/{queue}"
        http: dict[str, Any] = {
            "http_method": tasks_v2.HttpMethod.POST, "url": self._url, "body": body,
            "headers": {"Content-Type": "application/json"},
        }  # fmt: skip
        if self._oidc is not None:
            http["oidc_token"] = self._oidc
        task = tasks_v2.Task(name=f"{queue_name}/tasks/{task_id}", http_request=http)
        try:
            self._client.create_task(parent=queue_name, task=task, timeout=self._timeout)
        except gexc.AlreadyExists:
            return False
        except gexc.NotFound:
            raise QueueNotFound(f"no Cloud Tasks queue {queue!r}", details={"queue": queue}) from None
        except (gexc.GoogleAPIError, auth_exceptions.GoogleAuthError) as exc:
            status = getattr(getattr(exc, "grpc_status_code", None), "name", "")
            what = f"{type(exc).__name__} ({status})" if status else type(exc).__name__
            raise TaskQueueUnavailable(f"cloud tasks unavailable: {what}") from None
        return True
