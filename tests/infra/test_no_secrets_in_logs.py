"""A full connect -> fetch -> refresh -> delete against `broker serve` with JSON logs at DEBUG: no secret in the logs.

The secrets the test can see: the authorization code and state (the callback URL), the client secret, the API key,
every access token (from the token endpoint) and every refresh token (read back from the vault, the only place
that holds them).
"""

from __future__ import annotations

import html
import json
import os
import re
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import parse_qs, urlsplit
from uuid import UUID

import pytest
import requests
from sqlalchemy import select

from shared.adapters.orm import IntegrationRow
from shared.bootstrap import Container
from shared.config import load_settings
from shared.domain.refresh import FORCE_REFRESH_QUIET
from shared.local.demo_oauth import DEMO_CLIENT_SECRET
from tests.support.processes import Served, serving

API_KEY = "internal-key-for-the-log-test-0123456789"
ENTITY = {"X-Entity-Id": "log-user"}


@dataclass
class Broker:
    base: Served
    env: dict[str, str]

    def refresh_token(self, integration_id: str, monkeypatch: pytest.MonkeyPatch) -> str:
        """The refresh token as the vault holds it now (the embedded vault under LOCAL_DATA_DIR)."""
        with monkeypatch.context() as mp:
            for name, value in self.env.items():
                mp.setenv(name, value)
            app = Container(load_settings())
            try:
                with app.engine.connect() as conn:
                    ref, version = conn.execute(
                        select(IntegrationRow.secret_ref, IntegrationRow.secret_version).where(
                            IntegrationRow.id == UUID(integration_id)
                        )
                    ).one()
                assert ref is not None
                assert version is not None
                return str(json.loads(app.secret_store.read(ref, version))["refresh_token"])
            finally:
                app.engine.dispose()


@pytest.fixture
def broker(tmp_path: Path) -> Iterator[Broker]:
    env = {
        "LOCAL_DATA_DIR": str(tmp_path / "data"),
        "ENVIRONMENT": "development",
        "SECRET_BACKEND": "database",
        "INTERNAL_API_KEYS": API_KEY,
        "LOG_FORMAT": "json",
        "LOG_LEVEL": "DEBUG",
    }
    subprocess.run([sys.executable, "-m", "shared.cli", "migrate"], env={**os.environ, **env}, check=True)
    with serving(["shared.cli", "serve"], env) as base:
        yield Broker(base, env)


def connect(base: str) -> tuple[str, str]:
    """The demo provider's connect flow like a browser; returns (integration id, callback URL)."""
    with requests.Session() as browser:
        started = browser.post(
            f"{base}/oauth/start", json={"provider": "demo", "label": "Logs"}, headers=ENTITY, timeout=10
        )
        assert started.status_code == 200, started.text
        consent = browser.get(started.json()["authorization_url"], timeout=10)
        form = {k: html.unescape(v) for k, v in re.findall(r'name="(\w+)" value="([^"]*)"', consent.text)}
        approved = browser.post(
            f"{base}/demo/oauth/authorize", data={**form, "decision": "approve"}, allow_redirects=False, timeout=10
        )
        callback = approved.headers["Location"]
        back = browser.get(callback, allow_redirects=False, timeout=15)
    assert back.status_code == 302, back.text
    query = parse_qs(urlsplit(back.headers["Location"]).query)
    assert query["status"] == ["connected"], query
    return query["integration_id"][0], callback


def connect_session(base: str) -> str:
    """A connect session used the ways a browser uses it: the Connect page (token in the query), a start, a status."""
    minted = requests.post(f"{base}/connect/sessions", headers={"Authorization": f"Bearer {API_KEY}"}, timeout=10,
                           json={"entity_id": "user-logs", "allowed_origin": base})  # fmt: skip
    assert minted.status_code == 201, minted.text
    token = str(minted.json()["token"])
    assert requests.get(f"{base}/connect", params={"session": token}, timeout=10).status_code == 200
    bearer = {"Authorization": f"Bearer {token}"}
    started = requests.post(f"{base}/oauth/start", json={"provider": "demo", "mode": "popup"}, headers=bearer,
                            timeout=10)  # fmt: skip
    assert started.status_code == 200, started.text
    status = requests.get(f"{base}/connect/flows/{started.json()['flow_id']}", headers=bearer, timeout=10)
    assert status.json() == {"status": "pending"}
    tampered = requests.get(f"{base}/integrations", headers={"Authorization": f"Bearer {token[:-2]}xx"}, timeout=10)
    assert tampered.status_code == 401
    return token


def fetch(base: str, integration_id: str, **params: str) -> str:
    response = requests.get(
        f"{base}/token/{integration_id}", params=params, headers={"Authorization": f"Bearer {API_KEY}"}, timeout=15
    )
    assert response.status_code == 200, response.text
    return str(response.json()["access_token"])


@pytest.mark.timeout(120)
def test_connect_fetch_refresh_delete_logs_no_secret(broker: Broker, monkeypatch: pytest.MonkeyPatch) -> None:
    base = broker.base
    integration_id, callback = connect(base)
    callback_query = parse_qs(urlsplit(callback).query)
    secrets = {
        "authorization code": callback_query["code"][0],
        "state": callback_query["state"][0],
        "client secret": DEMO_CLIENT_SECRET,
        "API key": API_KEY,
        "first refresh token": broker.refresh_token(integration_id, monkeypatch),
        "first access token": fetch(base, integration_id),
    }
    time.sleep(FORCE_REFRESH_QUIET.total_seconds())  # a forced refresh right after connecting answers that token
    secrets["second access token"] = fetch(base, integration_id, force_refresh="true")
    secrets["second refresh token"] = broker.refresh_token(integration_id, monkeypatch)
    assert secrets["second refresh token"] != secrets["first refresh token"], "the demo provider rotates them"

    secrets["connect session token"] = connect_session(base)

    job = requests.post(f"{base}/refresh", json={}, timeout=30)
    assert job.status_code == 200, job.text
    removed = requests.delete(f"{base}/integrations/{integration_id}", headers=ENTITY, timeout=15)
    assert removed.status_code == 200, removed.text

    output = base.output()
    entries = [json.loads(line) for line in output.splitlines() if line.startswith("{")]
    assert len(entries) > 10, "expected the run to log JSON lines"
    assert {"severity", "message", "logging.googleapis.com/trace", "httpRequest"} <= set(entries[-1])
    leaked = sorted(name for name, value in secrets.items() if value in output)
    assert not leaked, f"found in the logs: {', '.join(leaked)}"
