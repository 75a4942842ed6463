"""The events core, pure: transitions, bodies, signatures (checked by the `standardwebhooks` package), the
retry schedule and the circuit breaker."""

from __future__ import annotations

import base64
import dataclasses
import json
import random
import uuid
from datetime import UTC, datetime, timedelta

import pytest
from standardwebhooks.webhooks import Webhook, WebhookVerificationError

from shared.domain import webhooks
from shared.domain.delivery import breaker_open_until, next_attempt, retry_after_seconds, verdict
from shared.domain.events import EventSpec, body, materialise, refresh_transitions
from shared.domain.models import CredentialType, Integration, Status

NOW = datetime(2026, 6, 1, 12, tzinfo=UTC)
SECRET = "whsec_" + base64.b64encode(b"s" * 32).decode()
ROTATED = "whsec_" + base64.b64encode(b"r" * 32).decode()


def integration(**fields) -> Integration:
    base = Integration(uuid.uuid4(), "entity-1", "google", CredentialType.OAUTH2, Status.ACTIVE, NOW, NOW)
    return dataclasses.replace(base, **fields)


@pytest.mark.parametrize(
    ("before", "after", "expected"),
    [
        ({}, {"consecutive_failures": 1, "last_refresh_error": "http_503"}, ["integration.refresh_failed"]),
        ({"consecutive_failures": 1}, {"consecutive_failures": 2}, []),  # one event per transition
        ({"consecutive_failures": 19}, {"consecutive_failures": 20}, []),
        ({"consecutive_failures": 20}, {"consecutive_failures": 0}, ["integration.recovered"]),
        ({}, {}, []),  # a success after a success
        ({}, {"status": Status.REAUTH_REQUIRED}, ["integration.reauth_required"]),
        (
            {"consecutive_failures": 2},
            {"status": Status.REAUTH_REQUIRED, "consecutive_failures": 2},
            ["integration.reauth_required"],
        ),
        ({}, {"status": Status.INACTIVE, "consecutive_failures": 0}, []),  # a user's inactive: not the engine's
    ],
)
def test_refresh_transitions(before, after, expected):
    claimed = integration(**before)
    written = dataclasses.replace(claimed, **after)
    assert [spec.type for spec in refresh_transitions(claimed, written)] == expected


def test_the_body_has_the_standard_webhooks_shape_and_no_secret():
    row = integration(account_email="a@example.test", label="Work", secret_ref="broker-int-x")
    event = materialise(EventSpec("integration.reauth_required", "invalid_grant"), row, NOW)
    document = json.loads(body(event))
    assert document == {
        "type": "integration.reauth_required",
        "timestamp": "2026-06-01T12:00:00.000Z",
        "data": {
            "event_id": str(event.id), "integration_id": str(row.id), "entity_id": "entity-1", "provider": "google",
            "status": "active", "credential_type": "oauth2", "reason": "invalid_grant",
        },
    }  # fmt: skip


def test_facts_never_override_the_row():
    event = materialise(
        EventSpec("integration.updated", None, {"status": "forged", "fields": ["label"]}), integration(), NOW
    )
    assert (event.data["status"], event.data["fields"]) == ("active", ["label"])


def test_signatures_verify_with_the_standardwebhooks_package_for_every_secret():
    keys = [webhooks.parse_secret(SECRET), webhooks.parse_secret(ROTATED)]
    payload = body(materialise(EventSpec("integration.connected"), integration(), NOW))
    sent = int(datetime.now(UTC).timestamp())
    headers = webhooks.headers(keys, "01890a5d-ac96-774b-bcce-b302099a8057", sent, payload)
    for secret in (SECRET, ROTATED):
        assert Webhook(secret).verify(payload, headers)["type"] == "integration.connected"
    with pytest.raises(WebhookVerificationError):
        Webhook("whsec_" + base64.b64encode(b"x" * 32).decode()).verify(payload, headers)
    with pytest.raises(WebhookVerificationError):
        Webhook(SECRET).verify(payload + b" ", headers)  # the body is what was signed
    stale = webhooks.headers(keys, "id-1", sent - 600, payload)
    with pytest.raises(WebhookVerificationError, match="too old"):
        Webhook(SECRET).verify(payload, stale)


@pytest.mark.parametrize(
    ("value", "problem"),
    [
        ("sk_live_abc", "must start with 'whsec_'"),
        ("whsec_not base64!", "base64"),
        ("whsec_" + base64.b64encode(b"short").decode(), "24-64 bytes"),
    ],
)
def test_bad_secrets_are_refused_without_quoting_them(value, problem):
    with pytest.raises(ValueError, match=problem) as caught:
        webhooks.parse_secret(value)
    assert value not in str(caught.value)


def test_a_webhook_destination_is_keyed_by_the_whole_url_and_shown_without_query_or_credentials():
    one = webhooks.destination("https://hooks.example.com/in?token=t0ps3cret")
    two = webhooks.destination("https://hooks.example.com/in?token=other")
    assert one.key != two.key
    assert one.target == "https://hooks.example.com/in"


@pytest.mark.parametrize(
    ("status", "expected"),
    [(None, "retry"), (200, "delivered"), (204, "delivered"), (301, "refused"), (400, "refused"), (401, "refused"),
     (404, "refused"), (408, "retry"), (410, "refused"), (429, "retry"), (500, "retry"), (503, "retry")],
)  # fmt: skip
def test_what_an_answer_means(status, expected):
    assert verdict(status) == expected


def test_retries_back_off_honour_retry_after_and_end_exactly_at_the_window():
    give_up = NOW + timedelta(hours=24)
    rng = random.Random(7)
    first = next_attempt(1, NOW, give_up, rng=rng).at
    assert first is not None
    assert timedelta(seconds=15) <= first - NOW <= timedelta(seconds=30)
    later = next_attempt(12, NOW, give_up, rng=rng).at
    assert later is not None
    assert timedelta(minutes=30) <= later - NOW <= timedelta(hours=1)
    waited = next_attempt(1, NOW, give_up, retry_after=7200, rng=rng).at
    assert waited == NOW + timedelta(hours=2), "Retry-After beyond the backoff's cap is honoured"
    near_end = give_up - timedelta(seconds=5)
    assert next_attempt(30, near_end, give_up, rng=rng).at == give_up, "the last attempt is at the window's end"
    assert next_attempt(31, give_up, give_up, rng=rng).at is None, "a failure at the end is the last"


def test_retry_after_as_seconds_or_an_http_date():
    assert retry_after_seconds("120", NOW) == 120
    assert retry_after_seconds("Mon, 01 Jun 2026 12:05:00 GMT", NOW) == 300
    assert retry_after_seconds("soon", NOW) is None
    assert retry_after_seconds(None, NOW) is None
    assert retry_after_seconds("99999999", NOW) == 86400


def test_the_breaker_opens_after_five_failures_in_a_row_and_backs_off_to_ten_minutes():
    assert breaker_open_until(4, NOW) is None
    assert breaker_open_until(5, NOW) == NOW + timedelta(seconds=30)
    assert breaker_open_until(6, NOW) == NOW + timedelta(seconds=60)
    assert breaker_open_until(40, NOW) == NOW + timedelta(minutes=10)
