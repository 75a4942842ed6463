"""Ports of the event outbox's delivery side and its operator API. Adapters implement them."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Protocol
from uuid import UUID

from shared.domain.delivery import (
    AttemptRecord,
    Delivery,
    Destination,
    DestinationHealth,
    EventRecord,
    SendResult,
)
from shared.domain.events import OutboxEvent


@dataclass(frozen=True)
class DestinationState:
    """A destination's circuit breaker as the dispatcher sees it."""

    key: str
    consecutive_failures: int
    open_until: datetime | None


class EventStore(Protocol):
    """The outbox's delivery side (SqlEventStore). Claims take a lease (on the database's clock) with
    `FOR UPDATE SKIP LOCKED`, so dispatchers running at once never hold one delivery together."""

    def register(self, destinations: Sequence[Destination], now: datetime) -> None:
        """Make sure each destination has its health row."""
        ...

    def fan_out(self, destinations: Sequence[str], window: timedelta, limit: int, now: datetime) -> int:
        """Give up to `limit` new events one pending delivery per destination, due now and retried until
        `now + window`; how many events were fanned out."""
        ...

    def states(self, destinations: Sequence[str]) -> list[DestinationState]: ...

    def claim(
        self, destinations: Sequence[str], limit: int, owner: str, lease: timedelta, now: datetime, *,
        last_chance_only: bool = False,
    ) -> list[Delivery]:  # fmt: skip
        """Lease up to `limit` due deliveries to `destinations`, the longest waiting first (`last_chance_only`:
        only those whose retry window has run out)."""
        ...

    def claim_ordered(
        self, destination: str, limit: int, owner: str, lease: timedelta, now: datetime
    ) -> list[Delivery]:
        """For a destination that keeps order per integration (Pub/Sub): take its publisher lease, then lease its
        due deliveries in commit order, leaving out every integration with an earlier delivery not yet due.
        [] when another dispatcher holds the publisher lease."""
        ...

    def release_destination(self, destination: str, owner: str) -> None: ...

    def finish(
        self, delivery: Delivery, owner: str, result: SendResult, now: datetime, *, status: str,
        next_attempt_at: datetime | None,
    ) -> None:  # fmt: skip
        """Record the attempt, move the delivery to `status` (pending: again at `next_attempt_at`; delivered;
        dead) while `owner` still holds it, and update the destination's breaker, in one transaction."""
        ...


class EventSink(Protocol):
    """A destination's transport (WebhookSink, PubSubSink). `deliver` never raises: each event gets its result,
    in order. An `ordered` sink delivers one integration's events in the order given and none after a failure."""

    destination: Destination
    ordered: bool

    def deliver(self, events: Sequence[OutboxEvent]) -> list[SendResult]: ...


@dataclass(frozen=True)
class EventSelection:
    """Which events a replay or a listing means: by id, or one integration's (or entity's) within a time range."""

    event_ids: tuple[UUID, ...] = ()
    integration_id: UUID | None = None
    entity_id: str | None = None
    since: datetime | None = None
    until: datetime | None = None


class EventAdmin(Protocol):
    """The operator API's reads and replays over the outbox (SqlEventAdmin)."""

    def page(self, selection: EventSelection, after_seq: int | None, limit: int) -> list[EventRecord]:
        """Up to `limit` events of the selection in commit order (seq), strictly after `after_seq`."""
        ...

    def get(self, event_id: UUID) -> tuple[EventRecord, list[AttemptRecord]] | None: ...

    def count(self, selection: EventSelection) -> int: ...

    def replay(self, selection: EventSelection, window: timedelta, now: datetime) -> tuple[int, int]:
        """Make every delivery of the selected events pending again (due now, retried for `window`), except those a
        dispatcher holds right now; (events, deliveries) reset."""
        ...

    def destinations(self) -> list[DestinationHealth]: ...
