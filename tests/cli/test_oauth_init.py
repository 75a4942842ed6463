"""`broker oauth init` end to end: the command (a subprocess, through the CLI's entry point) mints a connect session,
starts the flow and waits; the test plays the browser, following the printed URL through oidc-provider's login and
consent to the callback, served as deployed (oauth_callback on functions-framework), on PostgreSQL."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
from collections.abc import Iterator
from typing import IO

import pytest
import requests
from sqlalchemy import select

from shared.adapters.db import engine_for_url
from shared.adapters.orm import ConnectSessionRow, IntegrationRow
from tests.support.broker_env import CLIENT_ID, CLIENT_SECRET, broker_env, provider_file
from tests.support.oidc_provider import OidcProvider, running_oidc_provider
from tests.support.postgres import free_port
from tests.support.processes import Served, serving_function

URL_RE = re.compile(r"^\s+(http://\S+)$", re.MULTILINE)


@pytest.fixture(scope="module")
def callback_port() -> int:
    return free_port()


@pytest.fixture(scope="module")
def oidc(callback_port: int) -> Iterator[OidcProvider]:
    client = {"client_id": CLIENT_ID, "client_secret": CLIENT_SECRET,
              "redirect_uris": [f"http://127.0.0.1:{callback_port}/oauth/callback"]}  # fmt: skip
    with running_oidc_provider([client], access_token_ttl=600) as running:
        yield running


@pytest.fixture
def stack(pg_url, secret_manager, oidc, callback_port, tmp_path) -> Iterator[tuple[dict[str, str], Served]]:
    oidc.reset()
    env = broker_env(pg_url, secret_manager, provider_file(tmp_path, oidc.issuer),
                     PUBLIC_BASE_URL=f"http://127.0.0.1:{callback_port}", SECRET_BACKEND="database")  # fmt: skip
    env = {k: v for k, v in env.items() if k != "ALLOWED_RETURN_URLS"}  # a terminal flow needs no return URL
    with serving_function("oauth_callback", env, port=callback_port) as callback:
        yield env, callback


def _command(env: dict[str, str], *args: str) -> subprocess.Popen[str]:
    clean = {k: v for k, v in os.environ.items() if k not in ("DISPLAY", "WAYLAND_DISPLAY")}
    return subprocess.Popen([sys.executable, "-m", "shared.cli", "oauth", "init", *args], env={**clean, **env},
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)  # fmt: skip


def _printed_url(stream: IO[str]) -> str:
    seen = ""
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        line = stream.readline()
        seen += line
        if match := URL_RE.match(line):
            return match.group(1)
        if not line:
            break
    raise AssertionError(f"no URL printed: {seen!r}")


def test_oauth_init_prints_the_url_waits_and_prints_the_integration(stack, oidc, pg_url) -> None:
    env, callback = stack
    command = _command(env, "oidc-test", "--entity", "cli-entity", "--scopes", "api:read", "--no-browser", "--json",
                       "--actor", "ops")  # fmt: skip
    assert command.stderr is not None
    try:
        url = _printed_url(command.stderr)
        assert "scope=openid+email+api%3Aread" in url
        with requests.Session() as browser:  # the test plays the browser: login and consent at oidc-provider
            landing = oidc.follow_to_callback(url, f"{callback}/oauth/callback", browser)
            page = browser.get(landing, allow_redirects=False, timeout=15)
        assert page.status_code == 200, page.text[:300]  # the result page, not a redirect to a product
        assert "Connected" in page.text
        out, err = command.communicate(timeout=60)
    finally:
        command.kill()
    assert command.returncode == 0, err
    outcome = json.loads(out)
    assert outcome["status"] == "connected"
    engine = engine_for_url(pg_url)
    with engine.connect() as conn:
        row = conn.execute(select(IntegrationRow).where(IntegrationRow.id == outcome["integration_id"])).one()
        session = conn.execute(select(ConnectSessionRow)).one()
    engine.dispose()
    assert (row.entity_id, row.provider, row.status) == ("cli-entity", "oidc-test", "active")
    assert "api:read" in row.granted_scopes
    assert session.created_by == "operator:ops"
    assert session.token_hash not in out + err, "nothing of the session is printed"


def test_oauth_init_reports_a_denial_and_a_timeout_with_exit_1(stack, oidc) -> None:
    env, callback = stack
    oidc.deny_next()
    command = _command(env, "oidc-test", "--entity", "cli-entity", "--no-browser")
    assert command.stdout is not None
    try:
        url = _printed_url(command.stdout)
        with requests.Session() as browser:
            browser.get(oidc.follow_to_callback(url, f"{callback}/oauth/callback", browser), timeout=15)
        _out, err = command.communicate(timeout=60)
    finally:
        command.kill()
    assert command.returncode == 1
    assert "not connected: access_denied" in err
    waited = subprocess.run(
        [sys.executable, "-m", "shared.cli", "oauth", "init", "oidc-test", "--entity", "e", "--no-browser",
         "--timeout", "2s"], env={**os.environ, **env}, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert waited.returncode == 1
    assert "timed out" in waited.stderr
    refused = subprocess.run([sys.executable, "-m", "shared.cli", "oauth", "init", "gitlub", "--entity", "e"],
                             env={**os.environ, **env}, capture_output=True, text=True, timeout=60)  # fmt: skip
    assert (refused.returncode, "unknown_provider" in refused.stderr) == (1, True)
    engine = engine_for_url(env["DATABASE_URL"])
    with engine.connect() as conn:
        sessions = len(conn.execute(select(ConnectSessionRow)).all())
    engine.dispose()
    assert sessions == 2, "a refused provider mints no session"
