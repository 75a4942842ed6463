"""What an online `broker migrate-secrets` may meet: a token fetch holding the row as it was before the switch,
and a reconnect whose new secret was written to the old backend just before its row was switched."""

from __future__ import annotations

import dataclasses
from typing import Any
from urllib.parse import parse_qs, urlsplit
from uuid import UUID

import pytest
import requests

from shared.adapters.secret_stores import StoresByBackend
from shared.adapters.sql_secret_migration import SqlSecretMigration
from shared.bootstrap import Container
from shared.domain.ports import SecretStore
from shared.services.connect import StartRequest
from shared.services.integrations import NewStaticIntegration
from shared.services.secret_migration import SecretMigration
from tests.support.broker_env import BASE, connect
from tests.support.engine import current, pinned_refresh_token, refresh_grants

API_KEY = "sk-test-0123456789abcdefghij"


@pytest.fixture
def env(env, openbao) -> dict[str, str]:
    return {**env, "OPENBAO_ADDR": openbao.addr, "OPENBAO_TOKEN": openbao.root_token}


def _migrate(app: Container, target: str = "openbao") -> dict[str, Any]:
    migration = SecretMigration(
        rows=SqlSecretMigration(app.engine), leases=app.refresh_store, stores=app.secret_stores, target_name=target,
        keyring=app.keyring, clock=app.clock, actor="operator:test",
    )  # fmt: skip
    return migration.run().as_dict()


def test_a_fetch_holding_the_row_from_before_the_switch_reads_it_again(app):
    created = app.integration_service.create("entity-s", NewStaticIntegration("openai", {"api_key": API_KEY}))
    before = current(app, created.id)  # what a fetch read just before the switch
    assert _migrate(app)["moved"] == 1  # ... which switches the row and deletes the vault's copy
    assert before.secret_backend == "database"
    view = app.token_service._static_view(before)
    assert view["credentials"] == {"api_key": API_KEY}


class WritesThenMoves:
    """The connect flow's stores; right after the reconnect's secret write, the migration moves that row."""

    def __init__(self, stores: StoresByBackend, move: Any) -> None:
        self._stores, self._move = stores, move

    @property
    def default_name(self) -> str:
        return self._stores.default_name

    @property
    def default(self) -> SecretStore:
        return self.of(None)

    def of(self, backend: str | None) -> SecretStore:
        store, move = self._stores.of(backend), self._move

        class Store:
            def add_version(self, secret_id: str, payload: bytes, labels: Any) -> int:
                version = store.add_version(secret_id, payload, labels)
                move()
                return version

            def __getattr__(self, name: str) -> Any:
                return getattr(store, name)

        return Store()


def test_a_reconnect_whose_row_moves_under_it_is_refused_and_the_grant_kept(app, provider):
    integration_id = connect(app, provider)
    old_token = pinned_refresh_token(app, UUID(integration_id))
    flow = dataclasses.replace(app.connect_flow, secrets=WritesThenMoves(app.secret_stores, lambda: _migrate(app)))
    started = flow.start("entity-1", StartRequest("oidc-test", integration_id=UUID(integration_id)))
    with requests.Session() as browser:
        callback = provider.follow_to_callback(started.authorization_url, BASE + "/oauth/callback", browser)
    params = {k: v[0] for k, v in parse_qs(urlsplit(callback).query).items()}
    location = parse_qs(urlsplit(flow.complete(params, {started.cookie_name: started.binding or ""})).query)
    assert location["error"] == ["temporarily_unavailable"], location

    row = current(app, integration_id)
    assert row.secret_backend == "openbao", "the move won; the reconnect changed nothing"
    assert pinned_refresh_token(app, UUID(integration_id)) == old_token
    assert app.store_for("database").enabled_versions(str(row.secret_ref)) == [], "its new version was removed"
    assert app.store_for("openbao").enabled_versions(str(row.secret_ref)) == [row.secret_version]
    assert app.refresher.refresh(UUID(integration_id), force=True).outcome == "refreshed"
    assert refresh_grants(provider)["errors"] == {}
