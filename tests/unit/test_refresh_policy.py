"""The refresh decision and backoff, as tables."""

from __future__ import annotations

import random
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from uuid import uuid4

import pytest

from shared.domain.models import CredentialType, Integration, Status
from shared.domain.refresh import (
    FORCE_REFRESH_QUIET,
    backoff,
    classify_failure,
    effective_min_ttl,
    should_refresh,
    token_usable,
)
from shared.providers.catalog import load_catalog

NOW = datetime(2026, 1, 1, 12, tzinfo=UTC)
PROVIDER = replace(load_catalog().get("google"), refresh_margin=300)


def integration(**changes: object) -> Integration:
    base = Integration(
        id=uuid4(), entity_id="e", provider="google", credential_type=CredentialType.OAUTH2, status=Status.ACTIVE,
        created_at=NOW, updated_at=NOW, secret_ref="s", secret_version=1, token_expires_at=NOW + timedelta(hours=1),
        access_token_ciphertext=b"x", access_token_key_version=1,
    )  # fmt: skip
    return replace(base, **changes)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("changes", "kwargs", "expected"),
    [
        ({}, {}, (False, "fresh")),
        ({"token_expires_at": NOW + timedelta(seconds=299)}, {}, (True, "expires_soon")),
        ({"token_expires_at": NOW + timedelta(seconds=301)}, {}, (False, "fresh")),
        ({"token_expires_at": NOW + timedelta(seconds=600)}, {"min_ttl": 900}, (True, "expires_soon")),
        ({"token_expires_at": NOW - timedelta(seconds=1)}, {}, (True, "expired")),
        ({}, {"force": True}, (True, "forced")),
        ({"token_expires_at": None}, {}, (False, "does_not_expire")),
        ({"status": Status.REAUTH_REQUIRED}, {"force": True}, (False, "status_reauth_required")),
        ({"secret_ref": None, "secret_version": None}, {"force": True}, (False, "no_refresh_token")),
        ({"next_attempt_after": NOW + timedelta(seconds=1), "token_expires_at": NOW}, {}, (False, "cooling_down")),
        ({"next_attempt_after": NOW, "token_expires_at": NOW}, {}, (True, "expired")),
        ({"credential_type": CredentialType.API_KEY}, {"force": True}, (False, "static_credentials")),
    ],
)
def test_should_refresh(changes, kwargs, expected):
    assert should_refresh(integration(**changes), PROVIDER, NOW, **kwargs) == expected


def test_token_usable_respects_min_ttl_and_no_expiry():
    assert token_usable(integration(), NOW)
    assert not token_usable(integration(token_expires_at=NOW + timedelta(seconds=30)), NOW, min_ttl=60)
    assert not token_usable(integration(token_expires_at=NOW), NOW)
    assert token_usable(integration(token_expires_at=None), NOW)
    assert not token_usable(integration(access_token_ciphertext=None), NOW)


def test_backoff_grows_with_jitter_caps_at_an_hour_and_honours_retry_after():
    rng = random.Random(7)
    delays = [backoff(n, rng=rng).total_seconds() for n in range(1, 12)]
    assert 15 <= delays[0] <= 30
    assert 30 <= delays[1] <= 60
    assert all(d <= 3600 for d in delays)
    assert delays[-1] >= 1800
    assert backoff(1, retry_after=600, rng=rng) >= timedelta(seconds=600)


@pytest.mark.parametrize(
    ("error", "transient", "listed", "before", "expected"),
    [
        ("invalid_grant", False, (), 0, ("permanent", 0)),
        ("secret_not_found", False, (), 0, ("permanent", 0)),
        ("bad_refresh_token", False, ("bad_refresh_token",), 0, ("permanent", 0)),
        ("bad_refresh_token", False, (), 0, ("refused", 1)),
        ("invalid_request", False, (), 1, ("refused", 2)),
        ("http_400", False, (), 2, ("permanent", 3)),
        ("http_503", True, (), 2, ("transient", 0)),  # a transient failure breaks the run of refusals
        ("temporarily_unavailable", True, (), 0, ("transient", 0)),
    ],
)
def test_classify_failure(error, transient, listed, before, expected):
    assert classify_failure(error, transient, listed, before) == expected


@pytest.mark.parametrize(
    ("lifetime", "min_ttl", "expected"),
    [
        (3599, 3600, 1799),  # no fresh token can meet it: half the lifetime
        (3599, 3599, 1799),
        (3600, 900, 900),  # meetable: as asked
        (None, 3600, 3600),  # lifetime unknown: as asked
        (600, 0, 0),
    ],
)
def test_effective_min_ttl_is_capped_when_no_fresh_token_could_meet_it(lifetime, min_ttl, expected):
    changes = {"last_refreshed_at": None} if lifetime is None else {
        "last_refreshed_at": NOW, "token_expires_at": NOW + timedelta(seconds=lifetime)
    }  # fmt: skip
    assert effective_min_ttl(integration(**changes), min_ttl) == expected


def test_a_forced_refresh_inside_the_quiet_period_is_not_made():
    just = integration(last_refreshed_at=NOW - timedelta(seconds=2))
    assert should_refresh(just, PROVIDER, NOW, force=True, quiet=FORCE_REFRESH_QUIET) == (False, "just_refreshed")
    assert should_refresh(just, PROVIDER, NOW, force=True) == (True, "forced")
    old = integration(last_refreshed_at=NOW - FORCE_REFRESH_QUIET)
    assert should_refresh(old, PROVIDER, NOW, force=True, quiet=FORCE_REFRESH_QUIET) == (True, "forced")
