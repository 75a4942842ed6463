"""An in-memory Secret Manager v1 for tests, speaking gRPC and REST on 127.0.0.1.

Built on the client library's own proto-plus messages, so what the real client sends is what it parses.
It keeps the behaviour the adapter depends on: version numbers that only grow, CRC32C checked on write and
returned on access, FAILED_PRECONDITION for a destroyed version, NOT_FOUND / ALREADY_EXISTS, label rules.
Tests can count calls per RPC (`calls`), inject a failure for the next call of an RPC (`fail_next`) or for every
call until cleared (`fail_always`), make a secret look older than it is (`backdate`) and corrupt a stored payload
(`tamper`).

    with LocalSecretManager.start() as sm:
        client = GcpSecretManagerStore.build_client(sm.grpc_endpoint)  # or sm.rest_endpoint
"""

from __future__ import annotations

import contextlib
import json
import re
import socket
import threading
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl, unquote, urlsplit

import google_crc32c
import grpc  # grpc ships no type stubs
from google.cloud.secretmanager_v1 import types as t

SERVICE = "google.cloud.secretmanager.v1.SecretManagerService"
State = t.SecretVersion.State
Code = grpc.StatusCode
_HTTP_STATUS = {
    "INVALID_ARGUMENT": 400,
    "FAILED_PRECONDITION": 400,
    "UNAUTHENTICATED": 401,
    "PERMISSION_DENIED": 403,
    "NOT_FOUND": 404,
    "ALREADY_EXISTS": 409,
    "RESOURCE_EXHAUSTED": 429,
    "UNIMPLEMENTED": 501,
    "UNAVAILABLE": 503,
    "DEADLINE_EXCEEDED": 504,
}
_PROJECT = re.compile(r"^projects/[^/]+$")
_VERSION = re.compile(r"^(projects/[^/]+/secrets/[^/]+)/versions/([^/]+)$")
_SECRET_ID = re.compile(r"^[A-Za-z0-9_-]{1,255}$")
_LABEL_KEY = re.compile(r"^[a-z][a-z0-9_-]{0,62}$")
_LABEL_VALUE = re.compile(r"^[a-z0-9_-]{0,63}$")

# RPC name -> (request type, response type); None stands for google.protobuf.Empty.
METHODS: dict[str, tuple[Any, Any]] = {
    "CreateSecret": (t.CreateSecretRequest, t.Secret),
    "GetSecret": (t.GetSecretRequest, t.Secret),
    "ListSecrets": (t.ListSecretsRequest, t.ListSecretsResponse),
    "DeleteSecret": (t.DeleteSecretRequest, None),
    "AddSecretVersion": (t.AddSecretVersionRequest, t.SecretVersion),
    "AccessSecretVersion": (t.AccessSecretVersionRequest, t.AccessSecretVersionResponse),
    "ListSecretVersions": (t.ListSecretVersionsRequest, t.ListSecretVersionsResponse),
    "DestroySecretVersion": (t.DestroySecretVersionRequest, t.SecretVersion),
}


class RpcError(Exception):
    def __init__(self, code: Any, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


@dataclass
class _Version:
    number: int
    data: bytes
    crc: int
    created: datetime
    state: Any = State.ENABLED
    destroyed: datetime | None = None


@dataclass
class _Secret:
    message: Any  # t.Secret
    versions: dict[int, _Version]


def _crc(data: bytes) -> int:
    return int(google_crc32c.value(data))


def _page(items: list[Any], size: int, token: str) -> tuple[list[Any], str]:
    start = int(token or 0)
    end = start + size if size > 0 else len(items)
    return items[start:end], (str(end) if end < len(items) else "")


class SecretManagerState:
    """The service itself: one method per RPC, request message in, response message out, under one lock."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._secrets: dict[str, _Secret] = {}
        self._failures: dict[str, RpcError] = {}
        self._outages: dict[str, RpcError] = {}
        self._listing_lag = 0
        self.calls: Counter[str] = Counter()

    def call(self, method: str, request: Any) -> Any:
        handler: Callable[[Any], Any] = getattr(self, "_" + re.sub(r"(?<!^)([A-Z])", r"_\1", method).lower())
        with self._lock:
            self.calls[method] += 1
            if failure := self._failures.pop(method, None) or self._outages.get(method):
                raise failure
            return handler(request)

    def fail_next(self, method: str, code: Any, message: str = "injected failure") -> None:
        with self._lock:
            self._failures[method] = RpcError(code, message)

    def backdate(self, secret_name: str, seconds: float) -> None:
        """Move a secret's create_time `seconds` into the past (a sweeper only considers old secrets)."""
        with self._lock:
            message = self._secret(secret_name).message
            message.create_time = message.create_time - timedelta(seconds=seconds)

    def fail_always(self, method: str, code: Any, message: str = "injected outage") -> None:
        """Every call of `method` fails with `code` until clear_failures (an outage, or a quota such as the 600
        writes per minute per project answered with RESOURCE_EXHAUSTED)."""
        with self._lock:
            self._outages[method] = RpcError(code, message)

    def lag_listing(self, versions: int) -> None:
        """ListSecretVersions leaves out each secret's newest `versions` versions, as an eventually consistent
        listing may right after a write (reads by number stay strongly consistent). 0 restores it."""
        with self._lock:
            self._listing_lag = versions

    def clear_failures(self) -> None:
        with self._lock:
            self._failures.clear()
            self._outages.clear()
            self._listing_lag = 0

    def tamper(self, version_name: str, data: bytes) -> None:
        """Replace a stored payload without updating its checksum, as silent corruption would."""
        with self._lock:
            secret, number = self._version(version_name)
            secret.versions[number].data = data

    def _secret(self, name: str) -> _Secret:
        if name not in self._secrets:
            raise RpcError(Code.NOT_FOUND, f"Secret [{name}] not found or has no versions.")
        return self._secrets[name]

    def _version(self, name: str) -> tuple[_Secret, int]:
        match = _VERSION.match(name)
        if not match:
            raise RpcError(Code.INVALID_ARGUMENT, f"malformed secret version name [{name}]")
        secret = self._secret(match[1])
        ref = match[2]
        if ref == "latest" and secret.versions:
            return secret, max(secret.versions)
        if not ref.isdigit():
            raise RpcError(Code.INVALID_ARGUMENT, f"version must be a number or 'latest', got [{ref}]")
        if int(ref) not in secret.versions:
            raise RpcError(Code.NOT_FOUND, f"Secret Version [{name}] not found.")
        return secret, int(ref)

    @staticmethod
    def _version_message(secret: _Secret, v: _Version) -> Any:
        return t.SecretVersion(
            name=f"{secret.message.name}/versions/{v.number}",
            create_time=v.created,
            destroy_time=v.destroyed,
            state=v.state,
            client_specified_payload_checksum=True,
        )

    def _create_secret(self, request: Any) -> Any:
        if not _PROJECT.match(request.parent):
            raise RpcError(Code.INVALID_ARGUMENT, f"parent must be projects/<project>, got [{request.parent}]")
        if not _SECRET_ID.match(request.secret_id):
            raise RpcError(Code.INVALID_ARGUMENT, f"secret_id [{request.secret_id}] is not [A-Za-z0-9_-]{{1,255}}")
        replication = request.secret.replication
        if "automatic" not in replication and "user_managed" not in replication:
            raise RpcError(Code.INVALID_ARGUMENT, "Secret.replication is required")
        for key, value in request.secret.labels.items():
            if not _LABEL_KEY.match(key) or not _LABEL_VALUE.match(value):
                raise RpcError(Code.INVALID_ARGUMENT, f"invalid label {key!r}: {value!r}")
        name = f"{request.parent}/secrets/{request.secret_id}"
        if name in self._secrets:
            raise RpcError(Code.ALREADY_EXISTS, f"Secret [{name}] already exists.")
        message = t.Secret(
            name=name,
            replication=replication,
            labels=dict(request.secret.labels),
            create_time=datetime.now(UTC),
        )
        self._secrets[name] = _Secret(message, {})
        return message

    def _get_secret(self, request: Any) -> Any:
        return t.Secret(self._secret(request.name).message)

    def _list_secrets(self, request: Any) -> Any:
        needle, after = _secret_filter(request.filter)
        found = [
            s.message
            for name, s in sorted(self._secrets.items())
            if name.startswith(request.parent + "/")
            and needle in name.rsplit("/", 1)[1]
            and (after is None or s.message.create_time > after)
        ]
        page, token = _page(found, request.page_size, request.page_token)
        return t.ListSecretsResponse(secrets=page, next_page_token=token, total_size=len(found))

    def _delete_secret(self, request: Any) -> None:
        self._secret(request.name)
        del self._secrets[request.name]

    def _add_secret_version(self, request: Any) -> Any:
        secret = self._secret(request.parent)
        data = request.payload.data
        if len(data) > 65536:
            raise RpcError(Code.INVALID_ARGUMENT, "payload larger than 64 KiB")
        if "data_crc32c" in request.payload and request.payload.data_crc32c != _crc(data):
            raise RpcError(Code.INVALID_ARGUMENT, "Checksum mismatch: data_crc32c does not match the payload")
        number = max(secret.versions, default=0) + 1
        secret.versions[number] = _Version(number, data, _crc(data), datetime.now(UTC))
        return self._version_message(secret, secret.versions[number])

    def _access_secret_version(self, request: Any) -> Any:
        secret, number = self._version(request.name)
        v = secret.versions[number]
        name = f"{secret.message.name}/versions/{number}"
        if v.state != State.ENABLED:
            raise RpcError(Code.FAILED_PRECONDITION, f"Secret Version [{name}] is in {v.state.name} state.")
        payload = t.SecretPayload(data=v.data, data_crc32c=v.crc)
        return t.AccessSecretVersionResponse(name=name, payload=payload)

    def _list_secret_versions(self, request: Any) -> Any:
        secret = self._secret(request.parent)
        wanted = None
        if request.filter:
            match = re.fullmatch(r"state:(\w+)", request.filter.strip())
            if not match or match[1] not in State.__members__:
                raise RpcError(
                    Code.INVALID_ARGUMENT, f"this fake only filters on state:<STATE>, got [{request.filter}]"
                )
            wanted = State.__members__[match[1]]
        newest = sorted(secret.versions.values(), key=lambda v: -v.number)[self._listing_lag :]
        found = [
            self._version_message(secret, v)
            for v in newest  # newest first, as the API does
            if wanted is None or v.state == wanted
        ]
        page, token = _page(found, request.page_size, request.page_token)
        return t.ListSecretVersionsResponse(versions=page, next_page_token=token, total_size=len(found))

    def _destroy_secret_version(self, request: Any) -> Any:
        secret, number = self._version(request.name)
        v = secret.versions[number]
        if v.state == State.DESTROYED:
            raise RpcError(Code.FAILED_PRECONDITION, f"Secret Version [{request.name}] is already destroyed.")
        v.state, v.data, v.crc, v.destroyed = State.DESTROYED, b"", 0, datetime.now(UTC)
        return self._version_message(secret, v)


def _grpc_handler(state: SecretManagerState, method: str) -> Any:
    request_type, response_type = METHODS[method]

    def handle(request: Any, context: Any) -> Any:
        try:
            return state.call(method, request)
        except RpcError as exc:
            context.abort(exc.code, exc.message)

    return grpc.unary_unary_rpc_method_handler(
        handle,
        request_deserializer=request_type.deserialize,
        response_serializer=response_type.serialize if response_type else (lambda _: b""),
    )


_P, _S, _V = (
    r"projects/[^/:]+",
    r"projects/[^/:]+/secrets/[^/:]+",
    r"projects/[^/:]+/secrets/[^/:]+/versions/[^/:]+",
)
# (HTTP verb, path, RPC, field the body fills: "*" merges it into the request)
_ROUTES = [
    ("POST", re.compile(rf"/v1/(?P<parent>{_P})/secrets"), "CreateSecret", "secret"),
    ("GET", re.compile(rf"/v1/(?P<parent>{_P})/secrets"), "ListSecrets", None),
    ("GET", re.compile(rf"/v1/(?P<name>{_S})"), "GetSecret", None),
    ("DELETE", re.compile(rf"/v1/(?P<name>{_S})"), "DeleteSecret", None),
    ("POST", re.compile(rf"/v1/(?P<parent>{_S}):addVersion"), "AddSecretVersion", "*"),
    ("GET", re.compile(rf"/v1/(?P<parent>{_S})/versions"), "ListSecretVersions", None),
    ("GET", re.compile(rf"/v1/(?P<name>{_V}):access"), "AccessSecretVersion", None),
    ("POST", re.compile(rf"/v1/(?P<name>{_V}):destroy"), "DestroySecretVersion", "*"),
]


def _route(verb: str, path: str, raw_body: bytes) -> tuple[str, dict[str, Any]]:
    """The RPC a REST call maps to, and its request fields from the path and the JSON body."""
    for route_verb, pattern, method, body_field in _ROUTES:
        match = pattern.fullmatch(path)
        if route_verb == verb and match:
            try:
                body = json.loads(raw_body) if raw_body.strip() else {}
            except ValueError:
                raise RpcError(Code.INVALID_ARGUMENT, "request body is not JSON") from None
            fields: dict[str, Any] = dict(body) if body_field == "*" else {body_field: body} if body_field else {}
            return method, fields | match.groupdict()
    raise RpcError(Code.NOT_FOUND, f"no route for {verb} {path}")


class _RestServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, state: SecretManagerState) -> None:
        super().__init__(("127.0.0.1", 0), _RestHandler)
        self.state = state
        self.connections: set[socket.socket] = set()


class _RestHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as the client's session expects
    server: _RestServer

    def setup(self) -> None:
        super().setup()
        # Without this each response's body waits for the ACK of its headers: ~40 ms per call.
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.server.connections.add(self.connection)

    def finish(self) -> None:
        super().finish()
        self.server.connections.discard(self.connection)

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def do_GET(self) -> None:
        self._dispatch("GET")

    def do_POST(self) -> None:
        self._dispatch("POST")

    def do_DELETE(self) -> None:
        self._dispatch("DELETE")

    def _dispatch(self, verb: str) -> None:
        url = urlsplit(self.path)
        raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        try:
            method, fields = _route(verb, unquote(url.path), raw)
            fields.update((k, v) for k, v in parse_qsl(url.query) if not k.startswith("$"))
            request_type, response_type = METHODS[method]
            request = request_type.from_json(json.dumps(fields), ignore_unknown_fields=True)
            response = self.server.state.call(method, request)
        except RpcError as exc:
            status = _HTTP_STATUS.get(exc.code.name, 500)
            error = {"code": status, "message": exc.message, "status": exc.code.name}
            return self._send(status, {"error": error})
        self._send(200, json.loads(response_type.to_json(response)) if response_type else {})

    def _send(self, status: int, document: dict[str, Any]) -> None:
        body = json.dumps(document).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json; charset=UTF-8")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


class LocalSecretManager:
    """A running fake: `grpc_endpoint` ('127.0.0.1:port') and `rest_endpoint` ('http://127.0.0.1:port')."""

    def __init__(self) -> None:
        self.state = SecretManagerState()
        self._grpc = grpc.server(ThreadPoolExecutor(max_workers=8, thread_name_prefix="fake-sm-grpc"))
        handlers = {method: _grpc_handler(self.state, method) for method in METHODS}
        self._grpc.add_generic_rpc_handlers((grpc.method_handlers_generic_handler(SERVICE, handlers),))
        self.grpc_endpoint = f"127.0.0.1:{self._grpc.add_insecure_port('127.0.0.1:0')}"
        self._rest = _RestServer(self.state)
        self.rest_endpoint = f"http://127.0.0.1:{self._rest.server_address[1]}"
        self._rest_thread = threading.Thread(
            target=self._rest.serve_forever, kwargs={"poll_interval": 0.05}, name="fake-sm-rest", daemon=True
        )

    @classmethod
    def start(cls) -> LocalSecretManager:
        server = cls()
        server._grpc.start()
        server._rest_thread.start()
        return server

    @property
    def calls(self) -> Counter[str]:
        return self.state.calls

    def fail_next(self, method: str, code: Any, message: str = "injected failure") -> None:
        """Make the next call of the RPC `method` ("AccessSecretVersion") fail with grpc.StatusCode `code`."""
        self.state.fail_next(method, code, message)

    def fail_always(self, method: str, code: Any, message: str = "injected outage") -> None:
        self.state.fail_always(method, code, message)

    def backdate(self, secret_name: str, seconds: float) -> None:
        self.state.backdate(secret_name, seconds)

    def lag_listing(self, versions: int) -> None:
        self.state.lag_listing(versions)

    def clear_failures(self) -> None:
        self.state.clear_failures()

    def tamper(self, version_name: str, data: bytes) -> None:
        self.state.tamper(version_name, data)

    def stop(self) -> None:
        self._grpc.stop(grace=None).wait()
        self._rest.shutdown()
        for connection in list(self._rest.connections):  # idle keep-alive connections would keep answering
            with contextlib.suppress(OSError):
                connection.shutdown(socket.SHUT_RDWR)
        self._rest.server_close()
        self._rest_thread.join()

    def __enter__(self) -> LocalSecretManager:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


SECRET_FILTER = re.compile(r'name:(?P<name>[^\s"]*)(?: AND create_time>"(?P<after>[0-9T:.Z-]+)")?')


def _secret_filter(text: str) -> tuple[str, datetime | None]:
    """The part of Secret Manager's list filter syntax the broker sends: `name:<substring>`, optionally
    `AND create_time>"<RFC 3339>"`; anything else is refused, as the real API refuses what it cannot parse."""
    if not text:
        return "", None
    match = SECRET_FILTER.fullmatch(text.strip())
    if match is None:
        raise RpcError(
            Code.INVALID_ARGUMENT, f'this fake filters on name:<substring> [AND create_time>"…"], got [{text}]'
        )
    after = match["after"]
    return match["name"], None if after is None else datetime.fromisoformat(after.replace("Z", "+00:00"))
