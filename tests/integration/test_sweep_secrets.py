"""The orphan-secret sweeper on both backends: only old secrets with no row go, after their grant's revocation was
tried; an orphan whose provider cannot answer is kept for the next run; a run handles at most `limit` orphans."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from uuid import uuid4

import pytest
from sqlalchemy import select

from shared.adapters.db import engine_for_url
from shared.adapters.db_secret_store import DatabaseSecretStore
from shared.adapters.gcp_secret_store import GcpSecretManagerStore
from shared.adapters.http_oauth import HttpTokenEndpoint
from shared.adapters.oidc import OidcProviders
from shared.adapters.orm import AuditEventRow
from shared.adapters.sql_housekeeping import SqlHousekeepingStore
from shared.adapters.sql_repositories import SqlAuditLog, SqlIntegrationRepository
from shared.config import Settings, load_settings
from shared.domain.clock import FixedClock
from shared.domain.models import CredentialType, Integration, Status, secret_id_for
from shared.domain.ports import ProviderDirectory, SecretStore, TokenRevoker
from shared.providers.catalog import Catalog, load_catalog
from shared.services.maintenance import SweepReport, sweep_orphan_secrets

HOUR = timedelta(hours=1)
# A provider whose revocation endpoint never answers (nothing listens on port 9).
DOWN = """providers:
  down:
    display_name: Down
    auth_mode: oauth2
    authorization_url: http://127.0.0.1:9/authorize
    token_url: http://127.0.0.1:9/token
    revocation_url: http://127.0.0.1:9/revoke
"""


@dataclass
class Deps:
    catalog: Catalog
    settings: Settings
    directory: ProviderDirectory
    revoker: TokenRevoker


@pytest.fixture
def deps(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Deps:
    (tmp_path / "providers.yaml").write_text(DOWN, encoding="utf-8")
    monkeypatch.setenv("DOWN_CLIENT_ID", "client")
    monkeypatch.setenv("DOWN_CLIENT_SECRET", "client-secret-value")
    endpoint = HttpTokenEndpoint(timeout=1)
    catalog = load_catalog(str(tmp_path / "providers.yaml"))
    return Deps(catalog, load_settings(provider_timeout=1), OidcProviders(endpoint, timeout=1), endpoint)


@pytest.fixture(params=["database", "gcp"])
def store(request: pytest.FixtureRequest, pg_url: str, keyring, secret_manager) -> SecretStore:
    if request.param == "database":
        return DatabaseSecretStore(engine_for_url(pg_url), keyring, FixedClock(datetime.now(UTC)))
    return GcpSecretManagerStore("sweep-project", GcpSecretManagerStore.build_client(secret_manager.grpc_endpoint))


@pytest.fixture
def prefix() -> str:
    return f"sweep{uuid4().hex[:8]}"  # the local Secret Manager outlives each test's database


def _sweep(store: SecretStore, pg_url: str, deps: Deps, clock: FixedClock, prefix: str, **options: Any) -> SweepReport:
    engine = engine_for_url(pg_url)
    audit = SqlAuditLog(engine, clock)
    return sweep_orphan_secrets(
        store, SqlHousekeepingStore(engine), clock, audit, deps, prefix=prefix, min_age=HOUR, **options
    )


def test_only_old_secrets_without_a_row_are_deleted(store, pg_url, deps, prefix):
    now = datetime.now(UTC)
    integrations = SqlIntegrationRepository(engine_for_url(pg_url), FixedClock(now))
    kept_id, orphan_id = uuid4(), uuid4()
    kept, orphan = secret_id_for(prefix, kept_id), secret_id_for(prefix, orphan_id)
    for name in (kept, orphan, f"{prefix}-readiness-probe", f"other-{uuid4()}"):
        store.add_version(name, json.dumps({"credentials": {"api_key": "k"}}).encode(), {"provider": "openai"})
    integrations.add(Integration(
        id=kept_id, entity_id="e", provider="demo", credential_type=CredentialType.OAUTH2, status=Status.ACTIVE,
        created_at=now, updated_at=now, secret_ref=kept, secret_version=1,
    ))  # fmt: skip

    later = FixedClock(now + 2 * HOUR)
    assert _sweep(store, pg_url, deps, FixedClock(now), prefix).orphans == [], (
        "a young secret may be a connect being written"
    )
    dry = _sweep(store, pg_url, deps, later, prefix, dry_run=True)
    assert (dry.orphans, dry.deleted) == ([orphan], [])
    assert store.enabled_versions(orphan) == [1]
    swept = _sweep(store, pg_url, deps, later, prefix)
    assert (swept.orphans, swept.deleted, swept.revoked) == ([orphan], [orphan], 0), "static credentials: no grant"
    assert store.enabled_versions(orphan) == []
    assert store.enabled_versions(kept) == [1]
    assert store.enabled_versions(f"{prefix}-readiness-probe") == [1]


def test_an_orphan_whose_provider_cannot_revoke_is_kept_and_a_run_handles_at_most_its_limit(
    store, pg_url, deps, prefix
):
    now = datetime.now(UTC)
    orphans = sorted(secret_id_for(prefix, uuid4()) for _ in range(3))
    for name in orphans:
        store.add_version(name, json.dumps({"refresh_token": f"rt-{name}"}).encode(), {"provider": "down"})
    later = FixedClock(now + 2 * HOUR)

    first = _sweep(store, pg_url, deps, later, prefix, limit=2)
    assert (first.orphans, first.kept, first.deleted) == (orphans[:2], orphans[:2], [])
    assert all(store.enabled_versions(name) == [1] for name in orphans), "kept until the provider answers"
    with engine_for_url(pg_url).connect() as conn:
        events = conn.execute(
            select(AuditEventRow.action, AuditEventRow.outcome, AuditEventRow.detail).where(
                AuditEventRow.actor == "system:sweeper"
            )
        ).all()
    assert [(a, o, d["revocation"]) for a, o, d in events] == [
        ("secret.orphan_kept", "failure", {"outcome": "failed", "reason": "unreachable"})
    ] * 2
    assert not any(f"rt-{name}" in str(events) for name in orphans)


def test_a_secret_store_outage_is_reported_by_the_run_and_never_fails_it(pg_url, deps):
    from shared.services.housekeeping import Housekeeping
    from tests.fakes.secret_manager_server import LocalSecretManager

    stopped = LocalSecretManager.start()
    stopped.stop()
    with GcpSecretManagerStore.build_client(stopped.grpc_endpoint) as client:
        engine = engine_for_url(pg_url)
        clock = FixedClock(datetime.now(UTC))
        housekeeping = Housekeeping(
            store=SqlHousekeepingStore(engine), secrets=GcpSecretManagerStore("p", client, timeout=0.5),
            audit=SqlAuditLog(engine, clock), clock=clock, catalog=deps.catalog, settings=deps.settings,
            directory=deps.directory, revoker=deps.revoker,
        )  # fmt: skip
        assert housekeeping.run() == {
            "purged": {"audit_events": 0, "oauth_states": 0, "connect_sessions": 0, "events": 0},
            "swept": {"orphans": 0, "revoked": 0, "deleted": 0, "kept": 0, "error": "secret_store_unavailable"},
        }


def test_broker_sweep_secrets_lists_then_revokes_and_deletes(pg_url, tmp_path):
    import base64
    import os
    import subprocess
    import sys

    from shared.domain.envelope import Keyring, new_data_key

    raw = new_data_key()
    keyring, key = Keyring({1: raw}), base64.b64encode(raw).decode()
    env = {**os.environ, "DATABASE_URL": pg_url, "SECRET_BACKEND": "database", "DATA_KEYS": f"1:{key}",
           "LOCAL_DATA_DIR": str(tmp_path)}  # fmt: skip
    store = DatabaseSecretStore(engine_for_url(pg_url), keyring, FixedClock(datetime.now(UTC) - 2 * HOUR))
    orphan = secret_id_for("broker-int", uuid4())
    store.add_version(orphan, json.dumps({"refresh_token": "rt"}).encode(), {"provider": "demo"})

    def broker(*args: str) -> str:
        done = subprocess.run([sys.executable, "-m", "shared.cli", "sweep-secrets", *args], env=env,
                              capture_output=True, text=True, timeout=60, check=True)  # fmt: skip
        return done.stdout

    assert broker("--dry-run") == f"would revoke and delete 1 orphan secret(s)\n  {orphan}\n"
    assert store.enabled_versions(orphan) == [1]
    assert broker() == f"deleted 1 orphan secret(s), 0 grant(s) revoked\n  {orphan}\n"
    assert store.enabled_versions(orphan) == []


def test_a_draining_process_starts_no_housekeeping_and_a_run_sweeps_its_window(pg_url, deps, keyring):
    from shared.services.housekeeping import Housekeeping

    engine = engine_for_url(pg_url)
    clock = FixedClock(datetime.now(UTC) + 2 * HOUR)
    store = DatabaseSecretStore(engine, keyring, FixedClock(datetime.now(UTC)))
    orphan = secret_id_for(deps.settings.secret_prefix, uuid4())
    store.add_version(orphan, json.dumps({"credentials": {}}).encode(), {})
    housekeeping = Housekeeping(
        store=SqlHousekeepingStore(engine), secrets=store, audit=SqlAuditLog(engine, clock), clock=clock,
        catalog=deps.catalog, settings=deps.settings, directory=deps.directory, revoker=deps.revoker,
        stopping=lambda: True,
    )  # fmt: skip
    assert housekeeping.run()["swept"] == {"orphans": 0, "revoked": 0, "deleted": 0, "kept": 0}
    assert store.enabled_versions(orphan) == [1]
    housekeeping.stopping = lambda: False
    clock.advance(hours=48)  # 50 h old: born before the default window (48 h before the minimum age of 1 h)
    assert housekeeping.run()["swept"] == {"orphans": 0, "revoked": 0, "deleted": 0, "kept": 0}
    housekeeping.settings = load_settings(provider_timeout=1, sweep_window_hours=0)  # every secret, every run
    assert housekeeping.run()["swept"] == {"orphans": 1, "revoked": 0, "deleted": 1, "kept": 0}


def test_a_windowed_sweep_lists_only_recent_creations_and_a_full_one_finds_the_rest(store, pg_url, deps, prefix):
    """The refresh job sweeps a window of recent creations (SWEEP_WINDOW_HOURS: its listing stays small at a million
    secrets); `broker sweep-secrets` (no window) finds an orphan born before it."""
    now = datetime.now(UTC)
    orphan = secret_id_for(prefix, uuid4())
    store.add_version(orphan, json.dumps({"credentials": {"api_key": "k"}}).encode(), {"provider": "openai"})
    later = FixedClock(now + 2 * HOUR)  # the orphan is 2 h old: 1 h past the minimum age
    assert _sweep(store, pg_url, deps, later, prefix, window=HOUR / 2, dry_run=True).orphans == [], "before the window"
    assert _sweep(store, pg_url, deps, later, prefix, window=2 * HOUR, dry_run=True).orphans == [orphan]
    assert _sweep(store, pg_url, deps, later, prefix).deleted == [orphan], "no window: everything"
