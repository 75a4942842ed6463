"""The ways a rotated refresh token used to be lost, each against oidc-provider's strict rotation (a used refresh
token that comes back revokes the grant): a secret store that refuses writes, a fenced-out worker's version, a
lease that lapses after the provider call, and a version listing that lags behind."""

from __future__ import annotations

import dataclasses
import os
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from uuid import UUID

import grpc
import pytest

from shared.domain.clock import FixedClock
from shared.services.refresh_job import run_refresh_job
from tests.support.broker_env import connect, in_process_broker
from tests.support.engine import current, lapse_lease, pinned_refresh_token, reconnect, refresh_grants
from tests.support.mariadb import ALSO_ON_MYSQL


def no_grant_revoked(provider) -> None:
    assert refresh_grants(provider)["errors"] == {}, "a used refresh token reached the provider"
    assert provider.stats()["grants_revoked"] == 0


def settled(app, integration_id: UUID) -> None:
    """The row's refresh token is in the secret store, pinned, with nothing superseded left enabled."""
    row = current(app, integration_id)
    assert row.pending_secret_ciphertext is None
    assert app.secret_store.enabled_versions(row.secret_ref) == [row.secret_version]


def test_a_secret_store_refusing_writes_for_minutes_loses_no_grant(env, provider, secret_manager, monkeypatch):
    clock = FixedClock(datetime.now(UTC))
    with in_process_broker(env, monkeypatch, clock=clock) as app:
        integration_id = UUID(connect(app, provider))
        secret_manager.fail_always("AddSecretVersion", grpc.StatusCode.RESOURCE_EXHAUSTED, "quota exceeded")
        for _ in range(3):  # rotating refreshes and job runs while every write is refused, minutes apart
            assert app.refresher.refresh(integration_id, force=True).outcome == "refreshed"
            clock.advance(minutes=2)
            run_refresh_job(app.refresh_store, app.refresher, app.clock, app.job_settings)
        assert current(app, integration_id).pending_secret_ciphertext is not None
        secret_manager.clear_failures()  # the quota refills
        counts = run_refresh_job(app.refresh_store, app.refresher, app.clock, app.job_settings)
        assert counts["secrets_settled"] == 1
        settled(app, integration_id)
        assert app.refresher.refresh(integration_id, force=True).outcome == "refreshed"
        settled(app, integration_id)
    no_grant_revoked(provider)
    assert refresh_grants(provider)["success"] >= 4  # the job refreshed too: these tokens live 10 min


@pytest.mark.parametrize("backend", ["gcp", "database", "openbao"])
def test_a_reconnect_during_a_refresh_keeps_the_new_grant(env, provider, monkeypatch, backend):
    if backend == "database":
        env = {**env, "SECRET_BACKEND": "database"}
    with in_process_broker(env, monkeypatch) as app:
        integration_id = UUID(connect(app, provider))
        pins = []

        def reconnect_meanwhile(step: str) -> None:
            if step == "after_provider":  # the user re-authorises while the provider answers the refresh
                reconnect(app, provider, integration_id)
                pins.append(current(app, integration_id).secret_version)

        racing = dataclasses.replace(app.refresher, step=reconnect_meanwhile)
        assert racing.refresh(integration_id, force=True).outcome == "fenced"
        row = current(app, integration_id)
        assert row.secret_ref is not None
        assert app.secret_store.enabled_versions(row.secret_ref) == pins, "the fenced worker left its version"
        reconnected = pinned_refresh_token(app, integration_id)
        assert app.refresher.refresh(integration_id, force=True).outcome == "refreshed"
        # The reconnect's grant was the one refreshed: its refresh token is spent, the loser's old grant unused.
        assert pinned_refresh_token(app, integration_id) != reconnected
        assert app.refresher.refresh(integration_id, force=True).outcome == "refreshed"
        settled(app, integration_id)
    no_grant_revoked(provider)


class SlowFirstWrite:
    """The real store, except that the first new version is slow: long enough for the lease to lapse and for
    another worker to refresh meanwhile (`meanwhile` runs inside it)."""

    def __init__(self, store, meanwhile):
        self._store = store
        self._meanwhile = meanwhile
        self.slow = True

    def add_version(self, secret_id, payload, labels):
        if self.slow:
            self.slow = False
            self._meanwhile()
        return self._store.add_version(secret_id, payload, labels)

    def __getattr__(self, name):
        return getattr(self._store, name)


@ALSO_ON_MYSQL
def test_a_lease_that_lapses_during_a_slow_secret_write_loses_no_grant(env, provider, monkeypatch):
    env = {**env, "PROVIDER_TIMEOUT": "2", "REFRESH_LEASE": "12"}  # the documented minimum: timeout + 10 s
    with in_process_broker(env, monkeypatch) as other:
        integration_id = UUID(connect(other, provider))
        outcomes = []

        def second_worker() -> None:
            lapse_lease(other, integration_id)
            outcomes.append(other.refresher.refresh(integration_id, force=True).outcome)

        with in_process_broker(env, monkeypatch) as real:
            slow = SlowFirstWrite(real.secret_store, second_worker)
            with in_process_broker(env, monkeypatch, secret_store=slow) as first:
                first.refresher.refresh(integration_id, force=True)
        assert outcomes == ["refreshed"]
        row = current(other, integration_id)
        assert (row.status.value, row.lease_owner) == ("active", None)
        assert other.refresher.refresh(integration_id, force=True).outcome == "refreshed"
        settled(other, integration_id)
    no_grant_revoked(provider)


@ALSO_ON_MYSQL
def test_a_lease_is_judged_by_the_database_clock_not_an_instances(app, provider):
    integration_id = UUID(connect(app, provider))
    holder = app.refresh_store.claim(integration_id, "worker-a", timedelta(seconds=60), datetime.now(UTC))
    assert holder is not None
    skewed = datetime.now(UTC) + timedelta(minutes=10)  # another instance whose clock runs ten minutes ahead
    assert app.refresh_store.claim(integration_id, "worker-b", timedelta(seconds=60), skewed) is None
    behind = datetime.now(UTC) - timedelta(minutes=10)  # and one whose clock is behind: its lease is not longer
    app.refresh_store.release(integration_id, "worker-a")
    claimed = app.refresh_store.claim(integration_id, "worker-c", timedelta(seconds=60), behind)
    assert claimed.lease_until > datetime.now(UTC) + timedelta(seconds=50)


@ALSO_ON_MYSQL
def test_recovery_after_a_crash_does_not_trust_a_lagging_listing(app, provider, env, secret_manager):
    integration_id = connect(app, provider)
    killed = subprocess.run(
        [sys.executable, "-m", "tests.support.refresh_worker", integration_id, "after_secret_write"],
        env={**os.environ, **env}, capture_output=True, timeout=60, check=False,
    )  # fmt: skip
    assert killed.returncode == 3, killed.stderr.decode()[-2000:]
    lapse_lease(app, integration_id)
    secret_manager.lag_listing(1)  # the listing does not show the version the dead worker added yet
    assert app.refresher.refresh(UUID(integration_id), force=True).outcome == "refreshed"
    secret_manager.clear_failures()
    assert app.refresher.refresh(UUID(integration_id), force=True).outcome == "refreshed"
    settled(app, UUID(integration_id))
    no_grant_revoked(provider)
