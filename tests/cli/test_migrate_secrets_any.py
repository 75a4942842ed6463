"""`broker migrate-secrets` between any two backends: the embedded vault → AWS Secrets Manager (moto's server) →
OpenBao → Secret Manager (the local API server) → the embedded vault, the service's SECRET_BACKEND never changed.
After each hop every integration refreshes at oidc-provider and its secret has one live copy, in that backend."""

from __future__ import annotations

from uuid import UUID

import pytest
from sqlalchemy import func, select

from shared.adapters.orm import VaultSecretVersionRow
from shared.services.integrations import NewStaticIntegration
from tests.support.broker_env import connect
from tests.support.engine import current, refresh_grants
from tests.support.moto import REGION

API_KEY = "sk-test-0123456789abcdefghij"


@pytest.fixture
def env(env, openbao, aws_endpoint) -> dict[str, str]:
    return {**env, "OPENBAO_ADDR": openbao.addr, "OPENBAO_TOKEN": openbao.root_token, "AWS_REGION": REGION,
            "AWS_ENDPOINT_URL": aws_endpoint}  # fmt: skip


def test_every_hop_between_backends_keeps_every_grant(app, provider, broker):
    oauth = [connect(app, provider, entity=f"entity-{i}") for i in range(3)]
    static = str(app.integration_service.create("entity-s", NewStaticIntegration("openai", {"api_key": API_KEY})).id)
    ids = [*oauth, static]
    previous = "database"
    for target in ("aws", "openbao", "gcp", "database"):
        moved = broker("migrate-secrets", "--to", target, "--json")
        assert (moved.code, moved.json()["moved"], moved.json()["failed"]) == (0, 4, []), moved.err
        store, source = app.store_for(target), app.store_for(previous)
        for integration_id in ids:
            row = current(app, integration_id)
            assert row.secret_backend == target
            assert row.secret_ref is not None
            assert store.enabled_versions(row.secret_ref) == [row.secret_version], target
            assert source.enabled_versions(row.secret_ref) == [], f"left behind in {previous}"
        for integration_id in oauth:
            assert app.refresher.refresh(UUID(integration_id), force=True).outcome == "refreshed", target
            row = current(app, integration_id)
            assert store.enabled_versions(str(row.secret_ref)) == [row.secret_version]
        assert app.token_service.fetch(UUID(static), "test")["credentials"] == {"api_key": API_KEY}
        previous = target
    with app.engine.connect() as conn:
        live = select(func.count()).where(VaultSecretVersionRow.ciphertext.is_not(None))
        assert conn.execute(live).scalar() == 4, "back in the embedded vault, one live version each"
    assert refresh_grants(provider)["errors"] == {}
