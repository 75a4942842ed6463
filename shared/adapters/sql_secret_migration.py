"""The rows `broker migrate-secrets` walks, its progress (audit events written with each switch), and the switch."""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import asdict
from datetime import datetime
from typing import Any
from uuid import UUID

from sqlalchemy import Engine, func, insert, select, update

from shared.adapters.orm import AuditEventRow
from shared.adapters.orm import IntegrationRow as R
from shared.adapters.sql_repositories import to_integration
from shared.domain.models import AuditEvent, Integration

MIGRATED = "secret.migrated"


class SqlSecretMigration:
    def __init__(self, engine: Engine) -> None:
        self._engine = engine

    def count(self) -> int:
        with self._engine.connect() as conn:
            return int(conn.execute(select(func.count()).where(R.secret_ref.is_not(None))).scalar() or 0)

    def rows(self, after: UUID | None, limit: int) -> list[Integration]:
        """Integrations with a master secret, in id order after `after`."""
        statement = select(R).where(R.secret_ref.is_not(None))
        if after is not None:
            statement = statement.where(R.id > after)
        with self._engine.connect() as conn:
            return [to_integration(row) for row in conn.execute(statement.order_by(R.id).limit(limit))]

    def mark_unmarked(self, backend: str) -> int:
        """Record `backend` (the configured SECRET_BACKEND, which unmarked rows mean) on every row with a secret
        and no backend, so that changing SECRET_BACKEND afterwards re-points none of them; how many."""
        statement = (
            update(R).where(R.secret_ref.is_not(None), R.secret_backend.is_(None)).values(secret_backend=backend)
        )
        with self._engine.begin() as conn:
            return int(conn.execute(statement).rowcount or 0)

    def last_moves(self, ids: Collection[UUID]) -> dict[UUID, tuple[str, str]]:
        """Each integration's last move, (from, to) of its newest secret.migrated event."""
        newest = (
            select(func.max(AuditEventRow.id))
            .where(AuditEventRow.action == MIGRATED, AuditEventRow.integration_id.in_(list(ids)))
            .group_by(AuditEventRow.integration_id)
        )
        statement = select(AuditEventRow.integration_id, AuditEventRow.detail).where(AuditEventRow.id.in_(newest))
        with self._engine.connect() as conn:
            found = [(row.integration_id, row.detail or {}) for row in conn.execute(statement)]
        return {integration_id: (str(d.get("from")), str(d.get("to"))) for integration_id, d in found}

    def switch(
        self, integration: Integration, owner: str, backend: str, version: int, event: AuditEvent, now: datetime
    ) -> bool:
        """Point the row at `version` of `backend`, clear a pending copy and the lease, bump the fencing counter
        and write `event`, in one transaction: only if nothing changed since `integration` was claimed by
        `owner`."""
        statement = (
            update(R)
            .where(
                R.id == integration.id, R.credential_version == integration.credential_version, R.lease_owner == owner
            )
            .values(
                secret_backend=backend,
                secret_version=version,
                pending_secret_ciphertext=None,
                pending_secret_key_version=None,
                credential_version=integration.credential_version + 1,
                lease_owner=None,
                lease_until=None,
                updated_at=now,
            )
        )
        with self._engine.begin() as conn:
            if conn.execute(statement).rowcount != 1:
                return False
            values: dict[str, Any] = {**asdict(event), "occurred_at": now}
            conn.execute(insert(AuditEventRow).values(**values))
        return True
