"""Leases and fenced writes for refreshing (PostgreSQL and SQLite).

A lease (`lease_owner`, `lease_until`) is taken with a conditional UPDATE, so one worker across all instances
refreshes an integration at a time. Every write of new credentials is fenced on `credential_version`: a worker
whose lease lapsed while another wrote newer credentials changes nothing.
"""

from __future__ import annotations

from dataclasses import asdict
from datetime import datetime, timedelta
from typing import Any
from uuid import UUID

from sqlalchemy import Engine, and_, insert, or_, select, update

from shared.adapters.orm import AuditEventRow
from shared.adapters.orm import IntegrationRow as R
from shared.adapters.sql_repositories import load_integration, to_integration
from shared.domain.models import AuditEvent, Integration, Status


def _lease_free(now: datetime) -> Any:
    return or_(R.lease_until.is_(None), R.lease_until <= now)


class SqlRefreshStore:
    def __init__(self, engine: Engine) -> None:
        self._engine = engine

    def claim(self, integration_id: UUID, owner: str, lease: timedelta, now: datetime) -> Integration | None:
        """Take the lease on one integration; None when another worker holds it."""
        statement = (
            update(R)
            .where(R.id == integration_id, _lease_free(now))
            .values(lease_owner=owner, lease_until=now + lease)
            .returning(R)
        )
        with self._engine.begin() as conn:
            row = conn.execute(statement).one_or_none()
        return to_integration(row) if row else None

    def claim_due(
        self, horizon: timedelta, limit: int, owner: str, lease: timedelta, now: datetime, began: datetime
    ) -> list[Integration]:
        """Lease up to `limit` active integrations whose token expires within `horizon`, soonest first.

        On PostgreSQL rows another job is claiming are skipped (FOR UPDATE SKIP LOCKED), so two jobs at once
        never claim the same integration; SQLite runs one writer at a time anyway.
        """
        due = (
            select(R.id)
            .where(
                R.status == Status.ACTIVE.value,
                R.token_expires_at.is_not(None),
                R.token_expires_at <= now + horizon,
                R.secret_ref.is_not(None),
                _lease_free(now),
                or_(R.next_attempt_after.is_(None), R.next_attempt_after <= now),
                or_(R.last_refreshed_at.is_(None), R.last_refreshed_at < began),
            )
            .order_by(R.token_expires_at)
            .limit(limit)
            .with_for_update(skip_locked=True)
        )
        statement = (
            update(R)
            .where(R.id.in_(due.scalar_subquery()), _lease_free(now))
            .values(lease_owner=owner, lease_until=now + lease)
            .returning(R)
        )
        with self._engine.begin() as conn:
            return [to_integration(row) for row in conn.execute(statement)]

    def get(self, integration_id: UUID) -> Integration | None:
        return load_integration(self._engine, integration_id)

    def write(
        self,
        integration_id: UUID,
        expected_version: int,
        owner: str,
        values: dict[str, Any],
        events: list[AuditEvent],
        now: datetime,
        *,
        bump: bool,
    ) -> Integration | None:
        """Apply `values` if the fencing counter is still `expected_version` (bumping it for new credentials) and
        release this owner's lease; None when fenced out. Audit events land in the same transaction."""
        assignments = {**values, "updated_at": now}
        if bump:
            assignments["credential_version"] = expected_version + 1
        statement = (
            update(R)
            .where(R.id == integration_id, R.credential_version == expected_version)
            .values(**assignments, lease_owner=None, lease_until=None)
            .returning(R)
        )
        with self._engine.begin() as conn:
            row = conn.execute(statement).one_or_none()
            if row is None:
                self._release(conn, integration_id, owner)
                return None
            if events:
                conn.execute(insert(AuditEventRow), [{**asdict(e), "occurred_at": now} for e in events])
        return to_integration(row)

    def release(self, integration_id: UUID, owner: str) -> None:
        with self._engine.begin() as conn:
            self._release(conn, integration_id, owner)

    @staticmethod
    def _release(conn: Any, integration_id: UUID, owner: str) -> None:
        conn.execute(
            update(R)
            .where(and_(R.id == integration_id, R.lease_owner == owner))
            .values(lease_owner=None, lease_until=None)
        )

    def touch(self, integration: Integration, now: datetime, every: timedelta, event: AuditEvent) -> None:
        """Record a read: the audit event always; `last_used_at` at most once per `every`, judged first on the row
        just read (so the hot path usually makes one INSERT) and again in SQL (concurrent readers)."""
        stale = integration.last_used_at is None or integration.last_used_at < now - every
        with self._engine.begin() as conn:
            if stale:
                conn.execute(
                    update(R)
                    .where(R.id == integration.id, or_(R.last_used_at.is_(None), R.last_used_at < now - every))
                    .values(last_used_at=now)
                )
            conn.execute(insert(AuditEventRow), [{**asdict(event), "occurred_at": now}])
