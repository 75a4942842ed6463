"""The event tables: the outbox (shared/domain/events.py), one row per event written in the transaction of its state
change, its deliveries per destination, their attempts, and each destination's health."""

from __future__ import annotations

from sqlalchemy import BigInteger, CheckConstraint, Column, ForeignKey, Index, Integer, String, Table, text

from shared.adapters.sql_types import AutoId, JsonDoc, PortableUuid
from shared.adapters.table_base import Rows, metadata
from shared.adapters.table_base import ts as _ts

UNDISPATCHED = text("dispatched_at IS NULL")
PENDING_DELIVERY = text("status = 'pending'")
DELIVERY_STATUSES = ("pending", "delivered", "dead")


class EventRow(Rows):
    __table__ = Table(
        "events",
        metadata,
        Column("seq", AutoId, primary_key=True, autoincrement=True),  # commit order per integration
        Column("id", PortableUuid, nullable=False, unique=True),  # the event id (UUIDv7), `webhook-id`
        Column("type", String(64), nullable=False),
        Column("integration_id", PortableUuid, nullable=False),
        Column("entity_id", String(255), nullable=False),
        Column("provider", String(64), nullable=False),
        _ts("occurred_at", nullable=False),
        Column("data", JsonDoc, nullable=False, default=dict),
        _ts("dispatched_at"),  # when the dispatcher made its deliveries (one per destination)
        Index("ix_events_integration", "integration_id", "seq"),
        Index("ix_events_entity", "entity_id", "seq"),
        Index("ix_events_occurred_at", "occurred_at"),  # retention
        Index("ix_events_undispatched", "seq", postgresql_where=UNDISPATCHED, sqlite_where=UNDISPATCHED),
    )


class EventDeliveryRow(Rows):
    """One event to one destination (a webhook endpoint, the Pub/Sub topic)."""

    __table__ = Table(
        "event_deliveries",
        metadata,
        Column("event_seq", BigInteger, ForeignKey("events.seq", ondelete="CASCADE"), primary_key=True),
        Column("destination", String(80), primary_key=True),
        Column("status", String(16), nullable=False),
        Column("attempts", Integer, nullable=False, default=0, server_default=text("0")),
        _ts("next_attempt_at", nullable=False),
        _ts("give_up_at", nullable=False),
        Column("lease_owner", String(128)),
        _ts("lease_until"),
        Column("last_error", String(200)),
        _ts("delivered_at"),
        _ts("updated_at", nullable=False),
        CheckConstraint(f"status IN ({', '.join(repr(s) for s in DELIVERY_STATUSES)})", name="status"),
        Index(
            "ix_event_deliveries_due",
            "destination",
            "next_attempt_at",
            postgresql_where=PENDING_DELIVERY,
            sqlite_where=PENDING_DELIVERY,
        ),
    )


class EventAttemptRow(Rows):
    __table__ = Table(
        "event_attempts",
        metadata,
        Column("id", AutoId, primary_key=True, autoincrement=True),
        Column("event_seq", BigInteger, ForeignKey("events.seq", ondelete="CASCADE"), nullable=False),
        Column("destination", String(80), nullable=False),
        _ts("attempted_at", nullable=False),
        Column("outcome", String(16), nullable=False),  # delivered | failed | refused
        Column("http_status", Integer),
        Column("error", String(200)),
        Column("duration_ms", Integer, nullable=False),
        Index("ix_event_attempts_event", "event_seq", "id"),
    )


class EventDestinationRow(Rows):
    """A destination's health, shared by every dispatcher: its circuit breaker, and Pub/Sub's publisher lease."""

    __table__ = Table(
        "event_destinations",
        metadata,
        Column("id", String(80), primary_key=True),
        Column("kind", String(16), nullable=False),
        Column("target", String(2048), nullable=False),  # an endpoint without its query, or the topic
        Column("consecutive_failures", Integer, nullable=False, default=0, server_default=text("0")),
        _ts("open_until"),
        _ts("last_success_at"),
        _ts("last_failure_at"),
        Column("last_error", String(200)),
        Column("lease_owner", String(128)),
        _ts("lease_until"),
        _ts("updated_at", nullable=False),
    )
