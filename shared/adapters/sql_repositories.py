"""SQL repositories for integrations, handshake states and audit events (PostgreSQL and SQLite)."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from datetime import datetime
from typing import Any
from uuid import UUID

from sqlalchemy import Connection, Engine, insert, or_, select
from sqlalchemy.exc import IntegrityError

from shared.adapters.orm import AuditEventRow, EventRow, IntegrationRow, OAuthStateRow
from shared.adapters.sql_returning import update_returning
from shared.domain.events import EventSpec, OutboxEvent, materialise
from shared.domain.models import AuditEvent, CredentialType, Integration, OAuthState, Status
from shared.domain.ports import Clock, Record
from shared.errors import Conflict, NotFound, SecretStoreUnavailable

INTEGRATION_FIELDS = tuple(f.name for f in dataclasses.fields(Integration))
STATE_FIELDS = tuple(f.name for f in dataclasses.fields(OAuthState))
# What a reconnect replaces; everything else (id, entity, created_at, label unless given, config) stays.
CREDENTIAL_FIELDS = (
    "status", "account_subject", "account_email", "account_login", "granted_scopes", "secret_ref", "secret_version",
    "token_expires_at", "access_token_ciphertext", "access_token_key_version", "last_refreshed_at",
    "last_refresh_error", "consecutive_failures", "next_attempt_after", "lease_owner", "lease_until", "label",
    "pending_secret_ciphertext", "pending_secret_key_version", "consecutive_refusals",
    "refresh_token_expires_at", "keep_alive_at", "expiry_warned_for", "scopes_known", "provider_metadata",
    "secret_backend",
)  # fmt: skip


def to_integration(row: Any) -> Integration:
    values = {name: getattr(row, name) for name in INTEGRATION_FIELDS}
    values["status"] = Status(values["status"])
    values["credential_type"] = CredentialType(values["credential_type"])
    return Integration(**values)


def _integration_values(integration: Integration) -> dict[str, Any]:
    values = {name: getattr(integration, name) for name in INTEGRATION_FIELDS}
    values["status"] = integration.status.value
    values["credential_type"] = integration.credential_type.value
    return values


def _write_events(conn: Connection, events: Sequence[AuditEvent], now: datetime) -> None:
    if events:
        conn.execute(insert(AuditEventRow), [{**dataclasses.asdict(e), "occurred_at": now} for e in events])


def write_records(conn: Connection, records: Sequence[Record], row: Integration, now: datetime) -> None:
    """Audit events and outbox events of one state change, in its transaction; outbox events are completed from
    `row`, the integration as this transaction wrote it (or, for a removal, as it was last)."""
    _write_events(conn, [r for r in records if isinstance(r, AuditEvent)], now)
    insert_outbox(conn, [materialise(r, row, now) for r in records if isinstance(r, EventSpec)])


def insert_outbox(conn: Connection, events: Sequence[OutboxEvent]) -> None:
    if events:
        rows = [
            {"id": e.id, "type": e.type, "integration_id": e.integration_id, "entity_id": e.entity_id,
             "provider": e.provider, "occurred_at": e.occurred_at, "data": e.data}
            for e in events
        ]  # fmt: skip
        conn.execute(insert(EventRow), rows)


def load_integration(engine: Engine, integration_id: UUID, entity_id: str | None = None) -> Integration | None:
    """One row by primary key (scoped to `entity_id` when given): the token hot path's single read."""
    query = select(IntegrationRow).where(IntegrationRow.id == integration_id)
    if entity_id is not None:
        query = query.where(IntegrationRow.entity_id == entity_id)
    with engine.connect() as conn:
        row = conn.execute(query).one_or_none()
    return to_integration(row) if row else None


class SqlIntegrationRepository:
    def __init__(self, engine: Engine, clock: Clock) -> None:
        self._engine = engine
        self._clock = clock

    def get(self, integration_id: UUID, entity_id: str | None = None) -> Integration | None:
        return load_integration(self._engine, integration_id, entity_id)

    def find_account(self, entity_id: str, provider: str, subject: str) -> Integration | None:
        query = select(IntegrationRow).where(
            IntegrationRow.entity_id == entity_id,
            IntegrationRow.provider == provider,
            IntegrationRow.account_subject == subject,
        )
        with self._engine.connect() as conn:
            row = conn.execute(query).one_or_none()
        return to_integration(row) if row else None

    def add(self, integration: Integration, events: Sequence[Record] = ()) -> None:
        try:
            with self._engine.begin() as conn:
                conn.execute(insert(IntegrationRow).values(**_integration_values(integration)))
                write_records(conn, events, integration, self._clock.now())
        except IntegrityError:
            raise Conflict("this account is already connected", code="already_connected") from None

    def replace_credentials(self, integration: Integration, events: Sequence[Record] = ()) -> Integration:
        now = self._clock.now()
        values = {name: getattr(integration, name) for name in CREDENTIAL_FIELDS}
        values["status"] = integration.status.value
        mine = (IntegrationRow.id == integration.id, IntegrationRow.entity_id == integration.entity_id)
        # Fenced on the backend the new secret was written to: `broker migrate-secrets` may have moved the row's
        # secret to another backend meanwhile, and a row must never point into a backend that lacks its version.
        same_backend = or_(
            IntegrationRow.secret_ref.is_(None),
            IntegrationRow.secret_backend.is_not_distinct_from(integration.secret_backend),
        )
        values |= {"updated_at": now, "credential_version": IntegrationRow.credential_version + 1}
        with self._engine.begin() as conn:
            rows = update_returning(conn, IntegrationRow, [*mine, same_backend], values)
            if not rows and conn.execute(select(IntegrationRow.id).where(*mine)).first() is not None:
                raise SecretStoreUnavailable("the integration's secret was being moved to another backend: try again")
            if not rows:
                raise NotFound("integration not found", code="integration_not_found")
            stored = to_integration(rows[0])
            write_records(conn, events, stored, now)
        return stored


class SqlOAuthStateRepository:
    def __init__(self, engine: Engine) -> None:
        self._engine = engine

    def add(self, state: OAuthState) -> None:
        with self._engine.begin() as conn:
            conn.execute(insert(OAuthStateRow).values(**dataclasses.asdict(state)))

    def consume(self, state_hash: str, binding_hash: str | None, now: datetime) -> OAuthState | None:
        where = [
            OAuthStateRow.state_hash == state_hash,
            OAuthStateRow.consumed_at.is_(None),
            OAuthStateRow.expires_at > now,
        ]
        if binding_hash is not None:
            where.append(
                (OAuthStateRow.browser_binding_hash == binding_hash) | OAuthStateRow.browser_binding_hash.is_(None)
            )
        else:
            where.append(OAuthStateRow.browser_binding_hash.is_(None))
        with self._engine.begin() as conn:
            rows = update_returning(conn, OAuthStateRow, where, {"consumed_at": now})
        return OAuthState(**{name: getattr(rows[0], name) for name in STATE_FIELDS}) if rows else None

    def why_refused(self, state_hash: str, binding_hash: str | None, now: datetime) -> str:
        with self._engine.connect() as conn:
            row = conn.execute(select(OAuthStateRow).where(OAuthStateRow.state_hash == state_hash)).one_or_none()
        if row is None:
            return "unknown"
        if row.consumed_at is not None:
            return "used"
        if row.expires_at <= now:
            return "expired"
        return "foreign_browser"


class SqlAuditLog:
    def __init__(self, engine: Engine, clock: Clock) -> None:
        self._engine = engine
        self._clock = clock

    def record(self, event: AuditEvent) -> None:
        with self._engine.begin() as conn:
            _write_events(conn, [event], self._clock.now())
