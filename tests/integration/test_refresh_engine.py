"""The refresh engine against oidc-provider (which rotates refresh tokens and revokes a grant whose used token
comes back), real PostgreSQL and the real Secret Manager client against the local API server, or a real OpenBao
server (every test runs on both backends): a lost rotated token would be visible."""

from __future__ import annotations

import dataclasses
import json
import os
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from uuid import UUID

import pytest
from sqlalchemy import delete, update

from shared.adapters.orm import IntegrationRow
from shared.domain.clock import FixedClock
from shared.errors import Conflict, DependencyUnavailable
from shared.services.refresh import Lease
from tests.support.broker_env import connect, in_process_broker
from tests.support.engine import expire, refresh_grants
from tests.support.mariadb import ALSO_ON_MYSQL


@pytest.fixture(params=["gcp", "openbao"])
def backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@ALSO_ON_MYSQL
def test_a_rotating_refresh_writes_one_version_and_destroys_the_old(app, provider, secret_manager, backend):
    integration_id = UUID(connect(app, provider))
    before = app.refresh_store.get(integration_id)
    writes = secret_manager.calls["AddSecretVersion"]
    result = app.refresher.refresh(integration_id, force=True)
    assert result.outcome == "refreshed"
    after = app.refresh_store.get(integration_id)
    assert after.secret_version == before.secret_version + 1
    assert after.credential_version == before.credential_version + 1
    assert app.secret_store.enabled_versions(after.secret_ref) == [after.secret_version]
    if backend == "gcp":  # counted by the local API server (versions are numbered 1, 2, … on both)
        assert secret_manager.calls["AddSecretVersion"] - writes == 1
    assert app.refresher.refresh(integration_id, force=True).outcome == "refreshed", "the rotated token was kept"
    assert refresh_grants(provider)["success"] == 2


def test_fetch_refreshes_an_expired_token_and_serves_a_valid_one_from_memory(app, provider, secret_manager, backend):
    integration_id = connect(app, provider)
    first = app.token_service.fetch(UUID(integration_id), "test")
    reads = secret_manager.calls["AccessSecretVersion"]
    used = app.refresh_store.get(UUID(integration_id)).last_used_at
    again = app.token_service.fetch(UUID(integration_id), "test")
    assert again["access_token"] == first["access_token"]
    if backend == "gcp":
        assert secret_manager.calls["AccessSecretVersion"] == reads, "the hot path does not call Secret Manager"
    assert used is not None
    assert app.refresh_store.get(UUID(integration_id)).last_used_at == used, "written at most once a minute"
    expire(app, integration_id)
    fresh = app.token_service.fetch(UUID(integration_id), "test")
    assert fresh["access_token"] != first["access_token"]
    assert refresh_grants(provider)["success"] == 1
    assert "refresh_token" not in fresh


@ALSO_ON_MYSQL
@pytest.mark.parametrize("step", ["after_row_update", "after_secret_write", "after_pin"])
def test_a_worker_killed_after_a_step_loses_nothing(app, provider, env, step):
    integration_id = connect(app, provider)
    killed = subprocess.run(
        [sys.executable, "-m", "tests.support.refresh_worker", integration_id, step],
        env={**os.environ, **env}, capture_output=True, timeout=60, check=False,
    )  # fmt: skip
    assert killed.returncode == 3, killed.stderr.decode()[-2000:]
    with app.engine.begin() as conn:  # the dead worker's lease lapses
        conn.execute(update(IntegrationRow).values(lease_until=datetime.now(UTC) - timedelta(seconds=1)))
    for _ in range(2):  # the next attempts recover, and the token after them is good too
        assert app.refresher.refresh(UUID(integration_id), force=True).outcome == "refreshed"
    assert refresh_grants(provider)["errors"] == {}
    row = app.refresh_store.get(UUID(integration_id))
    assert app.secret_store.enabled_versions(row.secret_ref) == [row.secret_version]


@ALSO_ON_MYSQL
def test_a_worker_killed_between_the_provider_and_the_secret_write_is_detected_not_silent(app, provider, env):
    integration_id = connect(app, provider)
    subprocess.run(
        [sys.executable, "-m", "tests.support.refresh_worker", integration_id, "after_provider"],
        env={**os.environ, **env}, capture_output=True, timeout=60, check=False,
    )  # fmt: skip
    with app.engine.begin() as conn:
        conn.execute(update(IntegrationRow).values(lease_until=datetime.now(UTC) - timedelta(seconds=1)))
    # The rotated token existed only in the dead process: a strict provider refuses the old one.
    assert app.refresher.refresh(UUID(integration_id), force=True).outcome == "reauth_required"
    with pytest.raises(Conflict) as caught:
        app.token_service.fetch(UUID(integration_id), "test")
    assert caught.value.code == "reauth_required"


def test_a_failing_secret_write_is_retried_so_the_rotated_token_survives(app, provider, secret_manager, backend):
    import grpc

    if backend != "gcp":
        pytest.skip("a one-off failure is injected by the local Secret Manager; OpenBao outages: test_openbao_store")

    integration_id = UUID(connect(app, provider))
    secret_manager.fail_next("AddSecretVersion", grpc.StatusCode.INTERNAL)
    assert app.refresher.refresh(integration_id, force=True).outcome == "refreshed"
    assert app.refresher.refresh(integration_id, force=True).outcome == "refreshed"


def test_invalid_grant_means_reauth_and_no_more_calls(app, provider):
    integration_id = UUID(connect(app, provider))
    provider.fail_token("invalid_grant")
    assert app.refresher.refresh(integration_id, force=True).outcome == "reauth_required"
    calls = provider.stats()["token_requests"]
    for _ in range(3):
        with pytest.raises(Conflict, match="connected again"):
            app.token_service.fetch(integration_id, "test", force=True)
    assert provider.stats()["token_requests"] == calls
    row = app.refresh_store.get(integration_id)
    assert (row.status, row.last_refresh_error) == ("reauth_required", "invalid_grant")


def test_server_errors_back_off_without_a_storm(env, provider, monkeypatch):
    clock = FixedClock(datetime.now(UTC))
    with in_process_broker(env, monkeypatch, clock=clock) as app:
        integration_id = UUID(connect(app, provider))
        provider.fail_token("500", count=10_000)
        expire(app, str(integration_id))
        calls_before = provider.stats()["token_requests"]
        retry_afters = []
        for _ in range(120):  # two hours of a caller asking every minute
            with pytest.raises(DependencyUnavailable) as caught:
                app.token_service.fetch(integration_id, "test")
            retry_afters.append(int(caught.value.details["retry_after"]))
            clock.advance(minutes=1)
        calls = provider.stats()["token_requests"] - calls_before
        row = app.refresh_store.get(integration_id)
    assert min(retry_afters) >= 1
    assert calls <= 10, f"{calls} provider calls in 2 h: backoff must bound them"
    assert row is not None
    assert row.consecutive_failures == calls


def test_a_transient_failure_still_serves_a_token_that_is_valid(app, provider):
    integration_id = UUID(connect(app, provider))
    with app.engine.begin() as conn:  # inside the refresh margin, not yet expired
        soon = datetime.now(UTC) + timedelta(seconds=60)
        conn.execute(update(IntegrationRow).values(token_expires_at=soon))
    stored = app.token_service._token(app.refresh_store.get(integration_id))["access_token"]
    provider.fail_token("500")
    assert app.token_service.fetch(integration_id, "test")["access_token"] == stored


def test_the_refresh_token_never_leaves(app, provider, caplog):
    caplog.set_level("DEBUG")
    integration_id = UUID(connect(app, provider))
    app.refresher.refresh(integration_id, force=True)
    row = app.refresh_store.get(integration_id)
    refresh_token = json.loads(app.secret_store.read(row.secret_ref, row.secret_version))["refresh_token"]
    view = app.token_service.fetch(integration_id, "test", force=True)
    assert refresh_token not in json.dumps(view)
    assert refresh_token not in caplog.text
    assert dataclasses.asdict(row)["access_token_ciphertext"] is not None


@ALSO_ON_MYSQL
def test_one_broken_integration_does_not_stop_the_job(app, provider):
    from shared.services.refresh_job import run_refresh_job

    good, broken = (UUID(connect(app, provider, entity=e)) for e in ("good", "broken"))
    row = app.refresh_store.get(broken)
    garbage = app.secret_store.add_version(row.secret_ref, b"not json", {})  # the pinned version is unreadable
    with app.engine.begin() as conn:
        conn.execute(update(IntegrationRow).where(IntegrationRow.id == broken).values(secret_version=garbage))
    expire(app, str(good))
    expire(app, str(broken))
    counts = run_refresh_job(app.refresh_store, app.refresher, app.clock, app.job_settings)
    assert (counts["claimed"], counts["refreshed"], counts["failed_transient"]) == (2, 1, 1)
    assert app.refresh_store.get(broken).lease_owner is None


@ALSO_ON_MYSQL
def test_an_integration_deleted_during_its_refresh_leaves_no_secret(app, provider):
    integration_id = UUID(connect(app, provider))
    row = app.refresh_store.get(integration_id)

    def delete_meanwhile(step: str) -> None:
        if step == "after_provider":  # DELETE /integrations/{id} lands while the provider answers
            with app.engine.begin() as conn:
                conn.execute(delete(IntegrationRow).where(IntegrationRow.id == integration_id))
            app.secret_store.delete(row.secret_ref)

    refresher = dataclasses.replace(app.refresher, step=delete_meanwhile)
    assert refresher.refresh(integration_id, force=True).outcome == "fenced"
    assert app.secret_store.enabled_versions(row.secret_ref) == []


def test_a_lease_too_short_for_the_provider_call_is_given_back_before_calling(app, provider):
    integration_id = UUID(connect(app, provider))
    owner = app.refresher.new_owner("test")
    sent = time.monotonic()
    claimed = app.refresh_store.claim(integration_id, owner, timedelta(seconds=3), datetime.now(UTC))
    assert claimed is not None
    calls = provider.stats()["token_requests"]
    result = app.refresher.refresh_claimed(claimed, Lease(owner, sent + 3))
    assert (result.outcome, result.reason) == ("busy", "lease_too_short")
    assert provider.stats()["token_requests"] == calls
    assert app.refresh_store.get(integration_id).lease_owner is None
