"""SQLAlchemy tables. Alembic migrations in `migrations/` create exactly these (a test compares them)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    CheckConstraint,
    DateTime,
    Dialect,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    TypeDecorator,
    UniqueConstraint,
    Uuid,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from shared.domain.models import CredentialType, Status


class UTCDateTime(TypeDecorator[datetime]):
    """timestamptz on PostgreSQL; on SQLite (which drops tzinfo) stored as UTC and read back as aware UTC."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given; the broker stores timezone-aware UTC only")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


JsonDoc = JSON().with_variant(JSONB(), "postgresql")
AutoId = BigInteger().with_variant(Integer(), "sqlite")

NAMING = {
    "ix": "ix_%(column_0_label)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "pk": "pk_%(table_name)s",
}


def _one_of(column: str, values: type[CredentialType] | type[Status]) -> str:
    return f"{column} IN ({', '.join(repr(v.value) for v in values)})"


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)
    type_annotation_map = {datetime: UTCDateTime(), dict[str, Any]: JsonDoc, list[str]: JsonDoc}


class IntegrationRow(Base):
    __tablename__ = "entity_integrations"

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True)
    entity_id: Mapped[str] = mapped_column(String(255))
    provider: Mapped[str] = mapped_column(String(64))
    credential_type: Mapped[str] = mapped_column(String(16))
    status: Mapped[str] = mapped_column(String(24))
    label: Mapped[str | None] = mapped_column(String(200))
    account_subject: Mapped[str | None] = mapped_column(String(255))
    account_email: Mapped[str | None] = mapped_column(String(320))
    account_login: Mapped[str | None] = mapped_column(String(255))
    granted_scopes: Mapped[list[str]] = mapped_column(default=list)
    secret_ref: Mapped[str | None] = mapped_column(String(255))
    secret_version: Mapped[int | None] = mapped_column(Integer)
    token_expires_at: Mapped[datetime | None]
    access_token_ciphertext: Mapped[bytes | None] = mapped_column(LargeBinary)
    access_token_key_version: Mapped[int | None] = mapped_column(Integer)
    # A rotated refresh token the secret store has not taken yet (sealed under the data key, bound to the row).
    pending_secret_ciphertext: Mapped[bytes | None] = mapped_column(LargeBinary)
    pending_secret_key_version: Mapped[int | None] = mapped_column(Integer)
    credential_version: Mapped[int] = mapped_column(BigInteger, default=0, server_default=text("0"))
    last_refreshed_at: Mapped[datetime | None]
    last_refresh_error: Mapped[str | None] = mapped_column(String(500))
    consecutive_failures: Mapped[int] = mapped_column(Integer, default=0, server_default=text("0"))
    consecutive_refusals: Mapped[int] = mapped_column(Integer, default=0, server_default=text("0"))
    next_attempt_after: Mapped[datetime | None]
    lease_owner: Mapped[str | None] = mapped_column(String(128))
    lease_until: Mapped[datetime | None]
    last_sync_at: Mapped[datetime | None]
    last_used_at: Mapped[datetime | None]
    config: Mapped[dict[str, Any]] = mapped_column(default=dict)
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]

    __table_args__ = (
        UniqueConstraint("entity_id", "provider", "account_subject", name="uq_entity_integrations_account"),
        CheckConstraint(_one_of("credential_type", CredentialType), name="credential_type"),
        CheckConstraint(_one_of("status", Status), name="status"),
        CheckConstraint("credential_version >= 0", name="credential_version"),
        Index("ix_entity_integrations_entity_list", "entity_id", "created_at", "id"),
        Index(
            "ix_entity_integrations_expiring",
            "token_expires_at",
            postgresql_where=text("status = 'active' AND token_expires_at IS NOT NULL"),
            sqlite_where=text("status = 'active' AND token_expires_at IS NOT NULL"),
        ),
        Index(  # the refresh job finds rotated tokens still waiting for the secret store
            "ix_entity_integrations_pending",
            "updated_at",
            postgresql_where=text("pending_secret_ciphertext IS NOT NULL"),
            sqlite_where=text("pending_secret_ciphertext IS NOT NULL"),
        ),
    )


class OAuthStateRow(Base):
    __tablename__ = "oauth_states"

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True)
    state_hash: Mapped[str] = mapped_column(String(64), unique=True)
    entity_id: Mapped[str] = mapped_column(String(255))
    provider: Mapped[str] = mapped_column(String(64))
    integration_id: Mapped[uuid.UUID | None] = mapped_column(Uuid)
    code_verifier_ciphertext: Mapped[bytes | None] = mapped_column(LargeBinary)
    key_version: Mapped[int | None] = mapped_column(Integer)
    browser_binding_hash: Mapped[str | None] = mapped_column(String(64))
    return_to: Mapped[str | None] = mapped_column(String(2048))
    requested_scopes: Mapped[list[str]] = mapped_column(default=list)
    label: Mapped[str | None] = mapped_column(String(200))
    created_at: Mapped[datetime]
    expires_at: Mapped[datetime] = mapped_column(index=True)
    consumed_at: Mapped[datetime | None]


class AuditEventRow(Base):
    __tablename__ = "audit_events"

    id: Mapped[int] = mapped_column(AutoId, primary_key=True, autoincrement=True)
    occurred_at: Mapped[datetime]
    actor: Mapped[str] = mapped_column(String(255))
    action: Mapped[str] = mapped_column(String(64))
    outcome: Mapped[str] = mapped_column(String(32))
    entity_id: Mapped[str | None] = mapped_column(String(255))
    integration_id: Mapped[uuid.UUID | None] = mapped_column(Uuid)
    provider: Mapped[str | None] = mapped_column(String(64))
    request_id: Mapped[str | None] = mapped_column(String(64))
    detail: Mapped[dict[str, Any]] = mapped_column(default=dict)

    __table_args__ = (
        Index("ix_audit_events_integration", "integration_id", "occurred_at"),
        Index("ix_audit_events_entity", "entity_id", "occurred_at"),
        Index("ix_audit_events_occurred_at", "occurred_at"),  # retention deletes by age
    )


class VaultSecretVersionRow(Base):
    """The embedded vault (SECRET_BACKEND=database): one row per secret version, payload AES-256-GCM sealed."""

    __tablename__ = "vault_secret_versions"

    secret_id: Mapped[str] = mapped_column(String(255), primary_key=True)
    version: Mapped[int] = mapped_column(Integer, primary_key=True)
    ciphertext: Mapped[bytes | None] = mapped_column(LargeBinary)
    key_version: Mapped[int | None] = mapped_column(Integer)
    labels: Mapped[dict[str, Any]] = mapped_column(default=dict)
    created_at: Mapped[datetime]
    destroyed_at: Mapped[datetime | None]

    __table_args__ = (CheckConstraint("version >= 1", name="version"),)


# The outbox (shared/domain/events.py): one row per event, written in the transaction of its state change.
UNDISPATCHED = text("dispatched_at IS NULL")
PENDING_DELIVERY = text("status = 'pending'")
DELIVERY_STATUSES = ("pending", "delivered", "dead")


class EventRow(Base):
    __tablename__ = "events"

    seq: Mapped[int] = mapped_column(AutoId, primary_key=True, autoincrement=True)  # commit order per integration
    id: Mapped[uuid.UUID] = mapped_column(Uuid, unique=True)  # the event id (UUIDv7), `webhook-id`
    type: Mapped[str] = mapped_column(String(64))
    integration_id: Mapped[uuid.UUID] = mapped_column(Uuid)
    entity_id: Mapped[str] = mapped_column(String(255))
    provider: Mapped[str] = mapped_column(String(64))
    occurred_at: Mapped[datetime]
    data: Mapped[dict[str, Any]] = mapped_column(default=dict)
    dispatched_at: Mapped[datetime | None]  # when the dispatcher made its deliveries (one per destination)

    __table_args__ = (
        Index("ix_events_integration", "integration_id", "seq"),
        Index("ix_events_entity", "entity_id", "seq"),
        Index("ix_events_occurred_at", "occurred_at"),  # retention
        Index("ix_events_undispatched", "seq", postgresql_where=UNDISPATCHED, sqlite_where=UNDISPATCHED),
    )


class EventDeliveryRow(Base):
    """One event to one destination (a webhook endpoint, the Pub/Sub topic)."""

    __tablename__ = "event_deliveries"

    event_seq: Mapped[int] = mapped_column(BigInteger, ForeignKey("events.seq", ondelete="CASCADE"), primary_key=True)
    destination: Mapped[str] = mapped_column(String(80), primary_key=True)
    status: Mapped[str] = mapped_column(String(16))
    attempts: Mapped[int] = mapped_column(Integer, default=0, server_default=text("0"))
    next_attempt_at: Mapped[datetime]
    give_up_at: Mapped[datetime]
    lease_owner: Mapped[str | None] = mapped_column(String(128))
    lease_until: Mapped[datetime | None]
    last_error: Mapped[str | None] = mapped_column(String(200))
    delivered_at: Mapped[datetime | None]
    updated_at: Mapped[datetime]

    __table_args__ = (
        CheckConstraint(f"status IN ({', '.join(repr(s) for s in DELIVERY_STATUSES)})", name="status"),
        Index(
            "ix_event_deliveries_due",
            "destination",
            "next_attempt_at",
            postgresql_where=PENDING_DELIVERY,
            sqlite_where=PENDING_DELIVERY,
        ),
    )


class EventAttemptRow(Base):
    __tablename__ = "event_attempts"

    id: Mapped[int] = mapped_column(AutoId, primary_key=True, autoincrement=True)
    event_seq: Mapped[int] = mapped_column(BigInteger, ForeignKey("events.seq", ondelete="CASCADE"))
    destination: Mapped[str] = mapped_column(String(80))
    attempted_at: Mapped[datetime]
    outcome: Mapped[str] = mapped_column(String(16))  # delivered | failed | refused
    http_status: Mapped[int | None] = mapped_column(Integer)
    error: Mapped[str | None] = mapped_column(String(200))
    duration_ms: Mapped[int] = mapped_column(Integer)

    __table_args__ = (Index("ix_event_attempts_event", "event_seq", "id"),)


class EventDestinationRow(Base):
    """A destination's health, shared by every dispatcher: its circuit breaker, and Pub/Sub's publisher lease."""

    __tablename__ = "event_destinations"

    id: Mapped[str] = mapped_column(String(80), primary_key=True)
    kind: Mapped[str] = mapped_column(String(16))
    target: Mapped[str] = mapped_column(String(2048))  # an endpoint without its query, or the topic
    consecutive_failures: Mapped[int] = mapped_column(Integer, default=0, server_default=text("0"))
    open_until: Mapped[datetime | None]
    last_success_at: Mapped[datetime | None]
    last_failure_at: Mapped[datetime | None]
    last_error: Mapped[str | None] = mapped_column(String(200))
    lease_owner: Mapped[str | None] = mapped_column(String(128))
    lease_until: Mapped[datetime | None]
    updated_at: Mapped[datetime]
