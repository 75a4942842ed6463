"""The outbox's delivery side in SQL (PostgreSQL, SQLite, MySQL): fan-out, claims with leases, attempts, breakers.

Leases are the database's clock (`db_now`), as the refresh engine's are; due times (`next_attempt_at`,
`give_up_at`) are the dispatcher's clock, so tests can drive a day of retries with an injected one. On PostgreSQL
and MySQL every claim selects with `FOR UPDATE SKIP LOCKED`, so dispatchers running at once never lease one
delivery together (MariaDB has no `FOR UPDATE OF`: an ordered claim locks the joined events rows too); SQLite has
one writer at a time anyway.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Engine, and_, exists, insert, or_, select, update

from shared.adapters.db_clock import db_now
from shared.adapters.orm_events import EventAttemptRow, EventDeliveryRow, EventDestinationRow, EventRow
from shared.adapters.sql_returning import claim_returning, update_returning
from shared.domain.delivery import Delivery, Destination, SendResult, breaker_open_until
from shared.domain.event_ports import DestinationState
from shared.domain.events import OutboxEvent

D = EventDeliveryRow
PENDING = "pending"


def to_event(row: Any) -> OutboxEvent:
    return OutboxEvent(
        row.id, row.type, row.occurred_at, row.integration_id, row.entity_id, row.provider, dict(row.data), row.seq
    )


def _lease_free() -> Any:
    return or_(D.lease_until.is_(None), D.lease_until <= db_now())


class SqlEventStore:
    def __init__(self, engine: Engine) -> None:
        self._engine = engine

    def register(self, destinations: Sequence[Destination], now: datetime) -> None:
        with self._engine.begin() as conn:
            known = set(conn.execute(select(EventDestinationRow.id)).scalars())
            for destination in destinations:
                if destination.key in known:
                    conn.execute(
                        update(EventDestinationRow)
                        .where(
                            EventDestinationRow.id == destination.key, EventDestinationRow.target != destination.target
                        )
                        .values(target=destination.target, updated_at=now)
                    )
                    continue
                values = {"id": destination.key, "kind": destination.kind, "target": destination.target}
                conn.execute(insert(EventDestinationRow).values(**values, updated_at=now))

    def fan_out(self, destinations: Sequence[str], window: timedelta, limit: int, now: datetime) -> int:
        new = (
            select(EventRow.seq)
            .where(EventRow.dispatched_at.is_(None))
            .order_by(EventRow.seq)
            .limit(limit)
            .with_for_update(skip_locked=True)
        )
        with self._engine.begin() as conn:
            seqs = list(conn.execute(new).scalars())
            if not seqs:
                return 0
            rows = [
                {"event_seq": seq, "destination": destination, "status": PENDING, "attempts": 0,
                 "next_attempt_at": now, "give_up_at": now + window, "updated_at": now}
                for seq in seqs for destination in destinations
            ]  # fmt: skip
            if rows:
                conn.execute(insert(D), rows)
            conn.execute(update(EventRow).where(EventRow.seq.in_(seqs)).values(dispatched_at=now))
        return len(seqs)

    def states(self, destinations: Sequence[str]) -> list[DestinationState]:
        query = select(EventDestinationRow).where(EventDestinationRow.id.in_(list(destinations)))
        with self._engine.connect() as conn:
            return [DestinationState(r.id, r.consecutive_failures, r.open_until) for r in conn.execute(query)]

    def claim(
        self, destinations: Sequence[str], limit: int, owner: str, lease: timedelta, now: datetime, *,
        last_chance_only: bool = False,
    ) -> list[Delivery]:  # fmt: skip
        if not destinations or limit <= 0:
            return []
        due = select(D.event_seq, D.destination).where(
            D.status == PENDING, D.destination.in_(list(destinations)), D.next_attempt_at <= now, _lease_free()
        )
        if last_chance_only:
            due = due.where(D.give_up_at <= now)
        due = due.order_by(D.next_attempt_at).limit(limit).with_for_update(skip_locked=True)
        return self._lease(due, owner, lease)

    def claim_ordered(
        self, destination: str, limit: int, owner: str, lease: timedelta, now: datetime
    ) -> list[Delivery]:
        publisher = (
            update(EventDestinationRow)
            .where(
                EventDestinationRow.id == destination,
                or_(EventDestinationRow.lease_until.is_(None), EventDestinationRow.lease_until <= db_now()),
            )
            .values(lease_owner=owner, lease_until=db_now(lease.total_seconds()))
        )
        with self._engine.begin() as conn:
            if conn.execute(publisher).rowcount == 0:
                return []
        earlier, earlier_event = D.__table__.alias("earlier"), EventRow.__table__.alias("earlier_event")
        blocked = exists().where(  # an earlier delivery of the same integration that is not due yet
            earlier.c.destination == destination,
            earlier.c.status == PENDING,
            earlier.c.event_seq < D.event_seq,
            earlier.c.next_attempt_at > now,
            earlier_event.c.seq == earlier.c.event_seq,
            earlier_event.c.integration_id == EventRow.integration_id,
        )
        due = (
            select(D.event_seq, D.destination)
            .join(EventRow, EventRow.seq == D.event_seq)
            .where(D.status == PENDING, D.destination == destination, D.next_attempt_at <= now, ~blocked)
            .order_by(D.event_seq)
            .limit(limit)
            .with_for_update(skip_locked=True, of=D)
        )
        return self._lease(due, owner, lease)

    def release_destination(self, destination: str, owner: str) -> None:
        with self._engine.begin() as conn:
            conn.execute(
                update(EventDestinationRow)
                .where(EventDestinationRow.id == destination, EventDestinationRow.lease_owner == owner)
                .values(lease_owner=None, lease_until=None)
            )

    def _lease(self, due: Any, owner: str, lease: timedelta) -> list[Delivery]:
        values = {"lease_owner": owner, "lease_until": db_now(lease.total_seconds())}
        columns = (D.event_seq, D.destination, D.attempts, D.give_up_at)
        with self._engine.begin() as conn:
            leased = claim_returning(conn, D, due, [_lease_free()], values, columns)
            seqs = sorted({row.event_seq for row in leased})
            events = {r.seq: to_event(r) for r in conn.execute(select(EventRow).where(EventRow.seq.in_(seqs)))}
        deliveries = [Delivery(events[r.event_seq], r.destination, r.attempts, r.give_up_at) for r in leased]
        return sorted(deliveries, key=lambda d: d.event.seq)

    def finish(
        self, delivery: Delivery, owner: str, result: SendResult, now: datetime, *, status: str,
        next_attempt_at: datetime | None,
    ) -> None:  # fmt: skip
        outcome = {"delivered": "delivered", "retry": "failed", "refused": "refused"}[result.verdict]
        attempt = {
            "event_seq": delivery.event.seq, "destination": delivery.destination, "attempted_at": now,
            "outcome": outcome, "http_status": result.http_status, "error": _short(result.error),
            "duration_ms": result.duration_ms,
        }  # fmt: skip
        changes: dict[str, Any] = {
            "status": status, "attempts": D.attempts + 1, "lease_owner": None, "lease_until": None, "updated_at": now,
            "last_error": None if result.verdict == "delivered" else _short(_describe(result)),
        }  # fmt: skip
        if next_attempt_at is not None:
            changes["next_attempt_at"] = next_attempt_at
        if status == "delivered":
            changes["delivered_at"] = now
        mine = and_(D.event_seq == delivery.event.seq, D.destination == delivery.destination, D.lease_owner == owner)
        with self._engine.begin() as conn:
            conn.execute(insert(EventAttemptRow).values(**attempt))
            conn.execute(update(D).where(mine).values(**changes))
            self._health(conn, delivery.destination, result, now)

    @staticmethod
    def _health(conn: Any, destination: str, result: SendResult, now: datetime) -> None:
        row = EventDestinationRow
        where = row.id == destination
        if result.verdict == "delivered":
            values = {"consecutive_failures": 0, "open_until": None, "last_success_at": now, "updated_at": now}
            conn.execute(update(row).where(where).values(**values))
            return
        failed = {"last_failure_at": now, "last_error": _short(_describe(result)), "updated_at": now}
        if result.verdict == "refused":  # the endpoint answered: reachable, so no reason to stop calling it
            conn.execute(update(row).where(where).values(**failed))
            return
        changed = update_returning(
            conn, row, [where], {**failed, "consecutive_failures": row.consecutive_failures + 1},
            [row.consecutive_failures],
        )  # fmt: skip
        if changed:
            counted = changed[0][0]
            conn.execute(update(row).where(where).values(open_until=breaker_open_until(counted, now)))


def _describe(result: SendResult) -> str:
    if result.error:
        return result.error
    return f"http_{result.http_status}" if result.http_status is not None else "failed"


def _short(text: str | None) -> str | None:
    return text[:200] if text else text
