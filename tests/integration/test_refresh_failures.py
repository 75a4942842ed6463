"""Refreshes that fail, and callers that ask too much: definitive refusals end in reauth_required (with the reason
shown), min_ttl above the provider's lifetime and forced refreshes cannot make a provider call per fetch, and a
user's status change survives a refresh in flight."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime
from uuid import UUID

import pytest

from shared.api.views import integration_view
from shared.domain.clock import FixedClock
from shared.errors import Conflict, DependencyUnavailable
from shared.services.integrations import IntegrationPatch
from tests.support.broker_env import broker_env, connect, in_process_broker, provider_file
from tests.support.engine import current, expire, refresh_grants, set_row

GITHUB_LIKE = "    scopes: [openid]\n    permanent_errors: [bad_refresh_token]\n"


@pytest.fixture
def clocked(env, monkeypatch):
    clock = FixedClock(datetime.now(UTC))
    with in_process_broker(env, monkeypatch, clock=clock) as app:
        yield app, clock


def attempt_until_settled(app, clock, integration_id: UUID, attempts: int) -> list[str]:
    """Refresh again each time the backoff allows, as the job would; the outcomes in order."""
    outcomes = []
    for _ in range(attempts):
        outcomes.append(app.refresher.refresh(integration_id, force=True).outcome)
        clock.advance(hours=1)  # past any backoff
    return outcomes


@pytest.mark.parametrize(
    ("status", "body"),
    [
        (200, {"error": "bad_refresh_token"}),  # GitHub's way of saying the refresh token is dead
        (400, {"error": "invalid_request", "error_description": "malformed"}),
        (400, None),  # no body at all
        (401, None),
    ],
)
def test_a_definitive_refusal_ends_in_reauth_required_after_three_spaced_attempts(clocked, provider, status, body):
    app, clock = clocked
    integration_id = UUID(connect(app, provider))
    provider.fail_token("reply", count=100, status=status, body=body)
    outcomes = attempt_until_settled(app, clock, integration_id, 4)
    assert outcomes == ["transient", "transient", "reauth_required", "not_due"]
    row = current(app, integration_id)
    assert row.status.value == "reauth_required"
    assert row.last_refresh_error == (body or {}).get("error", f"http_{status}")
    assert integration_view(row)["last_refresh_error"] == row.last_refresh_error
    assert provider.stats()["injected"]["reply"] == 3, "no call after the grant was judged gone"


def test_a_provider_specific_permanent_error_from_the_catalog_ends_the_grant_at_once(
    pg_url, secret_manager, provider, tmp_path, monkeypatch
):
    provider.reset()
    providers = provider_file(tmp_path, provider.issuer, extra={"github-like": GITHUB_LIKE})
    env = broker_env(pg_url, secret_manager, providers, clients_for=("oidc-test", "github-like"))
    with in_process_broker(env, monkeypatch) as app:
        integration_id = UUID(connect(app, provider, provider_id="github-like"))
        provider.fail_token("reply", status=200, body={"error": "bad_refresh_token"})
        assert app.refresher.refresh(integration_id, force=True).outcome == "reauth_required"
        assert current(app, integration_id).last_refresh_error == "bad_refresh_token"


def test_transient_failures_never_become_permanent(clocked, provider):
    app, clock = clocked
    integration_id = UUID(connect(app, provider))
    provider.fail_token("500", count=100)
    assert set(attempt_until_settled(app, clock, integration_id, 6)) == {"transient"}
    assert current(app, integration_id).status.value == "active"


def test_a_destroyed_pinned_secret_means_reauth_with_its_own_reason(app, provider):
    integration_id = UUID(connect(app, provider))
    row = current(app, integration_id)
    app.secret_store.destroy_version(row.secret_ref, row.secret_version)
    calls = provider.stats()["token_requests"]
    assert app.refresher.refresh(integration_id, force=True).outcome == "reauth_required"
    assert current(app, integration_id).last_refresh_error == "secret_not_found"
    expire(app, integration_id)
    with pytest.raises(Conflict) as refused:
        app.token_service.fetch(integration_id, "test")
    assert refused.value.code == "reauth_required"
    assert provider.stats()["token_requests"] == calls


def test_min_ttl_above_the_providers_lifetime_refreshes_at_most_once_per_token(app, provider):
    integration_id = UUID(connect(app, provider))  # oidc-provider issues 600 s access tokens here
    expiries = set()
    for _ in range(5):
        answer = app.token_service.fetch(integration_id, "test", min_ttl=3600)
        expiries.add(answer["expires_at"])
    assert refresh_grants(provider)["success"] <= 1, "a provider call per fetch"
    assert len(expiries) == 1, "every fetch answered the same token, with its real expiry"


def test_forced_refreshes_right_after_one_answer_its_token_without_a_provider_call(app, provider):
    integration_id = UUID(connect(app, provider))
    set_row(app, integration_id, last_refreshed_at=datetime(2026, 1, 1, tzinfo=UTC))  # an old token
    first = app.token_service.fetch(integration_id, "a", force=True)
    second = app.token_service.fetch(integration_id, "b", force=True)  # another caller saw the same 401
    assert second["access_token"] == first["access_token"]
    assert refresh_grants(provider)["success"] == 1


def test_a_forced_refresh_during_backoff_is_503_not_the_rejected_token(app, provider):
    integration_id = UUID(connect(app, provider))
    set_row(app, integration_id, last_refreshed_at=datetime(2026, 1, 1, tzinfo=UTC))
    provider.fail_token("500")
    with pytest.raises(DependencyUnavailable):
        app.token_service.fetch(integration_id, "test", force=True)  # the refresh fails: backoff starts
    calls = provider.stats()["token_requests"]
    with pytest.raises(DependencyUnavailable) as refused:  # the caller's token was rejected: do not hand it back
        app.token_service.fetch(integration_id, "test", force=True)
    assert refused.value.code == "refresh_unavailable"
    assert int(refused.value.details["retry_after"]) >= 1
    assert provider.stats()["token_requests"] == calls
    assert app.token_service.fetch(integration_id, "test")["access_token"], "unforced reads still get the token"


def test_a_user_setting_inactive_during_a_refresh_stays_inactive_and_the_token_is_kept(app, provider):
    integration_id = UUID(connect(app, provider))
    patch = app.integration_service.update

    def deactivate_meanwhile(step: str) -> None:
        if step == "after_provider":
            patch("entity-1", integration_id, IntegrationPatch({"status": "inactive"}))

    racing = dataclasses.replace(app.refresher, step=deactivate_meanwhile)
    racing.refresh(integration_id, force=True)
    assert current(app, integration_id).status.value == "inactive"
    patch("entity-1", integration_id, IntegrationPatch({"status": "active"}))
    assert app.refresher.refresh(integration_id, force=True).outcome == "refreshed"
    assert refresh_grants(provider)["errors"] == {}, "the token rotated during the race was kept"


def test_discovery_failing_never_ends_a_grant(env, provider, tmp_path, monkeypatch):
    with in_process_broker(env, monkeypatch) as app:
        integration_id = UUID(connect(app, provider))
    moved = tmp_path / "moved"
    moved.mkdir()
    broken = provider_file(moved, provider.issuer + "/gone")  # its discovery document now answers 404
    clock = FixedClock(datetime.now(UTC))
    with in_process_broker({**env, "PROVIDERS_FILE": str(broken)}, monkeypatch, clock=clock) as app:
        outcomes = attempt_until_settled(app, clock, integration_id, 4)
        row = current(app, integration_id)
    assert outcomes == ["transient"] * 4
    assert (row.status.value, row.last_refresh_error) == ("active", "discovery_failed")


def test_retry_after_during_a_backoff_is_the_time_left(clocked, provider):
    app, clock = clocked
    integration_id = UUID(connect(app, provider))
    expire(app, integration_id)
    provider.fail_token("500", count=100)
    with pytest.raises(DependencyUnavailable):
        app.token_service.fetch(integration_id, "test")  # the first failure: a backoff of 15-30 s starts
    clock.advance(seconds=14)
    with pytest.raises(DependencyUnavailable) as cooling:
        app.token_service.fetch(integration_id, "test")
    left = (current(app, integration_id).next_attempt_after - clock.now()).total_seconds()
    assert 1 <= int(cooling.value.details["retry_after"]) <= max(1, int(left) + 1)
