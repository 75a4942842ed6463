"""The integrations API's SQL: entity-scoped listing with cursor pagination, metadata updates, removal."""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from datetime import datetime
from typing import Any
from uuid import UUID

from sqlalchemy import Engine, or_, select, tuple_

from shared.adapters.orm import IntegrationRow
from shared.adapters.sql_repositories import to_integration, write_records
from shared.adapters.sql_returning import delete_returning, update_returning
from shared.domain.models import Integration, Status
from shared.domain.pagination import Cursor
from shared.domain.ports import Clock, Record

# What the API may change; the credential and refresh columns belong to the connect flow and the refresh engine.
UPDATABLE = frozenset({"label", "config", "status", "last_sync_at", "lease_owner", "lease_until"})


class SqlIntegrationAdmin:
    def __init__(self, engine: Engine, clock: Clock) -> None:
        self._engine = engine
        self._clock = clock

    def list_page(
        self, entity_id: str, *, provider: str | None, status: str | None, after: Cursor | None, limit: int
    ) -> list[Integration]:
        # Served by ix_entity_integrations_entity_list (entity_id, created_at, id): a range scan from the cursor.
        query = select(IntegrationRow).where(IntegrationRow.entity_id == entity_id)
        if provider is not None:
            query = query.where(IntegrationRow.provider == provider)
        if status is not None:
            query = query.where(IntegrationRow.status == status)
        if after is not None:
            query = query.where(tuple_(IntegrationRow.created_at, IntegrationRow.id) > (after.created_at, after.id))
        query = query.order_by(IntegrationRow.created_at, IntegrationRow.id).limit(limit)
        with self._engine.connect() as conn:
            return [to_integration(row) for row in conn.execute(query)]

    def update(
        self,
        integration_id: UUID,
        entity_id: str,
        values: Mapping[str, Any],
        events: Sequence[Record] = (),
        *,
        when_status: Collection[str] | None = None,
        when_version: int | None = None,
        fence: bool = False,
    ) -> Integration | None:
        unknown = set(values) - UPDATABLE
        if unknown:
            raise ValueError(f"not an API-updatable column: {', '.join(sorted(unknown))}")
        now = self._clock.now()
        changes: dict[str, Any] = {**values, "updated_at": now}
        if fence:
            changes["credential_version"] = IntegrationRow.credential_version + 1
        where = [IntegrationRow.id == integration_id, IntegrationRow.entity_id == entity_id]
        if when_status is not None:
            where.append(IntegrationRow.status.in_(list(when_status)))
        if when_version is not None:
            where.append(IntegrationRow.credential_version == when_version)
        with self._engine.begin() as conn:
            rows = update_returning(conn, IntegrationRow, where, changes)
            if not rows:
                return None
            stored = to_integration(rows[0])
            write_records(conn, events, stored, now)
        return stored

    def record_sync(
        self, integration_id: UUID, entity_id: str, at: datetime, *, after: datetime, events: Sequence[Record]
    ) -> Integration | None:
        # The rate limit is in the WHERE clause: of concurrent requests, the first UPDATE to take the row lock
        # wins; the others re-evaluate it against the new last_sync_at (PostgreSQL; MySQL's locking read waits
        # for the lock and reads the committed row) or wait their turn (SQLite).
        where = [
            IntegrationRow.id == integration_id,
            IntegrationRow.entity_id == entity_id,
            IntegrationRow.status == Status.ACTIVE.value,
            or_(IntegrationRow.last_sync_at.is_(None), IntegrationRow.last_sync_at <= after),
        ]
        with self._engine.begin() as conn:
            rows = update_returning(conn, IntegrationRow, where, {"last_sync_at": at, "updated_at": at})
            if not rows:
                return None
            stored = to_integration(rows[0])
            write_records(conn, events, stored, at)
        return stored

    def remove(self, integration_id: UUID, entity_id: str, events: Sequence[Record] = ()) -> bool:
        where = [IntegrationRow.id == integration_id, IntegrationRow.entity_id == entity_id]
        with self._engine.begin() as conn:
            rows = delete_returning(conn, IntegrationRow, where)
            if rows:
                write_records(conn, events, to_integration(rows[0]), self._clock.now())
        return bool(rows)
