"""BrokerClient: tokens and static credentials from the broker's `GET /token/{integration_id}`, for sync code."""

from __future__ import annotations

import time
from collections.abc import Callable
from types import TracebackType
from typing import Any
from uuid import UUID

import httpx

from broker_client._cache import SyncTokens, TokenCache
from broker_client._identity import CallerIdentity
from broker_client._policy import RetryPolicy, outcome, token_params, token_path, unreachable
from broker_client.auth import BrokerAuth
from broker_client.errors import BrokerError
from broker_client.models import Credentials, Token, parse_credentials, parse_token

DEFAULT_MIN_TTL = 60


class BrokerClient:
    """One per process (it holds the token cache and a connection pool); safe to share between threads.

    `api_key`: a key from the broker's INTERNAL_API_KEYS. `id_token_audience`: the token function's URL, for a
    Google-signed ID token of this runtime's service account (needs the `google` extra); with both, the ID token
    passes Cloud Run's invoker check and the key the broker's. `http_client`: your own httpx.Client (not closed
    here); `clock`: seconds since the epoch, for the cache."""

    def __init__(
        self, base_url: str, *, api_key: str | None = None, id_token_audience: str | None = None,
        timeout: float = 10.0, retry: RetryPolicy | None = None, http_client: httpx.Client | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:  # fmt: skip
        self._identity = CallerIdentity(api_key, id_token_audience)
        self._base = httpx.URL(base_url.rstrip("/") + "/")
        self._http = http_client or httpx.Client(timeout=timeout)
        self._owns_http = http_client is None
        self._retry = retry or RetryPolicy()
        self._tokens = SyncTokens(TokenCache(clock), self._fetch_token)

    def token(
        self, integration_id: str | UUID, min_ttl: int = DEFAULT_MIN_TTL, *, force_refresh: bool = False
    ) -> Token:
        """A token valid at least `min_ttl` more seconds as far as the broker can give one (it caps a `min_ttl`
        no fresh token could meet; check `expires_at`), from the cache when it has one."""
        return self._tokens.get(str(integration_id), min_ttl, force_refresh)

    def credentials(self, integration_id: str | UUID) -> Credentials:
        """The static credentials of an API-key or basic-auth integration (never cached here)."""
        return parse_credentials(str(integration_id), self._get(str(integration_id), {}))

    def auth(self, integration_id: str | UUID, min_ttl: int = DEFAULT_MIN_TTL) -> BrokerAuth:
        """An auth for httpx.Client and requests: `Authorization: Bearer <token>`, and on a 401 one forced refresh
        and one retry of the request."""
        return BrokerAuth(self._tokens, str(integration_id), min_ttl)

    def _fetch_token(self, integration_id: str, min_ttl: int, force: bool) -> Token:
        return parse_token(integration_id, self._get(integration_id, token_params(min_ttl, force)))

    def _get(self, integration_id: str, params: dict[str, str]) -> Any:
        url, waited, attempt = self._base.join(token_path(integration_id)), 0.0, 0
        while True:
            attempt += 1
            try:
                response = self._http.get(url, params=params, headers=self._identity.headers())
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
            time.sleep(delay)
            waited += delay

    def close(self) -> None:
        if self._owns_http:
            self._http.close()

    def __enter__(self) -> BrokerClient:
        return self

    def __exit__(self, *_: type[BaseException] | BaseException | TracebackType | None) -> None:
        self.close()


def answer_json(response: httpx.Response) -> Any:
    try:
        return response.json()
    except ValueError:
        raise BrokerError("the broker's answer is not JSON", code="unexpected_answer", status=200) from None
