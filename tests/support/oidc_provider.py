"""A real, strict OAuth 2.0 / OIDC server (npm `oidc-provider`, see tests/oauth_server/server.mjs) for the tests.

    with running_oidc_provider([{"client_id": "c", "client_secret": "s", "redirect_uris": [CALLBACK]}]) as op:
        url = op.follow_to_callback(authorization_url, CALLBACK)  # ...?code=...&state=...&iss=...
        op.fail_token("500")  # the next token request answers 500
        op.stats()["token"]["authorization_code"]  # {"success": 1, "errors": {}}

The server runs on 127.0.0.1 with issuer `http://127.0.0.1:<port>`; its endpoints are the usual oidc-provider
ones (`/auth`, `/token`, `/token/revocation`, `/token/introspection`, `/me`, `/jwks`, discovery). It needs Node.js
(>= 20) and `tests/oauth_server/node_modules` (`make node-deps`, which `make test` runs).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import tempfile
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from html.parser import HTMLParser
from pathlib import Path
from typing import IO, Any
from urllib.parse import urljoin

import requests

from tests.support.lifetime import stop
from tests.support.postgres import free_port

SERVER_DIR = Path(__file__).resolve().parent.parent / "oauth_server"
SERVER_SCRIPT = SERVER_DIR / "server.mjs"
MIN_NODE_MAJOR = 20
# A start-up deadline, not a bound on anything tested: node loads oidc-provider and makes an RSA key, 1-3 s here and
# 2-5 s at a load average of 10; 30 s was once too little for a fixture under heavy load (57 errors at once).
START_TIMEOUT = 120.0
_REDIRECTS = {301, 302, 303, 307, 308}
_SETUP_HINT = "run `make test` (or `make node-deps`) to install it"


class OidcProviderUnavailable(RuntimeError):
    """Node.js or the server's npm dependencies are missing."""


def require_node() -> str:
    """The `node` executable, or a clear error when it or the server's node_modules are missing."""
    node = shutil.which("node")
    if node is None:
        raise OidcProviderUnavailable(
            f"`node` (Node.js >= {MIN_NODE_MAJOR}) not found on PATH; the OAuth test server needs it: {_SETUP_HINT}"
        )
    version = subprocess.run([node, "--version"], capture_output=True, text=True, check=False).stdout.strip()
    match = re.match(r"v(\d+)\.", version)
    if not match or int(match.group(1)) < MIN_NODE_MAJOR:
        raise OidcProviderUnavailable(
            f"Node.js >= {MIN_NODE_MAJOR} is needed for the OAuth test server (oidc-provider 9), found {version!r}"
        )
    if not (SERVER_DIR / "node_modules" / "oidc-provider" / "package.json").is_file():
        raise OidcProviderUnavailable(f"{SERVER_DIR / 'node_modules'} is missing or incomplete: {_SETUP_HINT}")
    return node


class OidcProvider:
    """A running server: its issuer, the control API and a browser-like driver of the authorization flow."""

    def __init__(self, issuer: str) -> None:
        self.issuer = issuer
        self._http = requests.Session()

    def close(self) -> None:
        self._http.close()

    @property
    def authorization_endpoint(self) -> str:
        return f"{self.issuer}/auth"

    @property
    def token_endpoint(self) -> str:
        return f"{self.issuer}/token"

    @property
    def revocation_endpoint(self) -> str:
        return f"{self.issuer}/token/revocation"

    @property
    def introspection_endpoint(self) -> str:
        return f"{self.issuer}/token/introspection"

    @property
    def userinfo_endpoint(self) -> str:
        return f"{self.issuer}/me"

    @property
    def jwks_uri(self) -> str:
        return f"{self.issuer}/jwks"

    def _control(self, method: str, path: str, body: dict[str, Any] | None = None) -> Any:
        response = self._http.request(method, f"{self.issuer}/_control/{path}", json=body, timeout=10)
        if response.status_code != 200:
            raise RuntimeError(f"control API {method} {path}: {response.status_code} {response.text}")
        return response.json()

    def stats(self) -> dict[str, Any]:
        """Counts since the last reset: `token[grant_type] = {"success": n, "errors": {code: n}}`, `token_requests`,
        `revocation` / `introspection` / `userinfo` (success, errors; revocation also `revoked` by token kind),
        `authorization` (redirects to the client: success, errors), `grants_revoked`, `injected` (by mode)."""
        result: dict[str, Any] = self._control("GET", "stats")
        return result

    def reset_stats(self) -> None:
        self._control("POST", "reset-stats")

    def reset(self) -> None:
        """Stats, account (back to `alice`), pending token failures and denials: all back to the start."""
        self._control("POST", "reset")

    def next_account(self, name: str) -> None:
        """Logins from now on are as `name` (sub = name, email = name@example.test)."""
        self._control("POST", "next-account", {"account": name})

    def fail_token(
        self, mode: str, count: int = 1, delay_ms: int = 0, *, after_processing: bool = False,
        status: int = 400, body: dict[str, Any] | None = None,
    ) -> None:  # fmt: skip
        """The next `count` token endpoint requests: `"500"` (server_error JSON), `"invalid_grant"` (400),
        `"reply"` (`status` with the JSON `body`, or an empty body when None), or `"timeout"`: wait `delay_ms` then
        answer normally; with `after_processing` the request is processed first (codes and refresh tokens
        consumed, tokens issued) and only the answer is late. `"none"` clears."""
        control = {
            "mode": mode, "count": count, "delay_ms": delay_ms, "after_processing": after_processing,
            "status": status, "body": body,
        }  # fmt: skip
        self._control("POST", "token-failure", control)

    def deny_next(self, count: int = 1) -> None:
        """The next `count` authorizations end at the redirect URI with `error=access_denied`."""
        self._control("POST", "deny-next", {"count": count})

    def follow_to_callback(
        self, authorization_url: str, redirect_uri_prefix: str, session: requests.Session | None = None
    ) -> str:
        """Play the browser: GET `authorization_url` and follow the redirects (interaction pages, the resume
        endpoint) with a cookie jar until one points at `redirect_uri_prefix`; return that URL, not requested.

        A fresh cookie jar is used unless `session` is given. The server logs in (the control API's account) and
        consents on every authorization, whatever the cookies; when the account differs from the one the cookies
        are logged in as, oidc-provider first answers an auto-submitting logout form, which is posted here as a
        browser would."""
        if session is None:
            with requests.Session() as fresh:
                return self._follow(authorization_url, redirect_uri_prefix, fresh)
        return self._follow(authorization_url, redirect_uri_prefix, session)

    def _follow(self, url: str, prefix: str, session: requests.Session) -> str:
        method, form = "GET", None
        for _ in range(20):
            if not url.startswith(self.issuer + "/"):
                raise AssertionError(f"sent away from the provider before reaching {prefix}: {url}")
            response = session.request(method, url, data=form, allow_redirects=False, timeout=10)
            location = response.headers.get("Location")
            if response.status_code in _REDIRECTS and location:
                method, form, url = "GET", None, urljoin(url, location)
                if url.startswith(prefix):
                    return url
                continue
            auto = _AutoSubmitForm.parse(response) if response.status_code == 200 else None
            if auto is None:
                raise AssertionError(
                    f"expected a redirect from {url}, got {response.status_code}: {response.text[:1000]}"
                )
            # a page a browser would post at once (oidc-provider's logout of the previous account when another
            # one logs in with the same cookies; a form_post response)
            method, url, form = "POST", urljoin(url, auto.action), auto.fields
            if url.startswith(prefix):
                raise AssertionError(f"the provider answers with response_mode=form_post, not a redirect: {url}")
        raise AssertionError(f"too many redirects without reaching {prefix}; last: {url}")


class _AutoSubmitForm(HTMLParser):
    """The first <form method=post> of an HTML page and its hidden fields."""

    def __init__(self) -> None:
        super().__init__()
        self.action: str | None = None
        self.fields: dict[str, str] = {}
        self._in_form = False

    @classmethod
    def parse(cls, response: requests.Response) -> _AutoSubmitForm | None:
        if "text/html" not in response.headers.get("Content-Type", ""):
            return None
        parser = cls()
        parser.feed(response.text)
        return parser if parser.action else None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        attr = {name: value or "" for name, value in attrs}
        if tag == "form" and self.action is None and attr.get("method", "").lower() == "post":
            self.action, self._in_form = attr.get("action", ""), True
        elif tag == "input" and self._in_form and attr.get("type") == "hidden" and attr.get("name"):
            self.fields[attr["name"]] = attr.get("value", "")

    def handle_endtag(self, tag: str) -> None:
        if tag == "form":
            self._in_form = False


def _drain(stream: IO[str], ready: threading.Event, seen: list[str]) -> None:
    for line in stream:
        seen.append(line)
        if line.startswith("READY "):
            ready.set()
    ready.set()  # EOF: the process is gone; the waiter checks which


@contextmanager
def running_oidc_provider(
    clients: list[dict[str, Any]],
    access_token_ttl: int = 3600,
    *,
    refresh_token_ttl: int | None = None,
    extra_scopes: Sequence[str] = ("api:read", "api:write"),
) -> Iterator[OidcProvider]:
    """Start the server on a free port of 127.0.0.1 with these clients; stop it on exit."""
    node = require_node()
    env = {
        **os.environ,
        "OIDC_CLIENTS": json.dumps(clients),
        "ACCESS_TOKEN_TTL": str(access_token_ttl),
        "EXTRA_SCOPES": " ".join(extra_scopes),
        "EXIT_ON_STDIN_CLOSE": "1",  # no server outlives a killed test run
    }
    if refresh_token_ttl is not None:
        env["REFRESH_TOKEN_TTL"] = str(refresh_token_ttl)
    for attempt in range(3):  # the free port can be taken between picking and binding it
        port = free_port()
        with _server_process(node, {**env, "PORT": str(port)}) as (started, stderr):
            if started:
                provider = OidcProvider(f"http://127.0.0.1:{port}")
                try:
                    yield provider
                finally:
                    provider.close()
                return
            if "EADDRINUSE" in stderr and attempt < 2:
                continue
            raise RuntimeError(f"the OAuth test server (node {SERVER_SCRIPT.name}) did not start:\n{stderr[-4000:]}")


@contextmanager
def _server_process(node: str, env: dict[str, str]) -> Iterator[tuple[bool, str]]:
    """Run the server; yield (started, captured stderr so far); always stop it."""
    log = tempfile.TemporaryFile(mode="w+")  # noqa: SIM115 - closed below; a pipe could fill up and block node
    proc = subprocess.Popen(
        [node, str(SERVER_SCRIPT)],
        cwd=SERVER_DIR,
        env=env,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=log,
        text=True,
    )
    assert proc.stdout is not None
    ready = threading.Event()
    seen: list[str] = []
    drainer = threading.Thread(target=_drain, args=(proc.stdout, ready, seen), daemon=True)
    drainer.start()
    try:
        deadline = time.monotonic() + START_TIMEOUT
        while not ready.wait(0.05) and proc.poll() is None and time.monotonic() < deadline:
            pass
        started = any(line.startswith("READY ") for line in seen)
        stderr = ""
        if not started:
            if proc.poll() is None:
                stderr = f"no READY line within {START_TIMEOUT:.0f} s\n"
            proc.kill()
            proc.wait(timeout=10)
            log.seek(0)
            stderr += log.read() + "".join(seen)
        yield started, stderr
    finally:
        stop(proc)
        assert proc.stdin is not None
        proc.stdin.close()
        drainer.join(timeout=5)
        proc.stdout.close()
        log.close()
