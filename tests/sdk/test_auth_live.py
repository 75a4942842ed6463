"""broker.auth(): the token on requests to the provider, and on a 401 exactly one forced refresh and one retry."""

from __future__ import annotations

import httpx
import pytest
import requests
from broker_client import ReauthRequired

from tests.sdk.conftest import Live
from tests.support.engine import refresh_grants

REFUSED = "an-access-token-the-provider-no-longer-accepts"


def userinfo(stack: Live) -> dict[str, object]:
    return dict(stack.provider.stats()["userinfo"])


@pytest.fixture
def refused(stack: Live) -> str:
    """An integration whose stored access token the provider refuses (its refresh token still works)."""
    integration_id = stack.connect("refused")
    stack.plant(integration_id, REFUSED)
    stack.provider.reset_stats()
    return integration_id


def test_a_401_triggers_one_forced_refresh_and_one_retry(stack: Live, refused: str) -> None:
    with stack.client() as broker:
        answer = httpx.get(stack.provider.userinfo_endpoint, auth=broker.auth(refused), timeout=10)
        assert answer.status_code == 200, answer.text
        assert [r.status_code for r in answer.history] == [401]
        assert len(stack.sent) == 2, "the token, then one forced fetch"
        assert len(stack.forced()) == 1
        assert refresh_grants(stack.provider) == {"success": 1, "errors": {}}
        assert userinfo(stack) == {"success": 1, "errors": {"invalid_token": 1}}
        fresh = broker.token(refused)
    assert fresh.access_token != REFUSED
    assert len(stack.sent) == 2, "the refreshed token is cached"


def test_requests_gets_the_same_retry(stack: Live, refused: str) -> None:
    with stack.client() as broker:
        answer = requests.get(stack.provider.userinfo_endpoint, auth=broker.auth(refused), timeout=10)
    assert answer.status_code == 200, answer.text
    assert [r.status_code for r in answer.history] == [401]
    assert len(stack.forced()) == 1
    assert userinfo(stack) == {"success": 1, "errors": {"invalid_token": 1}}


@pytest.mark.parametrize("library", ["httpx", "requests"])
def test_a_resource_that_keeps_refusing_gets_one_retry_only(stack: Live, refused: str, library: str) -> None:
    seen: list[str] = []

    def always_401(request: httpx.Request) -> httpx.Response:
        seen.append(request.headers["Authorization"])
        return httpx.Response(401, json={"error": "invalid_token"})

    with stack.client() as broker:
        if library == "httpx":
            with httpx.Client(transport=httpx.MockTransport(always_401), auth=broker.auth(refused)) as resource:
                status = resource.post("https://resource.test/api", json={"a": 1}).status_code
        else:
            status = _requests_through(always_401, broker.auth(refused))
    assert status == 401
    assert len(seen) == 2, "one retry"
    assert seen[0] == f"Bearer {REFUSED}"
    assert seen[1] != seen[0], "with the new token"
    assert len(stack.forced()) == 1


def test_no_retry_when_the_broker_refreshed_moments_ago(stack: Live) -> None:
    integration_id = stack.connect("just-connected", settled=False)  # inside the broker's 5 s quiet period
    stack.plant(integration_id, REFUSED)
    stack.provider.reset_stats()
    with stack.client() as broker:
        answer = httpx.get(stack.provider.userinfo_endpoint, auth=broker.auth(integration_id), timeout=10)
    assert answer.status_code == 401, "the broker had nothing newer: the same token is not sent twice"
    assert answer.history == []
    assert len(stack.forced()) == 1
    assert refresh_grants(stack.provider)["success"] == 0
    assert userinfo(stack)["errors"] == {"invalid_token": 1}


def test_a_401_after_the_grant_ended_raises_reauth_required(stack: Live) -> None:
    integration_id = stack.connect("revoked")
    with stack.client() as broker:
        stack.revoke(broker.token(integration_id).access_token)  # the grant ends: refresh tokens too
        with pytest.raises(ReauthRequired):
            httpx.get(stack.provider.userinfo_endpoint, auth=broker.auth(integration_id), timeout=10)
    assert len(stack.forced()) == 1


def _requests_through(handler, auth) -> int:
    """A requests call whose transport adapter answers with `handler` (the HTTP transport seam)."""

    class Adapter(requests.adapters.HTTPAdapter):
        def send(self, request, *args, **kwargs):
            answer = handler(httpx.Request(request.method, request.url, headers=dict(request.headers)))
            response = requests.Response()
            response.status_code, response.request, response.connection = answer.status_code, request, self
            response._content = answer.content
            return response

    with requests.Session() as session:
        session.mount("https://", Adapter())
        return session.post("https://resource.test/api", json={"a": 1}, auth=auth).status_code
