"""A token endpoint with a fixed latency for benchmarks: rotating (`/token`) or not (`/steady/token`)."""

from __future__ import annotations

import secrets
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

import flask
import requests
from werkzeug.serving import WSGIRequestHandler, make_server

from tests.support.postgres import free_port


class _Quiet(WSGIRequestHandler):
    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        return None


class StubProvider:
    def __init__(self, latency: float) -> None:
        self.latency = latency
        self.url = ""
        self.calls = 0
        self._live: set[str] = set()
        self._lock = threading.Lock()

    def mint(self) -> str:
        token = secrets.token_urlsafe(24)
        with self._lock:
            self._live.add(token)
        return token

    def reset(self) -> None:
        with self._lock:
            self.calls = 0

    def app(self) -> flask.Flask:
        app = flask.Flask("stub-provider")

        def answer(rotate: bool) -> flask.Response:
            time.sleep(self.latency)
            token = flask.request.form.get("refresh_token", "")
            with self._lock:
                self.calls += 1
                if token not in self._live:
                    return flask.Response('{"error": "invalid_grant"}', 400, mimetype="application/json")
                body: dict[str, str | int] = {
                    "access_token": secrets.token_urlsafe(24), "token_type": "Bearer", "expires_in": 3600
                }  # fmt: skip
                if rotate:
                    self._live.discard(token)
                    rotated = secrets.token_urlsafe(24)
                    self._live.add(rotated)
                    body["refresh_token"] = rotated
            return flask.jsonify(body)

        app.add_url_rule("/token", "rotating", lambda: answer(True), methods=["POST"])
        app.add_url_rule("/steady/token", "steady", lambda: answer(False), methods=["POST"])
        app.add_url_rule("/_mint", "mint", lambda: flask.jsonify([self.mint() for _ in range(500)]), methods=["POST"])
        app.add_url_rule("/_calls", "calls", lambda: flask.jsonify({"provider": self.calls, **self.extra_counts()}))
        app.add_url_rule("/_reset", "reset", self._reset_view, methods=["POST"])
        return app

    def _reset_view(self) -> flask.Response:
        self.reset()
        return flask.jsonify({})

    def extra_counts(self) -> dict[str, int]:
        return {}

    @classmethod
    @contextmanager
    def serving(cls, latency: float) -> Iterator[StubProvider]:
        stub = cls(latency)
        port = free_port()
        http = make_server("127.0.0.1", port, stub.app(), threaded=True, request_handler=_Quiet)
        stub.url = f"http://127.0.0.1:{port}"
        thread = threading.Thread(target=http.serve_forever, daemon=True)
        thread.start()
        try:
            yield stub
        finally:
            http.shutdown()


class RemoteStub:
    """The stub provider and the local Secret Manager in a process of their own, so the benchmarked job does
    not share its interpreter (and GIL) with the servers it calls, as it would not in a deployment."""

    def __init__(self, url: str, grpc_endpoint: str) -> None:
        self.url, self.grpc_endpoint = url, grpc_endpoint
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
            yield cls(url, grpc_endpoint)
        finally:
            proc.terminate()
            proc.wait(timeout=10)


def main() -> None:
    from tests.fakes.secret_manager_server import LocalSecretManager

    with LocalSecretManager.start() as sm, StubProvider.serving(float(sys.argv[1])) as stub:
        stub.extra_counts = lambda: {"secret_writes": sm.calls["AddSecretVersion"]}  # type: ignore[method-assign]
        print("READY", stub.url, sm.grpc_endpoint, flush=True)
        threading.Event().wait()


if __name__ == "__main__":
    main()
