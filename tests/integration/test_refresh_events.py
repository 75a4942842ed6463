"""The refresh engine's events against oidc-provider: one per transition, never one per attempt."""

from __future__ import annotations

from datetime import UTC, datetime
from uuid import UUID

import pytest

from shared.domain.clock import FixedClock
from tests.support.broker_env import connect, in_process_broker
from tests.support.engine import current
from tests.support.events import event_types, events


@pytest.fixture
def clocked(env, monkeypatch):
    clock = FixedClock(datetime.now(UTC))
    with in_process_broker(env, monkeypatch, clock=clock) as app:
        yield app, clock


def test_a_refresh_failing_twenty_times_is_one_refresh_failed_then_one_recovered(clocked, provider):
    app, clock = clocked
    integration_id = UUID(connect(app, provider))
    provider.fail_token("500", count=20)
    outcomes = []
    for _ in range(20):
        outcomes.append(app.refresher.refresh(integration_id, force=True).outcome)
        clock.advance(hours=1)  # past any backoff
    assert outcomes == ["transient"] * 20
    assert current(app, integration_id).consecutive_failures == 20
    assert event_types(app.engine) == ["integration.connected", "integration.refresh_failed"]
    assert app.refresher.refresh(integration_id, force=True).outcome == "refreshed"
    assert app.refresher.refresh(integration_id, force=True).outcome == "refreshed"
    connected, failed, recovered = events(app.engine)
    assert [connected.type, failed.type, recovered.type] == [
        "integration.connected", "integration.refresh_failed", "integration.recovered"
    ]  # fmt: skip
    assert failed.data["reason"] == "http_500"
    assert failed.data["status"] == "active"
    assert "next_attempt_at" in failed.data
    assert recovered.data["failures"] == 20
    assert connected.data["refreshable"] is True


def test_a_grant_the_provider_ends_is_one_reauth_required_and_a_reconnect_is_reconnected(clocked, provider):
    app, clock = clocked
    integration_id = UUID(connect(app, provider))
    provider.fail_token("500", count=2)
    app.refresher.refresh(integration_id, force=True)
    clock.advance(hours=1)
    app.refresher.refresh(integration_id, force=True)
    clock.advance(hours=1)
    provider.fail_token("invalid_grant", count=5)
    assert app.refresher.refresh(integration_id, force=True).outcome == "reauth_required"
    clock.advance(hours=1)
    assert app.refresher.refresh(integration_id, force=True).outcome == "not_due"
    provider.fail_token("none")
    connect(app, provider)  # the same account again: the same integration, reconnected
    types = event_types(app.engine)
    assert types == [
        "integration.connected", "integration.refresh_failed", "integration.reauth_required",
        "integration.reconnected",
    ]  # fmt: skip
    reauth = events(app.engine)[2]
    assert (reauth.data["status"], reauth.data["reason"]) == ("reauth_required", "invalid_grant")
    assert events(app.engine)[3].data["status"] == "active"
