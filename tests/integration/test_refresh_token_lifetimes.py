"""Refresh-token lifetimes against oidc-provider and PostgreSQL, with an injected clock: an idle window is kept
open by the job although nobody fetches, and a refresh token's end is announced once (`integration.expiring_soon`)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from uuid import UUID

import pytest
from sqlalchemy import update

from shared.adapters.orm import IntegrationRow
from shared.domain.clock import FixedClock
from shared.services.refresh_job import run_refresh_job
from tests.support.broker_env import broker_env, connect, in_process_broker, provider_file
from tests.support.demo_provider import demo_broker_env, serving_demo_provider
from tests.support.engine import current
from tests.support.events import events
from tests.support.mariadb import ALSO_ON_MYSQL
from tests.support.seed import seed_integration

IDLE = 90 * 86400
ENDING = 30 * 86400


@pytest.fixture
def clocked(database_url, secret_manager, provider, tmp_path, monkeypatch):
    provider.reset()
    extra = {
        "idle-test": f"    scopes: [openid, email]\n    refresh_token_idle_lifetime: {IDLE}\n",
        "ending-test": f"    scopes: [openid, email]\n    refresh_token_absolute_lifetime: {ENDING}\n",
    }
    env = broker_env(
        database_url, secret_manager, provider_file(tmp_path, provider.issuer, extra=extra),
        clients_for=("oidc-test", "idle-test", "ending-test"),
    )  # fmt: skip
    clock = FixedClock(datetime.now(UTC))
    with in_process_broker(env, monkeypatch, clock=clock) as app:
        yield app, clock


def _long_lived_access_token(app, integration_id: UUID, until: datetime) -> None:
    """As a provider whose access tokens outlive the refresh token's idle window (nothing else makes it due)."""
    with app.engine.begin() as conn:
        conn.execute(update(IntegrationRow).where(IntegrationRow.id == integration_id).values(token_expires_at=until))


@ALSO_ON_MYSQL
def test_an_idle_refresh_token_is_refreshed_by_the_job_before_its_window_ends(clocked, provider):
    app, clock = clocked
    connected_at = clock.now()
    integration_id = UUID(connect(app, provider, provider_id="idle-test"))
    row = current(app, integration_id)
    assert row.keep_alive_at is not None
    assert connected_at + timedelta(days=83) <= row.keep_alive_at < connected_at + timedelta(seconds=IDLE)
    _long_lived_access_token(app, integration_id, connected_at + timedelta(days=365))
    clock.advance(days=60)  # nobody fetches; the window is not ending yet
    assert run_refresh_job(app.refresh_store, app.refresher, app.clock, app.job_settings)["claimed"] == 0
    clock.advance(days=24)  # 84 days in: inside the last week of the 90-day window
    counts = run_refresh_job(app.refresh_store, app.refresher, app.clock, app.job_settings)
    assert (counts["claimed"], counts["refreshed"]) == (1, 1)
    after = current(app, integration_id)
    assert after.last_refreshed_at == clock.now()
    assert after.keep_alive_at is not None
    assert after.keep_alive_at > clock.now() + timedelta(days=80), "the refresh opened a new window"
    assert provider.stats()["token"]["refresh_token"]["success"] == 1


@ALSO_ON_MYSQL
def test_a_refresh_token_end_is_stored_and_announced_once_before_it(clocked, provider):
    app, clock = clocked
    connected_at = clock.now()
    integration_id = UUID(connect(app, provider, provider_id="ending-test"))
    row = current(app, integration_id)
    assert row.refresh_token_expires_at == connected_at + timedelta(seconds=ENDING)
    assert row.keep_alive_at is None
    job = lambda: run_refresh_job(app.refresh_store, app.refresher, app.clock, app.job_settings)  # noqa: E731
    clock.advance(days=20)
    assert job()["expiring_soon"] == 0, "not within the warning yet"
    clock.advance(days=5)  # five days before the end
    assert job()["expiring_soon"] == 1
    assert job()["expiring_soon"] == 0, "once per window"
    warned = [e for e in events(app.engine) if e.type == "integration.expiring_soon"]
    assert len(warned) == 1
    assert warned[0].data["reason"] == "refresh_token_expiring"
    assert warned[0].data["integration_id"] == str(integration_id)
    assert warned[0].data["refresh_token_expires_at"].startswith(row.refresh_token_expires_at.strftime("%Y-%m-%dT"))
    assert app.refresher.refresh(integration_id, force=True).outcome == "refreshed"
    assert current(app, integration_id).refresh_token_expires_at == row.refresh_token_expires_at, (
        "a refresh cannot move an absolute end the provider did not restate"
    )


@pytest.mark.parametrize("field", ["refresh_token_expires_in", "x_refresh_token_expires_in"])
def test_the_end_a_provider_states_for_its_refresh_token_is_stored_by_each_refresh(
    database_url, tmp_path, monkeypatch, field
):
    """A provider that says how long each (rotated) refresh token lives, over HTTP: GitHub Apps' name and Intuit's.
    Each refresh stores the new end."""
    with serving_demo_provider() as (server, base):
        server.refresh_token_lifetime, server.refresh_token_expires_field = ENDING, field
        env = demo_broker_env(base, database_url, tmp_path)
        with in_process_broker(env, monkeypatch) as app:
            tokens = server._issue("user", "profile")
            now = datetime.now(UTC)
            integration_id = seed_integration(
                app, "remote-demo", "entity-ends", refresh_token=tokens["refresh_token"],
                access_token=tokens["access_token"], expires_at=now + timedelta(hours=1),
                refreshed_at=now - timedelta(hours=1),
            )  # fmt: skip
            assert current(app, integration_id).refresh_token_expires_at is None
            before = datetime.now(UTC)
            assert app.refresher.refresh(integration_id, force=True).outcome == "refreshed"
            after = datetime.now(UTC)
            end = current(app, integration_id).refresh_token_expires_at
            assert end is not None, f"{field} was not read"
            assert before + timedelta(seconds=ENDING) <= end <= after + timedelta(seconds=ENDING)
            assert server.grants["refresh_token"] == 1
