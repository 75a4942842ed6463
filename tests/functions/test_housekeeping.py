"""The refresh job's housekeeping over real HTTP: `POST /refresh` (functions-framework) purges what is past
retention and sweeps orphan secrets — an orphan's grant is revoked at oidc-provider before its secret is deleted;
a young orphan and a secret with a row are never touched. PostgreSQL, the local Secret Manager, oidc-provider."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID, uuid4

import pytest
import requests
from sqlalchemy import delete, insert, select

from shared.adapters.orm import AuditEventRow, IntegrationRow, OAuthStateRow
from shared.bootstrap import Container
from tests.fakes.secret_manager_server import LocalSecretManager
from tests.support.broker_env import (
    CLIENT_ID,
    CLIENT_SECRET,
    PROJECT,
    broker_env,
    connect,
    in_process_broker,
    provider_file,
)
from tests.support.oidc_provider import OidcProvider, running_oidc_provider
from tests.support.openapi import assert_conforms
from tests.support.postgres import DatabaseFactory
from tests.support.processes import serving_function

HOUR = 3600


@pytest.fixture
def stack(
    pg_databases: DatabaseFactory, secret_manager: LocalSecretManager, tmp_path_factory, monkeypatch
) -> Iterator[tuple[Container, OidcProvider, dict[str, str]]]:
    name = pg_databases.create()
    client = {"client_id": CLIENT_ID, "client_secret": CLIENT_SECRET,
              "redirect_uris": ["http://127.0.0.1:9/oauth/callback"]}  # fmt: skip
    with running_oidc_provider([client]) as provider:
        providers = provider_file(tmp_path_factory.mktemp("catalog"), provider.issuer)
        env = broker_env(pg_databases.server.url(name), secret_manager, providers, SECRET_PREFIX=f"hk{uuid4().hex[:8]}")
        with in_process_broker(env, monkeypatch) as app:
            yield app, provider, env
    pg_databases.drop(name)


def _refresh_token(app: Container, secret_id: str) -> str:
    return str(json.loads(app.secret_store.read(secret_id, 1))["refresh_token"])


def _refresh_with(provider: OidcProvider, refresh_token: str) -> requests.Response:
    grant = {"grant_type": "refresh_token", "refresh_token": refresh_token}
    return requests.post(provider.token_endpoint, data=grant, auth=(CLIENT_ID, CLIENT_SECRET), timeout=10)


def _rows(app: Container, table: Any) -> list[Any]:
    with app.engine.connect() as conn:
        return list(conn.execute(select(table)).all())


def _run_job(env: dict[str, str], runs: int = 1) -> tuple[dict[str, Any], str]:
    """The last of `runs` runs of one fresh instance."""
    with serving_function("token_refresh", env) as refresh:
        for _ in range(runs):
            response = requests.post(f"{refresh}/refresh", timeout=120)
            assert response.status_code == 200, response.text
            assert_conforms(response, "POST", "/refresh")
        logs = refresh.output()
    return dict(response.json()), logs


def test_the_refresh_run_purges_audit_events_and_states_past_retention(stack):
    app, provider, env = stack
    connect(app, provider, "entity-1")  # a consumed state and audit events of today: kept
    now = datetime.now(UTC)
    old_event = {"occurred_at": now - timedelta(days=401), "actor": "apikey:x", "action": "token.read",
                 "outcome": "success", "detail": {}}  # fmt: skip
    with app.engine.begin() as conn:
        conn.execute(insert(AuditEventRow), [old_event] * 3)
        conn.execute(insert(OAuthStateRow), [
            {"id": uuid4(), "state_hash": uuid4().hex * 2, "entity_id": "e", "provider": "oidc-test",
             "created_at": now - timedelta(days=3), "expires_at": now - timedelta(days=2), "requested_scopes": []}
            for _ in range(2)
        ])  # fmt: skip
    events, states = len(_rows(app, AuditEventRow)), len(_rows(app, OAuthStateRow))

    body, _ = _run_job(env)
    assert (len(_rows(app, AuditEventRow)), len(_rows(app, OAuthStateRow))) == (events - 3, states - 2)
    assert all(row.occurred_at > now - timedelta(days=1) for row in _rows(app, AuditEventRow))
    assert body["purged"] == {"audit_events": 3, "oauth_states": 2, "connect_sessions": 0, "events": 0}
    assert {"claimed", "refreshed", "failed_transient", "reauth_required", "skipped", "duration_ms"} <= set(body)


def test_the_refresh_run_revokes_an_old_orphans_grant_then_deletes_it_and_touches_nothing_else(stack, secret_manager):
    app, provider, env = stack
    prefix = app.settings.secret_prefix
    orphan_id, kept_id = connect(app, provider, "entity-orphan"), connect(app, provider, "entity-kept")
    orphan, kept, young = f"{prefix}-{orphan_id}", f"{prefix}-{kept_id}", f"{prefix}-{uuid4()}"
    with app.engine.begin() as conn:  # a connect killed between its secret and its row leaves this
        conn.execute(delete(IntegrationRow).where(IntegrationRow.id == UUID(orphan_id)))
    app.secret_store.add_version(young, json.dumps({"refresh_token": "young"}).encode(), {"provider": "oidc-test"})
    for secret_id in (orphan, kept):
        secret_manager.backdate(f"projects/{PROJECT}/secrets/{secret_id}", 2 * HOUR)
    orphan_token = _refresh_token(app, orphan)
    events = len(_rows(app, AuditEventRow))
    provider.reset_stats()

    first, _ = _run_job(env)  # a cold start builds no secret store client for the sweep: it waits for the next run
    assert first["swept"] == {"orphans": 0, "revoked": 0, "deleted": 0, "kept": 0, "deferred": True}
    assert app.secret_store.enabled_versions(orphan) == [1]
    body, logs = _run_job(env, runs=2)
    assert provider.stats()["revocation"]["revoked"] == {"RefreshToken": 1}
    assert _refresh_with(provider, orphan_token).json()["error"] == "invalid_grant", "the orphan's grant is revoked"
    assert app.secret_store.enabled_versions(orphan) == []
    assert app.secret_store.enabled_versions(young) == [1], "a young orphan may be a connect being written"
    assert app.secret_store.enabled_versions(kept) == [1], "a secret with a row is never touched"
    assert _refresh_with(provider, _refresh_token(app, kept)).status_code == 200, "its grant is alive"
    assert body["swept"] == {"orphans": 1, "revoked": 1, "deleted": 1, "kept": 0}
    audit = [(row.action, row.outcome, row.integration_id, row.detail) for row in _rows(app, AuditEventRow)]
    assert len(audit) == events + 1
    assert [(outcome, iid, detail["revocation"]) for action, outcome, iid, detail in audit
            if action == "secret.orphan_deleted"] == [
        ("success", UUID(orphan_id), {"outcome": "revoked", "reason": "refresh_token"})
    ]  # fmt: skip
    assert orphan_token not in logs
