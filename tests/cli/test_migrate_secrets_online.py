"""`broker migrate-secrets` while the service serves: the embedded vault to a real OpenBao server, killed halfway
and resumed, beside 20 token fetches and a refresh job. Nothing fails, every integration still refreshes at
oidc-provider, nothing is left in the source, and each secret has exactly one live copy, in OpenBao."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any
from uuid import UUID

import pytest
from sqlalchemy import func, select

from shared.adapters.orm import AuditEventRow, VaultSecretVersionRow
from shared.bootstrap import Container
from shared.errors import DependencyUnavailable
from shared.services.integrations import NewStaticIntegration
from shared.services.refresh_job import run_refresh_job
from tests.support.broker_env import connect
from tests.support.engine import current, expire, pinned_refresh_token, refresh_grants, set_row

API_KEY = "sk-test-0123456789abcdefghij"


@pytest.fixture
def env(env, openbao) -> dict[str, str]:
    """The service keeps SECRET_BACKEND=database throughout; it can reach OpenBao too (step 1 of the procedure)."""
    return {**env, "OPENBAO_ADDR": openbao.addr, "OPENBAO_TOKEN": openbao.root_token}


def _count(app: Container, statement: Any) -> int:
    with app.engine.connect() as conn:
        return int(conn.execute(statement).scalar() or 0)


def _migrated(app: Container) -> int:
    return _count(app, select(func.count()).where(AuditEventRow.action == "secret.migrated"))


def _fetch(app: Container, integration_id: str) -> dict[str, Any]:
    """As broker_client does: a 503 (a fetch waits at most 5 s for another worker's lease) is retried, bounded."""
    for _ in range(5):
        try:
            return app.token_service.fetch(UUID(integration_id), "test")
        except DependencyUnavailable:
            time.sleep(1)
    return app.token_service.fetch(UUID(integration_id), "test")


def test_database_to_openbao_while_serving_killed_and_resumed(app, provider, broker, env):
    oauth = [connect(app, provider, entity=f"entity-{i}") for i in range(8)]
    static = str(app.integration_service.create("entity-s", NewStaticIntegration("openai", {"api_key": API_KEY})).id)
    token = pinned_refresh_token(app, UUID(oauth[0]))  # a rotated token still in the row moves too
    sealed, version = app.keyring.seal(token.encode(), purpose="pending_refresh_token", record=oauth[0])
    set_row(app, oauth[0], pending_secret_ciphertext=sealed, pending_secret_key_version=version)
    for integration_id in oauth[::2]:
        expire(app, integration_id)  # the fetches and the job refresh these while the secrets move
    ids = [*oauth, static]

    command = [sys.executable, "-m", "shared.cli", "migrate-secrets", "--to", "openbao", "--pause", "0.3"]
    running = subprocess.Popen(command, env={**os.environ, **env}, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    job: dict[str, Any] = {}
    worker = threading.Thread(target=lambda: job.update(
        run_refresh_job(app.refresh_store, app.refresher, app.clock, app.job_settings)))  # fmt: skip
    worker.start()
    with ThreadPoolExecutor(max_workers=10) as pool:
        fetched = list(pool.map(lambda i: _fetch(app, ids[i % len(ids)]), range(20)))
    deadline = time.monotonic() + 60
    while _migrated(app) < 3 and time.monotonic() < deadline:
        time.sleep(0.05)
    running.send_signal(signal.SIGKILL)
    running.wait(timeout=10)
    worker.join(timeout=120)
    assert 3 <= _migrated(app) < len(ids), "killed halfway"
    assert all(token.get("access_token") or token.get("credentials") for token in fetched)
    assert job["failed_transient"] == job["reauth_required"] == 0, job

    for _ in range(3):  # resumed; a row busy with a refresh meanwhile is taken by the next run
        resumed = broker("migrate-secrets", "--to", "openbao", "--json")
        if resumed.code == 0:
            break
    assert resumed.code == 0, resumed.err
    assert _count(app, select(func.count()).select_from(VaultSecretVersionRow)) == 0, "nothing left in the source"
    openbao = app.store_for("openbao")
    for integration_id in ids:  # still served by the instance configured with SECRET_BACKEND=database
        row = current(app, integration_id)
        assert row.secret_backend == "openbao"
        assert row.secret_ref is not None
        assert openbao.enabled_versions(row.secret_ref) == [row.secret_version], "one live copy, the pinned one"
    assert current(app, oauth[0]).pending_secret_ciphertext is None
    for integration_id in oauth:
        assert app.refresher.refresh(UUID(integration_id), force=True).outcome == "refreshed", integration_id
        row = current(app, integration_id)
        assert openbao.enabled_versions(str(row.secret_ref)) == [row.secret_version]
    assert app.token_service.fetch(UUID(static), "test")["credentials"] == {"api_key": API_KEY}
    assert refresh_grants(provider)["errors"] == {}
    assert provider.stats()["grants_revoked"] == 0
