"""`broker migrate-secrets`: the embedded vault to Secret Manager (the local API server) killed halfway and run
again, then back; afterwards every integration refreshes at oidc-provider with the new SECRET_BACKEND, static
credentials are served, and no secret is left behind in the source."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from uuid import UUID

from sqlalchemy import func, select

from shared.adapters.orm import AuditEventRow, VaultSecretVersionRow
from shared.bootstrap import Container
from shared.config import load_settings
from shared.services.integrations import NewStaticIntegration
from tests.support.broker_env import connect
from tests.support.engine import current, pinned_refresh_token, refresh_grants, set_row
from tests.support.mariadb import ALSO_ON_MYSQL

API_KEY = "sk-test-0123456789abcdefghij"


def _backend(monkeypatch, name: str) -> Container:
    monkeypatch.setenv("SECRET_BACKEND", name)
    return Container(load_settings())


def _vault_rows(app: Container) -> int:
    with app.engine.connect() as conn:
        return int(conn.execute(select(func.count()).select_from(VaultSecretVersionRow)).scalar() or 0)


def _migrated(app: Container) -> int:
    with app.engine.connect() as conn:
        statement = select(func.count()).where(AuditEventRow.action == "secret.migrated")
        return int(conn.execute(statement).scalar() or 0)


def _everything_works(app: Container, oauth: list[str], static: str) -> None:
    for integration_id in oauth:
        assert app.refresher.refresh(UUID(integration_id), force=True).outcome == "refreshed", integration_id
        row = current(app, integration_id)
        assert row.secret_ref is not None
        assert app.secret_store.enabled_versions(row.secret_ref) == [row.secret_version], "one live copy"
    assert app.token_service.fetch(UUID(static), "test")["credentials"] == {"api_key": API_KEY}


@ALSO_ON_MYSQL
def test_database_to_gcp_interrupted_and_resumed_then_back(app, provider, broker, monkeypatch, env):
    oauth = [connect(app, provider, entity=f"entity-{i}") for i in range(4)]
    static = str(app.integration_service.create("entity-s", NewStaticIntegration("openai", {"api_key": API_KEY})).id)
    token = pinned_refresh_token(app, UUID(oauth[0]))  # a rotated token still in the row moves too
    sealed, version = app.keyring.seal(token.encode(), purpose="pending_refresh_token", record=oauth[0])
    set_row(app, oauth[0], pending_secret_ciphertext=sealed, pending_secret_key_version=version)
    refs = {i: str(current(app, i).secret_ref) for i in [*oauth, static]}
    assert _vault_rows(app) == 5

    dry = broker("migrate-secrets", "--to", "gcp", "--dry-run", "--json")
    assert (dry.code, dry.json()["moved"]) == (0, 5), dry.err
    assert _vault_rows(app) == 5
    already = broker("migrate-secrets", "--to", "database", "--json")
    assert (already.code, already.json()["moved"]) == (0, 0), "every row is there already"

    command = [sys.executable, "-m", "shared.cli", "migrate-secrets", "--to", "gcp", "--pause", "0.5"]
    running = subprocess.Popen(command, env={**os.environ, **env}, stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE)  # fmt: skip
    deadline = time.monotonic() + 60
    while _migrated(app) < 2 and time.monotonic() < deadline:
        time.sleep(0.05)
    running.send_signal(signal.SIGKILL)
    running.wait(timeout=10)
    assert 2 <= _migrated(app) < 5, "killed halfway"

    resumed = broker("migrate-secrets", "--to", "gcp", "--json")
    assert resumed.code == 0, resumed.err
    assert resumed.json()["moved"] + resumed.json()["cleaned"] >= 5 - _migrated(app) + 0
    assert _migrated(app) == 5
    assert _vault_rows(app) == 0, "no secret left behind in the source"
    assert current(app, oauth[0]).pending_secret_ciphertext is None
    finished = broker("migrate-secrets", "--to", "gcp")
    assert finished.out.startswith("moved 0 secret(s) to gcp, 5 switched earlier"), finished.out
    assert "set SECRET_BACKEND=gcp" in finished.out

    on_gcp = _backend(monkeypatch, "gcp")
    for integration_id, ref in refs.items():
        row = current(on_gcp, integration_id)
        assert on_gcp.secret_store.enabled_versions(ref) == [row.secret_version], "one live copy, the pinned one"
    moved = current(on_gcp, oauth[0])
    assert moved.secret_version is not None
    payload = json.loads(on_gcp.secret_store.read(refs[oauth[0]], moved.secret_version))
    assert payload == {"refresh_token": token, "credential_version": moved.credential_version}, "pending moved too"
    _everything_works(on_gcp, oauth, static)

    back = broker("migrate-secrets", "--to", "database", "--json")
    assert (back.code, back.json()["moved"]) == (0, 5), back.err
    for ref in refs.values():
        assert on_gcp.secret_store.enabled_versions(ref) == [], "nothing left in Secret Manager"
    on_vault = _backend(monkeypatch, "database")
    _everything_works(on_vault, oauth, static)
    assert refresh_grants(provider)["errors"] == {}
    on_gcp.engine.dispose()
    on_vault.engine.dispose()
