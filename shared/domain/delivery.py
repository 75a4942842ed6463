"""Delivery policy, pure: what an answer means, when to try again, when to give up, when to stop calling.

- 2xx: delivered. Network errors (timeouts, refused connections, egress refusals), 408, 429 and 5xx: try again
  with the refresh engine's backoff (30 s doubling to 1 h, jittered), never sooner than `Retry-After`, until
  the delivery's `give_up_at` (the event's time plus EVENTS_RETRY_HOURS); the last attempt is made at that time,
  and when it fails too the delivery is dead. Any other answer (3xx: redirects are not followed; 4xx) is a
  refusal by the receiver: dead at once.
- A destination that failed BREAKER_THRESHOLD times in a row is skipped (its breaker is open) for 30 s doubling
  to 10 min; then one delivery probes it. A success closes it. Deliveries whose retry window has run out are
  still tried once, whatever the breaker says, so none dies without a last attempt.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import datetime, timedelta
from email.utils import parsedate_to_datetime
from typing import Literal

from shared.domain.events import OutboxEvent
from shared.domain.refresh import backoff

Verdict = Literal["delivered", "retry", "refused"]
BREAKER_THRESHOLD = 5
BREAKER_BASE = timedelta(seconds=30)
BREAKER_CAP = timedelta(minutes=10)
RETRYABLE_STATUSES = frozenset({408, 429})


def verdict(status: int | None) -> Verdict:
    """What an HTTP answer (None: no answer at all) means for the delivery."""
    if status is None or status >= 500 or status in RETRYABLE_STATUSES:
        return "retry"
    if 200 <= status < 300:
        return "delivered"
    return "refused"


@dataclass(frozen=True)
class Retry:
    at: datetime | None  # None: give up (dead)


def next_attempt(
    attempts: int, now: datetime, give_up_at: datetime, retry_after: float | None = None,
    rng: random.Random | None = None,
) -> Retry:  # fmt: skip
    """After the `attempts`-th failed attempt at `now`: when to try again, or give up (the window has passed)."""
    if now >= give_up_at:
        return Retry(None)
    delay = backoff(attempts, None, rng)
    if retry_after is not None:  # honoured up to the end of the window (the refresh backoff caps it at 1 h)
        delay = max(delay, timedelta(seconds=retry_after))
    return Retry(min(now + delay, give_up_at))


def breaker_open_until(consecutive_failures: int, now: datetime) -> datetime | None:
    """Until when a destination is skipped after this many failures in a row (None: the breaker is closed)."""
    if consecutive_failures < BREAKER_THRESHOLD:
        return None
    doublings = min(consecutive_failures - BREAKER_THRESHOLD, 10)
    return now + min(BREAKER_CAP, BREAKER_BASE * (1 << doublings))


def retry_after_seconds(value: str | None, now: datetime) -> float | None:
    """A `Retry-After` header (delay-seconds or an HTTP date) as seconds from `now`; None when absent or bad."""
    if not value:
        return None
    value = value.strip()
    if value.isascii() and value.isdigit():
        return float(min(int(value), 86400))
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        return None
    return max(0.0, min((when - now).total_seconds(), 86400.0))


@dataclass(frozen=True)
class Destination:
    """Where events go: `key` names it in the database (`webhook:<digest of the URL>`, `pubsub`), `target` is
    what an operator sees (an endpoint without its query, or the topic)."""

    key: str
    kind: Literal["webhook", "pubsub"]
    target: str


@dataclass(frozen=True)
class SendResult:
    """One attempt: the HTTP status when there was an answer, an error code when there was none."""

    verdict: Verdict
    http_status: int | None = None
    error: str | None = None
    retry_after: float | None = None
    duration_ms: int = 0


@dataclass(frozen=True)
class Delivery:
    """A claimed delivery of one event to one destination."""

    event: OutboxEvent
    destination: str
    attempts: int  # before this one
    give_up_at: datetime


# What the operator API shows (read models; no secret, no URL query).
@dataclass(frozen=True)
class DeliveryState:
    destination: str
    status: str  # pending | delivered | dead
    attempts: int
    next_attempt_at: datetime
    give_up_at: datetime
    last_error: str | None
    delivered_at: datetime | None


@dataclass(frozen=True)
class AttemptRecord:
    destination: str
    attempted_at: datetime
    outcome: str  # delivered | failed | refused
    http_status: int | None
    error: str | None
    duration_ms: int


@dataclass(frozen=True)
class EventRecord:
    event: OutboxEvent
    deliveries: list[DeliveryState]


@dataclass(frozen=True)
class DestinationHealth:
    key: str
    kind: str
    target: str
    consecutive_failures: int
    open_until: datetime | None
    last_success_at: datetime | None
    last_failure_at: datetime | None
    last_error: str | None
    pending: int
    dead: int

    def breaker(self, now: datetime) -> str:
        if self.open_until is None:
            return "closed"
        return "open" if self.open_until > now else "half_open"
