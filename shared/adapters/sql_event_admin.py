"""The operator API's SQL over the outbox: pages of events with their deliveries, attempts, replays, health."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any
from uuid import UUID

from sqlalchemy import Engine, func, or_, select

from shared.adapters.db_clock import db_now
from shared.adapters.orm_events import EventAttemptRow, EventDeliveryRow, EventDestinationRow, EventRow
from shared.adapters.sql_events import to_event
from shared.adapters.sql_returning import update_returning
from shared.domain.delivery import AttemptRecord, DeliveryState, DestinationHealth, EventRecord
from shared.domain.event_ports import EventSelection

D = EventDeliveryRow


def _selected(selection: EventSelection) -> Any:
    query = select(EventRow)
    if selection.event_ids:
        query = query.where(EventRow.id.in_(list(selection.event_ids)))
    if selection.integration_id is not None:
        query = query.where(EventRow.integration_id == selection.integration_id)
    if selection.entity_id is not None:
        query = query.where(EventRow.entity_id == selection.entity_id)
    if selection.since is not None:
        query = query.where(EventRow.occurred_at >= selection.since)
    if selection.until is not None:
        query = query.where(EventRow.occurred_at < selection.until)
    return query


def _delivery(row: Any) -> DeliveryState:
    return DeliveryState(
        row.destination, row.status, row.attempts, row.next_attempt_at, row.give_up_at, row.last_error,
        row.delivered_at,
    )  # fmt: skip


class SqlEventAdmin:
    def __init__(self, engine: Engine) -> None:
        self._engine = engine

    def page(self, selection: EventSelection, after_seq: int | None, limit: int) -> list[EventRecord]:
        # Served by ix_events_integration / ix_events_entity ((integration_id | entity_id), seq): a range scan.
        query = _selected(selection)
        if after_seq is not None:
            query = query.where(EventRow.seq > after_seq)
        with self._engine.connect() as conn:
            events = [to_event(row) for row in conn.execute(query.order_by(EventRow.seq).limit(limit))]
            return self._with_deliveries(conn, events)

    def get(self, event_id: UUID) -> tuple[EventRecord, list[AttemptRecord]] | None:
        with self._engine.connect() as conn:
            row = conn.execute(select(EventRow).where(EventRow.id == event_id)).one_or_none()
            if row is None:
                return None
            (record,) = self._with_deliveries(conn, [to_event(row)])
            tried = conn.execute(
                select(EventAttemptRow).where(EventAttemptRow.event_seq == row.seq).order_by(EventAttemptRow.id)
            )
            attempts = [
                AttemptRecord(a.destination, a.attempted_at, a.outcome, a.http_status, a.error, a.duration_ms)
                for a in tried
            ]
        return record, attempts

    @staticmethod
    def _with_deliveries(conn: Any, events: Sequence[Any]) -> list[EventRecord]:
        by_seq: dict[int, list[DeliveryState]] = defaultdict(list)
        if events:
            rows = conn.execute(
                select(D).where(D.event_seq.in_([e.seq for e in events])).order_by(D.event_seq, D.destination)
            )
            for row in rows:
                by_seq[row.event_seq].append(_delivery(row))
        return [EventRecord(event, by_seq[event.seq]) for event in events]

    def count(self, selection: EventSelection) -> int:
        with self._engine.connect() as conn:
            return int(conn.execute(select(func.count()).select_from(_selected(selection).subquery())).scalar_one())

    def replay(self, selection: EventSelection, window: timedelta, now: datetime) -> tuple[int, int]:
        seqs = _selected(selection).with_only_columns(EventRow.seq)
        reset = {
            "status": "pending", "attempts": 0, "next_attempt_at": now, "give_up_at": now + window,
            "last_error": None, "delivered_at": None, "lease_owner": None, "lease_until": None, "updated_at": now,
        }  # fmt: skip
        with self._engine.begin() as conn:
            chosen: Any = seqs.scalar_subquery()
            if conn.dialect.name == "mysql":  # no subquery on the table it updates (error 1093): the seqs first
                chosen = list(conn.execute(seqs).scalars())
            where = [D.event_seq.in_(chosen), or_(D.lease_until.is_(None), D.lease_until <= db_now())]
            replayed = [row.event_seq for row in update_returning(conn, D, where, reset, [D.event_seq])]
        return len(set(replayed)), len(replayed)

    def destinations(self) -> list[DestinationHealth]:
        counted = (
            select(D.destination, D.status, func.count())
            .where(D.status.in_(["pending", "dead"]))
            .group_by(D.destination, D.status)
        )
        with self._engine.connect() as conn:
            counts = {(row[0], row[1]): int(row[2]) for row in conn.execute(counted)}
            rows = list(conn.execute(select(EventDestinationRow).order_by(EventDestinationRow.id)))
        return [_health(r, counts.get((r.id, "pending"), 0), counts.get((r.id, "dead"), 0)) for r in rows]


def _health(r: Any, pending: int, dead: int) -> DestinationHealth:
    return DestinationHealth(
        r.id, r.kind, r.target, r.consecutive_failures, r.open_until, r.last_success_at, r.last_failure_at,
        r.last_error, pending, dead,
    )  # fmt: skip
