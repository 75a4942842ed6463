"""BrokerClient against the real token endpoint: the cache, its single flight, and the broker's errors."""

from __future__ import annotations

import itertools
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from uuid import UUID, uuid4

import pytest
from broker_client import (
    BrokerClient,
    IntegrationNotFound,
    ReauthRequired,
    RetryPolicy,
    TemporarilyUnavailable,
    Unauthorized,
)

from tests.sdk.conftest import Live
from tests.support.engine import expire, refresh_grants, set_row

OPENAI_KEY = "sk-test-0123456789abcdefghij"


def test_a_cached_token_makes_no_second_request(stack: Live) -> None:
    integration_id = stack.connect("cached")
    with stack.client() as broker:
        first = broker.token(integration_id, min_ttl=60)
        again = [broker.token(integration_id, min_ttl=60) for _ in range(5)]
    assert len(stack.sent) == 1
    assert stack.reads(integration_id) == 1
    assert {token.access_token for token in again} == {first.access_token}
    assert first.expires_at is not None
    assert first.expires_at > datetime.now(UTC) + timedelta(seconds=500)
    assert first.scopes
    assert first.token_type == "Bearer"
    assert stack.userinfo_status(first.access_token) == 200
    assert first.access_token not in repr(first)


def test_the_cache_is_never_used_past_expires_at_minus_min_ttl(stack: Live) -> None:
    integration_id = stack.connect("ttl")
    now = [time.time()]
    with stack.client(clock=lambda: now[0]) as broker:
        token = broker.token(integration_id, min_ttl=60)
        assert token.expires_at is not None
        now[0] = token.expires_at.timestamp() - 61
        broker.token(integration_id, min_ttl=60)
        assert len(stack.sent) == 1, "still 61 s left: from the cache"
        broker.token(integration_id, min_ttl=120)
        assert len(stack.sent) == 2, "a larger min_ttl than the cached token has left: asked again"
        now[0] = token.expires_at.timestamp() - 59
        broker.token(integration_id, min_ttl=60)
        assert len(stack.sent) == 3, "59 s left for min_ttl=60: asked again"


def test_fifty_concurrent_callers_make_one_request(stack: Live) -> None:
    integration_id = stack.connect("crowd")
    start = threading.Barrier(50)

    def call(broker: BrokerClient) -> str:
        start.wait()
        return broker.token(integration_id).access_token

    with stack.client() as broker, ThreadPoolExecutor(max_workers=50) as pool:
        tokens = set(pool.map(call, [broker] * 50))
    assert len(tokens) == 1
    assert len(stack.sent) == 1
    assert stack.reads(integration_id) == 1, "the broker handed out one token"


def test_reauth_required_raises_reauth_required(stack: Live) -> None:
    integration_id = stack.connect("gone")
    stack.provider.fail_token("invalid_grant")
    expire(stack.app, integration_id)
    with stack.client() as broker, pytest.raises(ReauthRequired) as raised:
        broker.token(integration_id)
    assert (raised.value.code, raised.value.status) == ("reauth_required", 409)
    assert len(stack.sent) == 1, "not retried"


def test_unknown_integrations_and_bad_keys_have_their_own_errors(stack: Live) -> None:
    with stack.client() as broker, pytest.raises(IntegrationNotFound):
        broker.token(str(uuid4()))
    with (
        BrokerClient(stack.url, api_key="not-a-key-of-this-broker-000000") as stranger,
        pytest.raises(Unauthorized) as refused,
    ):
        stranger.token(str(uuid4()))
    assert (refused.value.code, refused.value.status) == ("unauthenticated", 401)
    assert "not-a-key" not in str(refused.value)


def test_a_503_with_retry_after_is_retried_then_surfaces(stack: Live) -> None:
    integration_id = stack.connect("backoff")
    # the broker is backing off for about a second; the refresh after it fails (Retry-After 15-30 s)
    set_row(stack.app, integration_id, next_attempt_after=datetime.now(UTC) + timedelta(seconds=0.8))
    stack.provider.fail_token("500", count=5)
    stack.provider.reset_stats()
    sent_at: list[float] = []
    with stack.client(retry=RetryPolicy(attempts=5, max_wait=10)) as broker:
        broker._http.event_hooks["request"].append(lambda _: sent_at.append(time.monotonic()))
        with pytest.raises(TemporarilyUnavailable) as unavailable:
            broker.token(integration_id, force_refresh=True)
    assert unavailable.value.code == "refresh_unavailable"
    assert unavailable.value.retry_after is not None
    assert unavailable.value.retry_after >= 15
    assert 2 <= len(sent_at) <= 3, "retried after Retry-After, and surfaced when it asked for more than the budget"
    gaps = [later - earlier for earlier, later in itertools.pairwise(sent_at)]
    assert all(gap >= 0.95 for gap in gaps), f"Retry-After: 1 honoured: {gaps}"
    assert refresh_grants(stack.provider)["errors"] == {"server_error": 1}, "one refresh, once the backoff ended"


def test_static_credentials(stack: Live) -> None:
    from shared.services.integrations import NewStaticIntegration

    created = stack.app.integration_service.create("static", NewStaticIntegration("openai", {"api_key": OPENAI_KEY}))
    with stack.client() as broker:
        credentials = broker.credentials(str(created.id))
        with pytest.raises(Exception, match="static credentials"):
            broker.token(str(created.id))
    assert (credentials.credential_type, dict(credentials.credentials)) == ("api_key", {"api_key": OPENAI_KEY})
    assert OPENAI_KEY not in repr(credentials)
    assert UUID(credentials.integration_id) == created.id
