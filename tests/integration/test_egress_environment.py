"""The egress session reads its environment (proxies, CA bundle) once, when it is built, not on every request.

requests re-reads HTTP(S)_PROXY / NO_PROXY, REQUESTS_CA_BUNDLE and ~/.netrc for every request of a session that
trusts the environment (~5% of a refresh's CPU in the job). A session built without proxy variables sends every
request directly, whatever the environment says later; one built with them keeps requests' own proxy handling.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from shared.adapters.egress import egress_session

PROXY_VARIABLES = ("http_proxy", "https_proxy", "all_proxy", "no_proxy")


@contextmanager
def server(answer: str) -> Iterator[tuple[str, list[str]]]:
    """A plain HTTP server answering `answer`; the request lines it saw (a proxy sees absolute URLs)."""
    seen: list[str] = []

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            seen.append(self.path)
            body = answer.encode()
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: Any) -> None:
            pass

    http = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=http.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{http.server_address[1]}", seen
    finally:
        http.shutdown()
        http.server_close()


@pytest.fixture
def no_proxy_environment(monkeypatch):
    for name in PROXY_VARIABLES:
        monkeypatch.delenv(name, raising=False)
        monkeypatch.delenv(name.upper(), raising=False)
    monkeypatch.delenv("REQUESTS_CA_BUNDLE", raising=False)
    monkeypatch.delenv("CURL_CA_BUNDLE", raising=False)
    return monkeypatch


def test_a_session_built_without_proxy_variables_ignores_ones_set_later(no_proxy_environment):
    session = egress_session(None)
    with server("provider") as (provider, provider_seen), server("proxy") as (proxy, proxy_seen):
        no_proxy_environment.setenv("HTTP_PROXY", proxy)  # after the build: not read again per request
        answer = session.get(f"{provider}/token", timeout=5)
    assert answer.text == "provider"
    assert (provider_seen, proxy_seen) == (["/token"], [])


def test_a_session_built_with_a_proxy_variable_sends_through_the_proxy(no_proxy_environment):
    with server("provider") as (provider, _), server("proxy") as (proxy, proxy_seen):
        no_proxy_environment.setenv("HTTP_PROXY", proxy)
        answer = egress_session(None).get(f"{provider}/token", timeout=5)
    assert answer.text == "proxy"
    assert proxy_seen == [f"{provider}/token"]  # an absolute URL: the request went to the proxy


def test_a_ca_bundle_in_the_environment_is_kept_as_the_sessions_verify(no_proxy_environment, tmp_path):
    bundle = tmp_path / "ca.pem"
    bundle.write_text("", encoding="utf-8")
    no_proxy_environment.setenv("REQUESTS_CA_BUNDLE", str(bundle))
    assert egress_session(None).verify == str(bundle)
    no_proxy_environment.delenv("REQUESTS_CA_BUNDLE")
    assert egress_session(None).verify is True
