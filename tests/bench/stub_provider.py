"""A token endpoint with a fixed latency for benchmarks: rotating (`/token`) or not (`/steady/token`)."""

from __future__ import annotations

import json
import secrets
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl

import requests

from tests.support.lifetime import stop
from tests.support.postgres import free_port


class StubProvider:
    """Served by the standard library's threading HTTP server with HTTP/1.1 keep-alive, as a provider's token endpoint
    is (werkzeug's development server closes every connection, which would make each call a new TCP connection)."""

    def __init__(self, latency: float) -> None:
        self.latency = latency
        self.url = ""
        self.calls = 0
        self._live: set[str] = set()
        self._lock = threading.Lock()
        self.extra_counts: Callable[[], dict[str, int]] = dict

    def mint(self) -> str:
        token = secrets.token_urlsafe(24)
        with self._lock:
            self._live.add(token)
        return token

    def reset(self) -> None:
        with self._lock:
            self.calls = 0

    def answer(self, rotate: bool, form: dict[str, str]) -> tuple[int, dict[str, Any]]:
        time.sleep(self.latency)
        token = form.get("refresh_token", "")
        with self._lock:
            self.calls += 1
            if token not in self._live:
                return 400, {"error": "invalid_grant"}
            body: dict[str, Any] = {
                "access_token": secrets.token_urlsafe(24),
                "token_type": "Bearer",
                "expires_in": 3600,
            }
            if rotate:
                self._live.discard(token)
                body["refresh_token"] = rotated = secrets.token_urlsafe(24)
                self._live.add(rotated)
        return 200, body

    def handler(self) -> type[BaseHTTPRequestHandler]:
        stub = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            disable_nagle_algorithm = True  # headers and body go out at once, as a real server sends them

            def log_message(self, format: str, *args: Any) -> None:
                return None

            def _reply(self, status: int, body: Any) -> None:
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def do_POST(self) -> None:
                raw = self.rfile.read(int(self.headers.get("Content-Length") or 0)).decode()
                form = dict(parse_qsl(raw))
                if self.path in ("/token", "/steady/token"):
                    self._reply(*stub.answer(self.path == "/token", form))
                elif self.path == "/sim/token":  # P6's simulation: any refresh token, a fresh access token
                    time.sleep(stub.latency)
                    with stub._lock:
                        stub.calls += 1
                    self._reply(200, {"access_token": secrets.token_urlsafe(24), "token_type": "Bearer"})
                elif self.path == "/_mint":
                    self._reply(200, [stub.mint() for _ in range(500)])
                elif self.path == "/_reset":
                    stub.reset()
                    self._reply(200, {})
                else:
                    self._reply(404, {})

            def do_GET(self) -> None:
                if self.path == "/_calls":
                    self._reply(200, {"provider": stub.calls, **stub.extra_counts()})
                else:
                    self._reply(404, {})

        return Handler

    @classmethod
    @contextmanager
    def serving(cls, latency: float) -> Iterator[StubProvider]:
        stub = cls(latency)
        http = ThreadingHTTPServer(("127.0.0.1", free_port()), stub.handler())
        http.daemon_threads = True
        stub.url = f"http://127.0.0.1:{http.server_address[1]}"
        thread = threading.Thread(target=http.serve_forever, daemon=True)
        thread.start()
        try:
            yield stub
        finally:
            http.shutdown()


class RemoteStub:
    """The stub provider and the local Secret Manager in a process of their own, so the benchmarked job does
    not share its interpreter (and GIL) with the servers it calls, as it would not in a deployment."""

    def __init__(self, url: str, grpc_endpoint: str, pid: int = 0) -> None:
        self.url, self.grpc_endpoint, self.pid = url, grpc_endpoint, pid
        self._minted: list[str] = []

    def mint(self) -> str:
        if not self._minted:
            self._minted = list(requests.post(f"{self.url}/_mint", timeout=10).json())
        return self._minted.pop()

    def reset(self) -> None:
        requests.post(f"{self.url}/_reset", timeout=10)

    def counts(self) -> dict[str, int]:
        return dict(requests.get(f"{self.url}/_calls", timeout=10).json())

    @classmethod
    @contextmanager
    def serving(cls, latency: float) -> Iterator[RemoteStub]:
        proc = subprocess.Popen(
            [sys.executable, "-m", "tests.bench.stub_provider", str(latency)], stdout=subprocess.PIPE, text=True
        )
        try:
            assert proc.stdout is not None
            _, url, grpc_endpoint = proc.stdout.readline().split()
            yield cls(url, grpc_endpoint, proc.pid)
        finally:
            stop(proc)


def main() -> None:
    from tests.fakes.secret_manager_server import LocalSecretManager

    with LocalSecretManager.start() as sm, StubProvider.serving(float(sys.argv[1])) as stub:
        stub.extra_counts = lambda: {"secret_writes": sm.calls["AddSecretVersion"]}
        print("READY", stub.url, sm.grpc_endpoint, flush=True)
        threading.Event().wait()


if __name__ == "__main__":
    main()
