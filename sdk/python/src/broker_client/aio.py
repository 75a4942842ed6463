"""AsyncBrokerClient: the same as BrokerClient for asyncio code, on httpx.AsyncClient."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from types import TracebackType
from typing import Any
from uuid import UUID

import httpx

from broker_client._cache import AsyncTokens, TokenCache
from broker_client._identity import CallerIdentity
from broker_client._policy import RetryPolicy, outcome, token_params, token_path, unreachable
from broker_client.auth import AsyncBrokerAuth
from broker_client.client import DEFAULT_MIN_TTL, answer_json
from broker_client.models import Credentials, Token, parse_credentials, parse_token


class AsyncBrokerClient:
    """One per process and event loop (it holds the token cache and a connection pool). The arguments are
    BrokerClient's; `http_client` is an httpx.AsyncClient. A Google ID token is fetched in a worker thread."""

    def __init__(
        self, base_url: str, *, api_key: str | None = None, id_token_audience: str | None = None,
        timeout: float = 10.0, retry: RetryPolicy | None = None, http_client: httpx.AsyncClient | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:  # fmt: skip
        self._identity = CallerIdentity(api_key, id_token_audience)
        self._base = httpx.URL(base_url.rstrip("/") + "/")
        self._http = http_client or httpx.AsyncClient(timeout=timeout)
        self._owns_http = http_client is None
        self._retry = retry or RetryPolicy()
        self._tokens = AsyncTokens(TokenCache(clock), self._fetch_token)

    async def token(
        self, integration_id: str | UUID, min_ttl: int = DEFAULT_MIN_TTL, *, force_refresh: bool = False
    ) -> Token:
        return await self._tokens.get(str(integration_id), min_ttl, force_refresh)

    async def credentials(self, integration_id: str | UUID) -> Credentials:
        return parse_credentials(str(integration_id), await self._get(str(integration_id), {}))

    def auth(self, integration_id: str | UUID, min_ttl: int = DEFAULT_MIN_TTL) -> AsyncBrokerAuth:
        return AsyncBrokerAuth(self._tokens, str(integration_id), min_ttl)

    async def _fetch_token(self, integration_id: str, min_ttl: int, force: bool) -> Token:
        return parse_token(integration_id, await self._get(integration_id, token_params(min_ttl, force)))

    async def _headers(self) -> dict[str, str]:
        if self._identity.stale:  # google-auth's fetch blocks: keep it off the event loop
            return await asyncio.to_thread(self._identity.headers)
        return self._identity.headers()

    async def _get(self, integration_id: str, params: dict[str, str]) -> Any:
        url, waited, attempt = self._base.join(token_path(integration_id)), 0.0, 0
        while True:
            attempt += 1
            try:
                response = await self._http.get(url, params=params, headers=await self._headers())
                error = outcome(response)
            except httpx.ConnectError as failed:  # nothing was sent: safe to try again
                error = unreachable(failed)
            except httpx.TransportError as failed:
                raise unreachable(failed) from failed
            if error is None:
                return answer_json(response)
            delay = self._retry.delay(attempt, error, waited)
            if delay is None:
                raise error
            await asyncio.sleep(delay)
            waited += delay

    async def aclose(self) -> None:
        if self._owns_http:
            await self._http.aclose()

    async def __aenter__(self) -> AsyncBrokerClient:
        return self

    async def __aexit__(self, *_: type[BaseException] | BaseException | TracebackType | None) -> None:
        await self.aclose()
