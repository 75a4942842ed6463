"""The in-memory token cache and its single flight: concurrent callers for one integration share one request.

A cached token is served for `min_ttl` only while `expires_at - min_ttl` is still ahead (the broker's answer
decides, never a local lifetime guess). After the provider refused a token (401), callers that saw the same
refusal share one forced refresh, and a token already replaced by someone else is used as it is.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from typing import Any

from broker_client.models import Token

Key = tuple[str, int, bool]  # (integration id, min_ttl, force_refresh)


def _expiry(token: Token) -> float:
    return float("inf") if token.expires_at is None else token.expires_at.timestamp()


@dataclass
class TokenCache:
    clock: Callable[[], float]
    max_entries: int = 10_000  # a backend serving many integrations keeps memory bounded
    _tokens: dict[str, Token] = field(default_factory=dict)

    def fresh(self, integration_id: str, min_ttl: int) -> Token | None:
        token = self._tokens.get(integration_id)
        return token if token is not None and token.valid_for(min_ttl, self.clock()) else None

    def store(self, integration_id: str, token: Token) -> None:
        held = self._tokens.get(integration_id)
        if held is None or _expiry(token) >= _expiry(held):  # a slow answer never replaces a newer token
            self._tokens.pop(integration_id, None)  # re-inserted last: the dict's order is least recently stored
            self._tokens[integration_id] = token
            if len(self._tokens) > self.max_entries:
                self._evict()

    def _evict(self) -> None:
        """Expired tokens first; if that is not enough, the least recently stored ones, down to 90% of the bound."""
        now = self.clock()
        for integration_id in [i for i, token in self._tokens.items() if not token.valid_for(0, now)]:
            del self._tokens[integration_id]
        if len(self._tokens) > self.max_entries:
            for integration_id in list(self._tokens)[: len(self._tokens) - self.max_entries * 9 // 10]:
                del self._tokens[integration_id]

    def replacement(self, integration_id: str, rejected: Token) -> Token | None:
        """A still valid token other than `rejected` (someone refreshed already); else forget `rejected`."""
        held = self._tokens.get(integration_id)
        if held is not None and held.access_token != rejected.access_token:
            return held if held.valid_for(0, self.clock()) else None
        self.forget(integration_id, rejected)
        return None

    def forget(self, integration_id: str, token: Token) -> None:
        held = self._tokens.get(integration_id)
        if held is not None and held.access_token == token.access_token:
            del self._tokens[integration_id]


class _Flight:
    def __init__(self) -> None:
        self.done = threading.Event()
        self.token: Token | None = None
        self.error: BaseException | None = None


class SyncTokens:
    def __init__(self, cache: TokenCache, fetch: Callable[[str, int, bool], Token]) -> None:
        self._cache, self._fetch = cache, fetch
        self._lock = threading.Lock()
        self._flights: dict[Key, _Flight] = {}

    def get(self, integration_id: str, min_ttl: int, force: bool = False) -> Token:
        key = (integration_id, min_ttl, force)
        with self._lock:
            cached = None if force else self._cache.fresh(integration_id, min_ttl)
            if cached is not None:
                return cached
            flight = self._flights.get(key)
            leader = flight is None
            if flight is None:
                flight = self._flights[key] = _Flight()
        if not leader:
            flight.done.wait()
            if flight.error is not None:
                raise flight.error
            assert flight.token is not None
            return flight.token
        try:
            flight.token = self._fetch(integration_id, min_ttl, force)
            with self._lock:
                self._cache.store(integration_id, flight.token)
            return flight.token
        except BaseException as error:
            flight.error = error
            raise
        finally:
            with self._lock:
                del self._flights[key]
            flight.done.set()

    def after_rejection(self, integration_id: str, rejected: Token, min_ttl: int) -> Token:
        with self._lock:
            replaced = self._cache.replacement(integration_id, rejected)
        if replaced is not None:
            return replaced
        token = self.get(integration_id, min_ttl, force=True)
        if token.access_token == rejected.access_token:  # the broker refreshed moments ago: nothing newer exists
            with self._lock:
                self._cache.forget(integration_id, token)
        return token


class AsyncTokens:
    """The same within one event loop: no lock, since nothing awaits between looking and registering a flight."""

    def __init__(self, cache: TokenCache, fetch: Callable[[str, int, bool], Coroutine[Any, Any, Token]]) -> None:
        self._cache, self._fetch = cache, fetch
        self._flights: dict[Key, asyncio.Task[Token]] = {}

    async def get(self, integration_id: str, min_ttl: int, force: bool = False) -> Token:
        key = (integration_id, min_ttl, force)
        cached = None if force else self._cache.fresh(integration_id, min_ttl)
        if cached is not None:
            return cached
        flight = self._flights.get(key)
        if flight is None:
            # a task of its own: a cancelled caller (the first one included) does not cancel the others' request
            flight = self._flights[key] = asyncio.create_task(self._run(key))
            flight.add_done_callback(lambda done: self._landed(key, done))
        return await asyncio.shield(flight)

    async def _run(self, key: Key) -> Token:
        token = await self._fetch(*key)
        self._cache.store(key[0], token)
        return token

    def _landed(self, key: Key, flight: asyncio.Future[Token]) -> None:
        if self._flights.get(key) is flight:
            del self._flights[key]
        if not flight.cancelled():
            flight.exception()  # retrieved: no "never retrieved" warning when every waiter was cancelled

    async def after_rejection(self, integration_id: str, rejected: Token, min_ttl: int) -> Token:
        replaced = self._cache.replacement(integration_id, rejected)
        if replaced is not None:
            return replaced
        token = await self.get(integration_id, min_ttl, force=True)
        if token.access_token == rejected.access_token:
            self._cache.forget(integration_id, token)
        return token
