"""The client's own rules, with the broker played at the HTTP transport seam (httpx.MockTransport)."""

from __future__ import annotations

import email.utils
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from uuid import uuid4

import httpx
import pytest
from broker_client import (
    BrokerClient,
    BrokerError,
    IntegrationNotFound,
    ReauthRequired,
    RetryPolicy,
    TemporarilyUnavailable,
    Unauthorized,
)
from broker_client._cache import TokenCache
from broker_client.errors import error_for, retry_after
from broker_client.models import Token

TOKEN = {"integration_id": "i-1", "access_token": "at-1", "token_type": "Bearer", "scopes": ["a"]}
Handler = Callable[[httpx.Request], httpx.Response]


def broker(handler: Handler, seen: list[httpx.Request], **options: object) -> BrokerClient:
    def recording(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return handler(request)

    http = httpx.Client(transport=httpx.MockTransport(recording))
    return BrokerClient("http://broker.test/base/", api_key="k" * 32, http_client=http, **options)  # type: ignore[arg-type]


def error(status: int, code: str | None = None, **headers: str) -> httpx.Response:
    body = {"error": {"code": code, "message": "m"}} if code else None
    return httpx.Response(status, json=body, headers=headers) if body else httpx.Response(status, text="<html>")


@pytest.mark.parametrize(
    ("response", "kind", "code"),
    [
        (error(409, "reauth_required"), ReauthRequired, "reauth_required"),
        (error(409, "token_expired"), ReauthRequired, "token_expired"),
        (error(409, "integration_inactive"), ReauthRequired, "integration_inactive"),
        (error(409, "integration_revoked"), ReauthRequired, "integration_revoked"),
        (error(404, "integration_not_found"), IntegrationNotFound, "integration_not_found"),
        (error(404), BrokerError, "http_404"),  # a wrong base URL, not a missing integration
        (error(401, "unauthenticated"), Unauthorized, "unauthenticated"),
        (error(403), Unauthorized, "http_403"),  # Cloud Run's own refusal page
        (error(503, "refresh_unavailable", **{"Retry-After": "7"}), TemporarilyUnavailable, "refresh_unavailable"),
        (error(422, "validation_failed"), BrokerError, "validation_failed"),
        (error(500), BrokerError, "http_500"),
    ],
)
def test_answers_map_to_typed_errors(response: httpx.Response, kind: type[BrokerError], code: str) -> None:
    raised = error_for(response)
    assert type(raised) is kind
    assert (raised.code, raised.status) == (code, response.status_code)
    if isinstance(raised, TemporarilyUnavailable):
        assert raised.retry_after == 7


def test_retry_after_in_seconds_or_as_a_date() -> None:
    now = time.time()
    date = email.utils.formatdate(now + 30, usegmt=True)
    assert retry_after(httpx.Response(503, headers={"Retry-After": "12"})) == 12
    assert 28 <= (retry_after(httpx.Response(503, headers={"Retry-After": date}), now) or 0) <= 30
    assert retry_after(httpx.Response(503, headers={"Retry-After": "soon"})) is None
    assert retry_after(httpx.Response(503)) is None


def test_503_retries_are_bounded_by_attempts() -> None:
    seen: list[httpx.Request] = []
    with (
        broker(lambda _: error(503, "refresh_unavailable", **{"Retry-After": "0"}), seen) as client,
        pytest.raises(TemporarilyUnavailable) as raised,
    ):
        client.token("i-1")
    assert len(seen) == 3
    assert raised.value.retry_after == 0


def test_a_retry_after_beyond_the_wait_budget_surfaces_at_once() -> None:
    seen: list[httpx.Request] = []
    with (
        broker(lambda _: error(503, "refresh_unavailable", **{"Retry-After": "30"}), seen) as client,
        pytest.raises(TemporarilyUnavailable) as raised,
    ):
        client.token("i-1")
    assert len(seen) == 1
    assert raised.value.retry_after == 30


def test_a_503_without_retry_after_backs_off_within_the_budget() -> None:
    seen: list[httpx.Request] = []
    started = time.monotonic()
    with (
        broker(lambda _: error(503), seen, retry=RetryPolicy(attempts=4, max_wait=0.2, base=0.05)) as client,
        pytest.raises(TemporarilyUnavailable),
    ):
        client.token("i-1")
    assert 2 <= len(seen) <= 4
    assert time.monotonic() - started < 1


def test_an_unreachable_broker_is_retried_then_temporarily_unavailable() -> None:
    seen: list[httpx.Request] = []

    def refuse(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("connection refused", request=request)

    with (
        broker(refuse, seen, retry=RetryPolicy(attempts=2, base=0.01)) as client,
        pytest.raises(TemporarilyUnavailable) as raised,
    ):
        client.token("i-1")
    assert len(seen) == 2
    assert raised.value.code == "broker_unreachable"


def test_a_read_timeout_is_not_retried() -> None:
    seen: list[httpx.Request] = []

    def slow(request: httpx.Request) -> httpx.Response:
        raise httpx.ReadTimeout("timed out", request=request)

    with broker(slow, seen) as client, pytest.raises(TemporarilyUnavailable):
        client.token("i-1")
    assert len(seen) == 1


def test_the_request_is_the_token_endpoint_with_the_key_and_a_quoted_id() -> None:
    seen: list[httpx.Request] = []
    with broker(lambda _: httpx.Response(200, json=TOKEN), seen) as client:
        client.token("../admin?x", min_ttl=120, force_refresh=True)
        with pytest.raises(ValueError, match="min_ttl"):
            client.token("i-1", min_ttl=-1)
    request = seen[0]
    assert request.url.raw_path == b"/base/token/..%2Fadmin%3Fx?min_ttl=120&force_refresh=true"
    assert request.headers["Authorization"] == "Bearer " + "k" * 32


def test_a_token_without_expiry_stays_cached() -> None:
    seen: list[httpx.Request] = []
    with broker(lambda _: httpx.Response(200, json={**TOKEN, "expires_at": None}), seen) as client:
        assert client.token("i-1").expires_at is None
        client.token("i-1", min_ttl=3600)
    assert len(seen) == 1


def test_a_slower_answer_never_replaces_a_newer_token() -> None:
    cache = TokenCache(clock=time.time)
    soon = datetime.now(UTC) + timedelta(minutes=5)
    newer, older = Token("i-1", "b", "Bearer", soon + timedelta(hours=1), ()), Token("i-1", "a", "Bearer", soon, ())
    cache.store("i-1", newer)
    cache.store("i-1", older)
    assert cache.fresh("i-1", 0) is newer


def test_the_cache_stays_bounded_dropping_expired_then_least_recent_tokens() -> None:
    cache = TokenCache(clock=time.time, max_entries=10)
    later = datetime.now(UTC) + timedelta(hours=1)
    cache.store("expired", Token("expired", "x", "Bearer", datetime.now(UTC) - timedelta(seconds=1), ()))
    for n in range(10):
        cache.store(f"i-{n}", Token(f"i-{n}", f"t-{n}", "Bearer", later, ()))
    assert cache.fresh("i-0", 0) is not None, "the expired token went first"
    cache.store("i-10", Token("i-10", "t-10", "Bearer", later, ()))
    kept = [f"i-{n}" for n in range(11) if cache.fresh(f"i-{n}", 0) is not None]
    assert kept == [f"i-{n}" for n in range(2, 11)], "down to 90% of the bound, the least recently stored first"


def test_uuids_are_accepted_as_integration_ids() -> None:
    seen: list[httpx.Request] = []
    integration_id = uuid4()
    with broker(lambda _: httpx.Response(200, json=TOKEN), seen) as client:
        client.token(integration_id)
    assert seen[0].url.path == f"/base/token/{integration_id}"


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"integration_id": "i-1", "credential_type": "api_key", "credentials": {}}, "use credentials()"),
        ({**TOKEN, "expires_at": "tomorrow"}, "ISO 8601"),
        ({**TOKEN, "expires_at": "2030-01-01T00:00:00"}, "time zone"),
        ({"something": "else"}, "no access_token"),
    ],
)
def test_answers_that_are_not_a_token_are_clear_errors(body: object, message: str) -> None:
    with (
        broker(lambda _: httpx.Response(200, json=body), []) as client,
        pytest.raises(BrokerError, match=message) as raised,
    ):
        client.token("i-1")
    assert raised.value.code == "unexpected_answer"


def test_either_an_api_key_or_an_audience_is_needed() -> None:
    with pytest.raises(ValueError, match="api_key"):
        BrokerClient("http://broker.test")
