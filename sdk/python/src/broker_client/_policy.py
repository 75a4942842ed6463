"""Sans-I/O parts shared by the sync and async clients: the request for a token, and the bounded retry policy."""

from __future__ import annotations

import random
from dataclasses import dataclass
from urllib.parse import quote

import httpx

from broker_client.errors import BrokerError, TemporarilyUnavailable, error_for

MAX_MIN_TTL = 86400  # the broker's own bound


def token_path(integration_id: str) -> str:
    if not integration_id:
        raise ValueError("integration_id must not be empty")
    return f"token/{quote(integration_id, safe='')}"  # relative: joined to the base URL's path


def token_params(min_ttl: int, force_refresh: bool) -> dict[str, str]:
    if not 0 <= min_ttl <= MAX_MIN_TTL:
        raise ValueError(f"min_ttl must be from 0 to {MAX_MIN_TTL} seconds, got {min_ttl}")
    params = {"min_ttl": str(min_ttl)} if min_ttl else {}
    if force_refresh:
        params["force_refresh"] = "true"
    return params


def unreachable(error: httpx.TransportError) -> TemporarilyUnavailable:
    # the exception's text may carry the URL, never a credential; the class name says enough
    return TemporarilyUnavailable(
        f"the broker could not be reached ({type(error).__name__})", code="broker_unreachable"
    )


def outcome(response: httpx.Response) -> BrokerError | None:
    return None if response.is_success else error_for(response)


@dataclass(frozen=True)
class RetryPolicy:
    """Retry a 503 (honouring `Retry-After`) or a connection that could not be made, at most `attempts` tries in all
    and `max_wait` seconds of waiting in all; a `Retry-After` beyond what is left surfaces at once."""

    attempts: int = 3
    max_wait: float = 10.0
    base: float = 0.5  # backoff without Retry-After: full jitter up to base · 2^(n-1), capped
    cap: float = 4.0

    def delay(self, attempt: int, error: BrokerError, waited: float, rng: random.Random | None = None) -> float | None:
        """Seconds to wait before try `attempt + 1`, or None to give up and raise `error`."""
        if not isinstance(error, TemporarilyUnavailable) or attempt >= self.attempts:
            return None
        if error.retry_after is not None:
            wait = error.retry_after
        else:
            wait = (rng or random).uniform(0, min(self.cap, self.base * 2 ** (attempt - 1)))
        return wait if waited + wait <= self.max_wait else None
