"""The orphan-secret sweeper on both backends: only old secrets with no row go, nothing else is touched."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from uuid import uuid4

import pytest

from shared.adapters.db_secret_store import DatabaseSecretStore
from shared.adapters.gcp_secret_store import GcpSecretManagerStore
from shared.adapters.sql_repositories import SqlIntegrationRepository
from shared.domain.clock import FixedClock
from shared.domain.models import CredentialType, Integration, Status, secret_id_for
from shared.services.maintenance import sweep_orphan_secrets

PREFIX = f"sweep{uuid4().hex[:6]}"


@pytest.fixture(params=["database", "gcp"])
def store(request, pg_url, keyring, secret_manager):
    from shared.adapters.db import engine_for_url

    if request.param == "database":
        return DatabaseSecretStore(engine_for_url(pg_url), keyring, FixedClock(datetime.now(UTC)))
    return GcpSecretManagerStore("sweep-project", GcpSecretManagerStore.build_client(secret_manager.grpc_endpoint))


def test_only_old_secrets_without_a_row_are_deleted(store, pg_url):
    from shared.adapters.db import engine_for_url

    now = datetime.now(UTC)
    integrations = SqlIntegrationRepository(engine_for_url(pg_url), FixedClock(now))
    kept_id, orphan_id = uuid4(), uuid4()
    kept, orphan = secret_id_for(PREFIX, kept_id), secret_id_for(PREFIX, orphan_id)
    for name in (kept, orphan, f"{PREFIX}-readiness-probe", f"other-{uuid4()}"):
        store.add_version(name, b"{}", {})
    integrations.add(Integration(
        id=kept_id, entity_id="e", provider="demo", credential_type=CredentialType.OAUTH2, status=Status.ACTIVE,
        created_at=now, updated_at=now, secret_ref=kept, secret_version=1,
    ))  # fmt: skip

    later = FixedClock(now + timedelta(hours=2))
    young = sweep_orphan_secrets(store, integrations, FixedClock(now), prefix=PREFIX, min_age=timedelta(hours=1))
    assert young == [], "a secret younger than min_age may be a connection being written"
    dry = sweep_orphan_secrets(store, integrations, later, prefix=PREFIX, min_age=timedelta(hours=1), dry_run=True)
    assert dry == [orphan]
    assert store.enabled_versions(orphan) == [1]
    assert sweep_orphan_secrets(store, integrations, later, prefix=PREFIX, min_age=timedelta(hours=1)) == [orphan]
    assert store.enabled_versions(orphan) == []
    assert store.enabled_versions(kept) == [1]
    assert store.enabled_versions(f"{PREFIX}-readiness-probe") == [1]
