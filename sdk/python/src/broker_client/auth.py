"""Auths that put an integration's access token on requests to its provider, and retry once on a 401.

On a 401 from the provider: one forced refresh at the broker (shared by every caller that saw the same token
refused), then the request once more with the new token, and the answer to that is final (no loop). When the
broker has no newer token (it refreshed less than 5 s ago, so the provider refused a token fresh from its own
token endpoint), the 401 is returned as it is: sending the same token again could not help. A forced refresh
the broker cannot make now (its backoff after a provider failure) raises TemporarilyUnavailable.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator, Generator
from functools import partial
from typing import Any

import httpx

from broker_client._cache import AsyncTokens, SyncTokens
from broker_client.models import Token

try:
    from requests.auth import AuthBase as _RequestsAuth
except ImportError:  # requests is optional (the `requests` extra): httpx use needs nothing more

    class _RequestsAuth:  # type: ignore[no-redef]
        pass


def _bearer(token: Token) -> str:
    return f"Bearer {token.access_token}"


class BrokerAuth(httpx.Auth, _RequestsAuth):
    """For httpx.Client (`auth=`) and requests (`auth=`); from `BrokerClient.auth(integration_id)`."""

    def __init__(self, tokens: SyncTokens, integration_id: str, min_ttl: int) -> None:
        self._tokens, self.integration_id, self.min_ttl = tokens, integration_id, min_ttl

    def sync_auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        request.read()  # the whole body first, so the retry can send it again
        token = self._tokens.get(self.integration_id, self.min_ttl)
        request.headers["Authorization"] = _bearer(token)
        response = yield request
        if response.status_code != 401:
            return
        fresh = self._tokens.after_rejection(self.integration_id, token, self.min_ttl)
        if fresh.access_token != token.access_token:
            request.headers["Authorization"] = _bearer(fresh)
            yield request

    async def async_auth_flow(self, request: httpx.Request) -> AsyncGenerator[httpx.Request, httpx.Response]:
        raise TypeError("BrokerClient.auth() is for sync clients: use AsyncBrokerClient.auth() with httpx.AsyncClient")
        yield request  # pragma: no cover - makes this an async generator

    # requests: the token now, and a response hook that handles a 401 as above
    def __call__(self, request: Any) -> Any:
        token = self._tokens.get(self.integration_id, self.min_ttl)
        request.headers["Authorization"] = _bearer(token)
        position = request.body.tell() if hasattr(request.body, "tell") else None
        request.register_hook("response", partial(self._requests_401, token, position))
        return request

    def _requests_401(self, token: Token, position: int | None, response: Any, **send: Any) -> Any:
        if response.status_code != 401:
            return response
        body = response.request.body
        if body is not None and not isinstance(body, str | bytes) and position is None:
            return response  # a stream that cannot be sent again
        fresh = self._tokens.after_rejection(self.integration_id, token, self.min_ttl)
        if fresh.access_token == token.access_token:
            return response
        if position is not None:
            body.seek(position)
        from requests.cookies import extract_cookies_to_jar

        response.content  # noqa: B018 - read and release the refused answer's connection
        response.close()
        retry = response.request.copy()
        extract_cookies_to_jar(retry._cookies, response.request, response.raw)  # type: ignore[no-untyped-call]
        retry.prepare_cookies(retry._cookies)
        retry.headers["Authorization"] = _bearer(fresh)
        answer = response.connection.send(retry, **send)  # the adapter: no hooks, so no second retry
        answer.history.append(response)
        answer.request = retry
        return answer


class AsyncBrokerAuth(httpx.Auth):
    """For httpx.AsyncClient (`auth=`); from `AsyncBrokerClient.auth(integration_id)`."""

    def __init__(self, tokens: AsyncTokens, integration_id: str, min_ttl: int) -> None:
        self._tokens, self.integration_id, self.min_ttl = tokens, integration_id, min_ttl

    def sync_auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        raise TypeError("AsyncBrokerClient.auth() is for httpx.AsyncClient: use BrokerClient.auth() with sync code")
        yield request  # pragma: no cover - makes this a generator

    async def async_auth_flow(self, request: httpx.Request) -> AsyncGenerator[httpx.Request, httpx.Response]:
        await request.aread()
        token = await self._tokens.get(self.integration_id, self.min_ttl)
        request.headers["Authorization"] = _bearer(token)
        response = yield request
        if response.status_code != 401:
            return
        fresh = await self._tokens.after_rejection(self.integration_id, token, self.min_ttl)
        if fresh.access_token != token.access_token:
            request.headers["Authorization"] = _bearer(fresh)
            yield request
