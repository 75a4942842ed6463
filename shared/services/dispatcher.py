"""The dispatcher: fan new outbox events out to every destination, deliver what is due, retry, give up.

Delivery is at least once. A delivery is leased before it is sent (FOR UPDATE SKIP LOCKED, a lease on the
database's clock), so dispatchers running at once never send one event to one destination together; a
dispatcher that dies after sending but before recording sends it again once its lease lapses, and a receiver
that answered after the timeout gets it again: receivers dedupe by `webhook-id` (the event id).

Each run: fan out (one pending delivery per destination for each new event), then the ordered destination
(Pub/Sub, one publisher at a time, in commit order per integration), then the webhooks, `concurrency` at a time
and always the longest-waiting first, skipping endpoints whose circuit breaker is open (shared.domain.delivery).
It stops claiming when its budget is spent or the process is draining; sends in flight finish.
"""

from __future__ import annotations

import logging
import random
import time
import uuid
from collections import Counter
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import timedelta

from shared.domain.delivery import Delivery, SendResult, next_attempt
from shared.domain.event_ports import EventSink, EventStore
from shared.domain.ports import Clock
from shared.errors import BrokerError

log = logging.getLogger("broker.events")

SUMMARY = ("fanned_out", "delivered", "retried", "dead")
DISPATCH_BUDGET = 45.0  # seconds a scheduled dispatch (POST /dispatch, every minute) claims for
AFTER_REFRESH_BUDGET = 10.0  # seconds a refresh job run dispatches for, after its housekeeping


def _never() -> bool:
    return False


@dataclass
class Dispatcher:
    store: EventStore
    sinks: Sequence[EventSink]
    clock: Clock
    window: timedelta  # EVENTS_RETRY_HOURS: how long a delivery is retried from its first attempt
    concurrency: int = 8
    lease: timedelta = timedelta(seconds=60)  # far above a send's timeout (3 s to connect, 10 s to answer)
    batch: int = 500  # events fanned out per transaction; Pub/Sub messages per publish round
    stopping: Callable[[], bool] = _never
    rng: random.Random | None = None
    _registered: bool = field(default=False, repr=False)

    def run(self, budget: float) -> dict[str, int]:
        """Dispatch for at most `budget` seconds (sends in flight finish); counts by outcome."""
        started = time.monotonic()
        stop_at = started + budget
        owner = f"dispatch-{uuid.uuid4().hex[:12]}"
        counts: Counter[str] = Counter()
        if not self._registered:
            self.store.register([sink.destination for sink in self.sinks], self.clock.now())
            self._registered = True
        keys = [sink.destination.key for sink in self.sinks]
        while self._in_time(stop_at):
            fanned = self.store.fan_out(keys, self.window, self.batch, self.clock.now())
            counts["fanned_out"] += fanned
            if fanned < self.batch:
                break
        for sink in self.sinks:
            if sink.ordered and self._in_time(stop_at):
                self._deliver_ordered(sink, owner, stop_at, counts)
        unordered = {sink.destination.key: sink for sink in self.sinks if not sink.ordered}
        if unordered:
            with ThreadPoolExecutor(max_workers=self.concurrency, thread_name_prefix="dispatch") as pool:
                while self._in_time(stop_at):
                    batch = self._claim(list(unordered), owner)
                    if not batch:
                        break
                    results = list(pool.map(lambda d: _send(unordered[d.destination], d), batch))
                    for delivery, result in zip(batch, results, strict=True):
                        self._finish(delivery, owner, result, counts)
        summary = {key: counts[key] for key in SUMMARY}
        summary["duration_ms"] = int((time.monotonic() - started) * 1000)
        return summary

    def run_safely(self, budget: float) -> dict[str, int | str]:
        """`run` that never fails its caller (the refresh job): a failure is an `error` code, the next run retries."""
        try:
            return dict(self.run(budget))
        except Exception as exc:  # noqa: BLE001 - e.g. the database went away: events wait in the outbox
            code = exc.code if isinstance(exc, BrokerError) else "internal_error"
            log.error("event dispatch failed: %s (%s)", code, type(exc).__name__)
            return {key: 0 for key in (*SUMMARY, "duration_ms")} | {"error": code}

    def _in_time(self, stop_at: float) -> bool:
        return time.monotonic() < stop_at and not self.stopping()

    def _claim(self, keys: list[str], owner: str) -> list[Delivery]:
        """Up to `concurrency` deliveries: closed breakers first, one probe per half-open one, and last chances
        (retry window over) for open ones."""
        now = self.clock.now()
        until = {state.key: state.open_until for state in self.store.states(keys)}
        closed = [k for k in keys if until.get(k) is None]
        opened = [k for k in keys if (at := until.get(k)) is not None and at > now]
        half_open = [k for k in keys if k not in closed and k not in opened]
        batch = self.store.claim(closed, self.concurrency, owner, self.lease, now)
        for key in half_open:
            batch += self.store.claim([key], 1, owner, self.lease, now)
        room = self.concurrency - len(batch)
        if opened and room > 0:
            batch += self.store.claim(opened, room, owner, self.lease, now, last_chance_only=True)
        return batch

    def _deliver_ordered(self, sink: EventSink, owner: str, stop_at: float, counts: Counter[str]) -> None:
        key = sink.destination.key
        try:
            while self._in_time(stop_at):
                batch = self.store.claim_ordered(key, self.batch, owner, self.lease, self.clock.now())
                if not batch:
                    break
                results = _deliver(sink, batch)
                for delivery, result in zip(batch, results, strict=True):
                    self._finish(delivery, owner, result, counts)
                if any(result.verdict != "delivered" for result in results):
                    break  # what failed is due again after its backoff, and what follows it waits for it
        finally:
            self.store.release_destination(key, owner)

    def _finish(self, delivery: Delivery, owner: str, result: SendResult, counts: Counter[str]) -> None:
        now = self.clock.now()
        if result.verdict == "delivered":
            status, at = "delivered", None
        elif result.verdict == "refused":
            status, at = "dead", None
        else:
            retry = next_attempt(delivery.attempts + 1, now, delivery.give_up_at, result.retry_after, self.rng)
            status, at = ("pending", retry.at) if retry.at is not None else ("dead", None)
        if status == "dead":
            log.warning(
                "event %s to %s is dead after %d attempts (%s)", delivery.event.id, delivery.destination,
                delivery.attempts + 1, result.error or result.http_status,
            )  # fmt: skip
        self.store.finish(delivery, owner, result, now, status=status, next_attempt_at=at)
        counts[{"delivered": "delivered", "pending": "retried", "dead": "dead"}[status]] += 1


def _send(sink: EventSink, delivery: Delivery) -> SendResult:
    return _deliver(sink, [delivery])[0]


def _deliver(sink: EventSink, deliveries: list[Delivery]) -> list[SendResult]:
    try:
        results = sink.deliver([d.event for d in deliveries])
    except Exception as exc:  # noqa: BLE001 - a sink's bug must not stop the others: retry like a network error
        log.error("delivery to %s failed unexpectedly: %s", sink.destination.key, type(exc).__name__)
        return [SendResult("retry", error=f"internal:{type(exc).__name__}"[:64])] * len(deliveries)
    if len(results) != len(deliveries):
        return [SendResult("retry", error="internal:result_count")] * len(deliveries)
    return results
