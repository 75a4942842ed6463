"""SecretStore on Google Cloud Secret Manager: one secret per integration, reads pinned to a version number.

What callers see, and nothing else (no google.api_core, google.auth, grpc or requests exception leaves this module):
- NOT_FOUND means "absent": `read` raises SecretNotFound (also for a disabled or destroyed version,
  FAILED_PRECONDITION), `enabled_versions` answers [], `destroy_version` and `delete` succeed (already gone);
  `add_version` creates the secret on NOT_FOUND, and only then.
- A payload that fails its CRC32C check is SecretCorrupted.
- Every other failure is SecretStoreUnavailable (503, `secret_store_unavailable`): the service is down or slow
  (UNAVAILABLE, DEADLINE_EXCEEDED, connection errors), over quota (RESOURCE_EXHAUSTED), or refuses this instance
  (PERMISSION_DENIED, UNAUTHENTICATED: a missing grant or expired credentials, an operator's fix). Its message names
  the status and the exception class only: the service's own text can echo request data.

Errors are compared by their canonical status name rather than by exception class: over gRPC api_core raises
`FailedPrecondition`, but over REST it picks the class from the HTTP code alone (`BadRequest` for a 400 whose
status is FAILED_PRECONDITION, `Forbidden` for PERMISSION_DENIED), so the class alone cannot tell them apart.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any

import google_crc32c
import grpc  # grpc ships no type stubs
import requests
from google.api_core import exceptions as gexc
from google.api_core import retry as gretry
from google.api_core.client_options import ClientOptions
from google.auth import exceptions as auth_exceptions
from google.auth.credentials import AnonymousCredentials
from google.cloud import secretmanager_v1 as sm
from google.cloud.secretmanager_v1.services.secret_manager_service.transports import (
    SecretManagerServiceGrpcTransport,
)

from shared.adapters.gcp_call_log import LoggedClient
from shared.domain.secret_ports import within
from shared.errors import SecretCorrupted, SecretNotFound, SecretStoreUnavailable

DEFAULT_TIMEOUT = 10.0
LIST_PAGE = 25000  # Secret Manager's largest page: one call per 25,000 secrets
_LABEL_KEY_RE = re.compile(r"[a-z][a-z0-9_-]{0,62}")  # fullmatch
_LABEL_LIMIT = 63


def sanitise_label_value(value: str) -> str:
    """Map any string onto Secret Manager's label alphabet (`[a-z0-9_-]`, ≤ 63), deterministically.

    Lowercases and replaces every other character with `_`. When that changed anything, or the result is too
    long, the value is cut to 54 characters and suffixed with `-` and 8 hex digits of its SHA-256, so two
    different inputs never collide on the same label (`Acme.io` and `acme_io` stay distinct).
    """
    cleaned = re.sub(r"[^a-z0-9_-]", "_", value.lower())
    if cleaned == value and len(cleaned) <= _LABEL_LIMIT:
        return cleaned
    digest = hashlib.sha256(value.encode()).hexdigest()[:8]
    return f"{cleaned[: _LABEL_LIMIT - 9]}-{digest}"


def _labels(labels: Mapping[str, str]) -> dict[str, str]:
    for key in labels:  # keys are chosen by our code, so a bad one is a bug rather than data to clean
        if not _LABEL_KEY_RE.fullmatch(key):
            raise ValueError(f"label key {key!r} must match {_LABEL_KEY_RE.pattern}")
    return {key: sanitise_label_value(value) for key, value in labels.items()}


def _status(exc: gexc.GoogleAPICallError) -> str:
    """The canonical status name (NOT_FOUND, FAILED_PRECONDITION, ...) whichever transport raised it."""
    if exc.grpc_status_code is not None:
        return str(exc.grpc_status_code.name)
    response: Any = exc.response
    try:
        return str(response.json()["error"]["status"])
    except (AttributeError, KeyError, TypeError, ValueError):
        return ""


def _crc32c(data: bytes) -> int:
    return int(google_crc32c.value(data))


_FAILURES = (gexc.GoogleAPIError, auth_exceptions.GoogleAuthError, requests.RequestException)


@contextmanager
def _unavailable_on_failure() -> Iterator[None]:
    """Whatever the client raises that the method did not handle becomes SecretStoreUnavailable (no request data)."""
    try:
        yield
    except _FAILURES as exc:
        status = _status(exc) if isinstance(exc, gexc.GoogleAPICallError) else ""
        what = f"{type(exc).__name__} ({status})" if status else type(exc).__name__
        raise SecretStoreUnavailable(f"secret manager unavailable: {what}") from None


class GcpSecretManagerStore:
    """SecretStore on Secret Manager; every call carries `timeout` seconds, api_core's default retries apply."""

    def __init__(
        self,
        project: str,
        client: sm.SecretManagerServiceClient,
        *,
        timeout: float = DEFAULT_TIMEOUT,
        probe_secret_id: str = "broker-int-readiness-probe",
    ) -> None:
        self._project = project
        self._probe = probe_secret_id
        self._client: Any = LoggedClient(client)  # one log line per call (method, status): the metrics read them
        self._timeout = timeout
        # api_core retries access on UNAVAILABLE for 60 s by default, whatever the per-call timeout: bound it.
        self._read_retry = gretry.Retry(
            predicate=gretry.if_exception_type(gexc.ServiceUnavailable, gexc.ResourceExhausted),
            initial=0.1, maximum=1.0, multiplier=2.0, timeout=timeout,
        )  # fmt: skip

    @staticmethod
    def build_client(endpoint: str | None = None) -> sm.SecretManagerServiceClient:
        """The real client: Google's default credentials, or anonymous ones for a local `endpoint`.

        `http(s)://host:port` speaks REST to it; `host:port` speaks gRPC over a plaintext channel.
        """
        if endpoint is None:
            with _unavailable_on_failure():  # finding Google's credentials may ask the metadata server
                return sm.SecretManagerServiceClient()
        credentials = AnonymousCredentials()  # type: ignore[no-untyped-call]
        if endpoint.startswith(("http://", "https://")):
            return sm.SecretManagerServiceClient(
                credentials=credentials, transport="rest", client_options=ClientOptions(api_endpoint=endpoint)
            )
        transport = SecretManagerServiceGrpcTransport(credentials=credentials, channel=grpc.insecure_channel(endpoint))
        return sm.SecretManagerServiceClient(transport=transport)

    def _secret(self, secret_id: str) -> str:
        return f"projects/{self._project}/secrets/{secret_id}"

    def add_version(self, secret_id: str, payload: bytes, labels: Mapping[str, str]) -> int:
        parent = self._secret(secret_id)
        request = {"parent": parent, "payload": {"data": payload, "data_crc32c": _crc32c(payload)}}
        with _unavailable_on_failure():
            try:
                version = self._client.add_secret_version(request=request, timeout=self._timeout)
            except gexc.GoogleAPICallError as exc:
                if _status(exc) != "NOT_FOUND":
                    raise
                self._create(secret_id, labels)
                version = self._client.add_secret_version(request=request, timeout=self._timeout)
        return int(version.name.rsplit("/", 1)[1])

    def _create(self, secret_id: str, labels: Mapping[str, str]) -> None:
        secret = {"replication": {"automatic": {}}, "labels": _labels(labels)}
        try:
            self._client.create_secret(
                request={"parent": f"projects/{self._project}", "secret_id": secret_id, "secret": secret},
                timeout=self._timeout,
            )
        except gexc.GoogleAPICallError as exc:
            if _status(exc) != "ALREADY_EXISTS":  # a concurrent writer created it first: fine
                raise

    def read(self, secret_id: str, version: int) -> bytes:
        name = f"{self._secret(secret_id)}/versions/{version}"
        with _unavailable_on_failure():
            try:
                response = self._client.access_secret_version(name=name, timeout=self._timeout, retry=self._read_retry)
            except gexc.GoogleAPICallError as exc:
                if _status(exc) in ("NOT_FOUND", "FAILED_PRECONDITION"):
                    raise SecretNotFound(
                        f"secret {secret_id!r} version {version} is missing, disabled or destroyed"
                    ) from None
                raise
        data = bytes(response.payload.data)
        if "data_crc32c" not in response.payload or response.payload.data_crc32c != _crc32c(data):
            raise SecretCorrupted(f"secret {secret_id!r} version {version} failed its CRC32C check")
        return data

    def enabled_versions(self, secret_id: str) -> list[int]:
        with _unavailable_on_failure():
            try:
                pager = self._client.list_secret_versions(
                    request={"parent": self._secret(secret_id), "filter": "state:ENABLED"}, timeout=self._timeout
                )
                return sorted(int(v.name.rsplit("/", 1)[1]) for v in pager)
            except gexc.GoogleAPICallError as exc:
                if _status(exc) == "NOT_FOUND":
                    return []
                raise

    def destroy_version(self, secret_id: str, version: int) -> None:
        name = f"{self._secret(secret_id)}/versions/{version}"
        with _unavailable_on_failure():
            try:
                self._client.destroy_secret_version(name=name, timeout=self._timeout)
            except gexc.GoogleAPICallError as exc:
                if _status(exc) not in ("NOT_FOUND", "FAILED_PRECONDITION"):  # already gone is the goal
                    raise

    def delete(self, secret_id: str) -> None:
        with _unavailable_on_failure():
            try:
                self._client.delete_secret(name=self._secret(secret_id), timeout=self._timeout)
            except gexc.GoogleAPICallError as exc:
                if _status(exc) != "NOT_FOUND":
                    raise

    def stale_secret_ids(
        self, prefix: str, created_before: datetime, created_after: datetime | None = None
    ) -> list[str]:
        # Listing needs secretmanager.secrets.list on the project (not on a secret: no name condition applies).
        # A window is filtered by the server (`create_time>`), so a run lists only the secrets created in it.
        query = f"name:{prefix}-"
        if created_after is not None:
            query += f' AND create_time>"{created_after.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")}"'
        with _unavailable_on_failure():
            request = {"parent": f"projects/{self._project}", "filter": query, "page_size": LIST_PAGE}
            pager = self._client.list_secrets(request=request, timeout=self._timeout)
            found = [(secret.name.rsplit("/", 1)[1], secret.create_time) for secret in pager]
        return sorted(
            sid for sid, created in found
            if sid.startswith(prefix + "-") and within(created, created_before, created_after)
        )  # fmt: skip

    def labels(self, secret_id: str) -> dict[str, str]:
        with _unavailable_on_failure():
            try:
                secret = self._client.get_secret(name=self._secret(secret_id), timeout=self._timeout)
            except gexc.GoogleAPICallError as exc:
                if _status(exc) == "NOT_FOUND":
                    return {}
                raise
        return dict(secret.labels)

    def check(self) -> None:
        # A read of a name under the integration prefix that is never created: NOT_FOUND proves reachability and
        # credentials with only the prefix-conditioned permissions the functions have (listing needs more).
        with _unavailable_on_failure():
            try:
                self._client.get_secret(name=self._secret(self._probe), timeout=self._timeout)
            except gexc.GoogleAPICallError as exc:
                if _status(exc) != "NOT_FOUND":
                    raise
