"""The refresh decision and backoff, as tables."""

from __future__ import annotations

import random
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from uuid import uuid4

import pytest

from shared.domain.models import CredentialType, Integration, Status
from shared.domain.refresh import backoff, should_refresh, token_usable
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
