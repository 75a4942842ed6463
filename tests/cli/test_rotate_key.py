"""`broker rotate-key`: access tokens, pending rotated tokens, live PKCE verifiers and embedded-vault versions move
under the new data key; killed halfway and run again it finishes; run beside token fetches and a refresh job
nothing fails; afterwards the old key can be removed and every token is still served."""

from __future__ import annotations

import base64
import os
import signal
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any
from urllib.parse import parse_qs, urlsplit
from uuid import UUID

import requests

from shared.bootstrap import Container
from shared.config import load_settings
from shared.errors import DependencyUnavailable
from shared.services.connect import StartRequest
from shared.services.refresh_job import run_refresh_job
from tests.support.broker_env import BASE, DATA_KEY, connect
from tests.support.engine import expire, pinned_refresh_token, refresh_grants, set_row
from tests.support.mariadb import ALSO_ON_MYSQL

NEW_KEY = base64.b64encode(b"n" * 32).decode()
BOTH = f"1:{DATA_KEY},2:{NEW_KEY}"
ONLY_NEW = f"2:{NEW_KEY}"


def _with_keys(monkeypatch, keys: str) -> Container:
    monkeypatch.setenv("DATA_KEYS", keys)
    return Container(load_settings())


def _pending(app: Container, integration_id: str) -> None:
    """A rotated token the secret store has not taken yet (here: the live one, sealed into the row)."""
    token = pinned_refresh_token(app, UUID(integration_id))
    sealed, version = app.keyring.seal(token.encode(), purpose="pending_refresh_token", record=integration_id)
    set_row(app, integration_id, pending_secret_ciphertext=sealed, pending_secret_key_version=version)


def _finish_flow(app: Container, provider, started) -> str:
    with requests.Session() as browser:
        callback = provider.follow_to_callback(started.authorization_url, BASE + "/oauth/callback", browser)
    params = {k: v[0] for k, v in parse_qs(urlsplit(callback).query).items()}
    location = app.connect_flow.complete(params, {started.cookie_name: started.binding or ""})
    assert parse_qs(urlsplit(location).query).get("status") == ["connected"], location
    return parse_qs(urlsplit(location).query)["integration_id"][0]


def _fetch_as_a_backend(app: Container, integration_id: str) -> dict[str, Any]:
    """As broker_client does: a 503 (a fetch waits at most 5 s for another worker's refresh) is retried, bounded."""
    for _ in range(3):
        try:
            return app.token_service.fetch(UUID(integration_id), "test")
        except DependencyUnavailable:
            time.sleep(1)
    return app.token_service.fetch(UUID(integration_id), "test")


def _served_with_the_new_key_only(monkeypatch, ids: list[str]) -> Container:
    new = _with_keys(monkeypatch, ONLY_NEW)
    for integration_id in ids:
        assert new.token_service.fetch(UUID(integration_id), "test")["access_token"]
        assert new.refresher.refresh(UUID(integration_id), force=True).outcome == "refreshed"
    return new


@ALSO_ON_MYSQL
def test_check_then_rotate_then_retire_the_old_key(app, provider, broker, monkeypatch):
    ids = [connect(app, provider, entity=f"entity-{i}") for i in range(3)]
    _pending(app, ids[0])
    flows = [app.connect_flow.start("entity-flow", StartRequest("oidc-test")) for _ in range(2)]
    zero = dict.fromkeys(("access_token", "pending_refresh_token", "pkce_verifier", "vault_secret"), 0)
    before = {"access_token": 3, "pending_refresh_token": 1, "pkce_verifier": 2, "vault_secret": 3}
    checked = broker("rotate-key", "--check", "--json")
    assert checked.code == 0, checked.err
    assert checked.json() == {"1": before}, "spent handshakes are not counted: nothing opens them again"

    monkeypatch.setenv("DATA_KEYS", BOTH)
    assert broker("rotate-key", "--check", "--json").json() == {"1": before, "2": zero}
    rotated = broker("rotate-key", "--batch-size", "2")
    assert rotated.code == 0, rotated.err
    assert rotated.out.splitlines()[0] == (
        "re-encrypted under key version 2: access_token 3, pending_refresh_token 1, pkce_verifier 2, vault_secret 3"
    )
    assert broker("rotate-key", "--check", "--json").json() == {"2": before}
    again = broker("rotate-key", "--json")
    assert again.json()["rotated"] == zero, "idempotent: a second run finds nothing"
    assert "older keys can be retired" in broker("rotate-key", "--check").out

    new = _served_with_the_new_key_only(monkeypatch, ids)
    assert [_finish_flow(new, provider, started) for started in flows], "the PKCE verifiers open under key 2"
    assert refresh_grants(provider)["errors"] == {}


@ALSO_ON_MYSQL
def test_a_rotation_killed_halfway_is_finished_by_the_next_run(app, provider, broker, monkeypatch, env):
    ids = [connect(app, provider, entity=f"entity-{i}") for i in range(5)]
    monkeypatch.setenv("DATA_KEYS", BOTH)
    command = [sys.executable, "-m", "shared.cli", "rotate-key", "--batch-size", "1", "--pause", "0.3"]
    running = subprocess.Popen(command, env={**os.environ, **env, "DATA_KEYS": BOTH},
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE)  # fmt: skip
    deadline = time.monotonic() + 60
    counts: dict[str, Any] = {}
    while time.monotonic() < deadline:
        counts = broker("rotate-key", "--check", "--json").json()
        if sum(counts.get("2", {}).values()) >= 2:
            break
        time.sleep(0.05)
    running.send_signal(signal.SIGKILL)
    running.wait(timeout=10)
    assert running.returncode == -signal.SIGKILL
    counts = broker("rotate-key", "--check", "--json").json()
    assert sum(counts["2"].values()) >= 2, counts
    assert sum(counts["1"].values()) >= 1, f"killed halfway, not after the end: {counts}"

    finished = broker("rotate-key")
    assert finished.code == 0, finished.err
    assert set(broker("rotate-key", "--check", "--json").json()) == {"2"}
    _served_with_the_new_key_only(monkeypatch, ids)
    assert refresh_grants(provider)["errors"] == {}


def test_rotation_beside_token_fetches_and_a_refresh_job_fails_nothing(app, provider, broker, monkeypatch, env):
    ids = [connect(app, provider, entity=f"entity-{i}") for i in range(8)]
    for integration_id in ids[:2]:
        _pending(app, integration_id)
    for integration_id in ids[::2]:
        expire(app, integration_id)  # the fetches and the job refresh these while the rotation runs
    service = _with_keys(monkeypatch, BOTH)
    command = [sys.executable, "-m", "shared.cli", "rotate-key", "--batch-size", "1", "--pause", "0.05"]
    rotation = subprocess.Popen(command, env={**os.environ, **env, "DATA_KEYS": BOTH},
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE)  # fmt: skip
    job: dict[str, Any] = {}
    worker = threading.Thread(target=lambda: job.update(
        run_refresh_job(service.refresh_store, service.refresher, service.clock, service.job_settings)))  # fmt: skip
    worker.start()
    with ThreadPoolExecutor(max_workers=10) as pool:
        fetched = list(pool.map(lambda i: _fetch_as_a_backend(service, ids[i % 8]), range(20)))
    worker.join(timeout=120)
    _out, err = rotation.communicate(timeout=120)
    assert rotation.returncode == 0, err.decode()[-2000:]
    assert all(token["access_token"] for token in fetched)
    assert job["failed_transient"] == job["reauth_required"] == 0, job
    assert refresh_grants(provider)["errors"] == {}
    if set(broker("rotate-key", "--check", "--json").json()) != {"2"}:  # a value rewritten under the last pass
        assert broker("rotate-key").code == 0
    assert set(broker("rotate-key", "--check", "--json").json()) == {"2"}
    _served_with_the_new_key_only(monkeypatch, ids)
    service.engine.dispose()
