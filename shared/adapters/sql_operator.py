"""Operators' reads: the audit trail newest first, and integrations across entities (PostgreSQL and SQLite)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Engine, select

from shared.adapters.orm import AuditEventRow, IntegrationRow
from shared.adapters.sql_repositories import to_integration
from shared.domain.models import AuditEvent, AuditQuery, AuditRecord, Integration, IntegrationSearch


def _record(row: Any) -> AuditRecord:
    event = AuditEvent(
        actor=row.actor, action=row.action, outcome=row.outcome, entity_id=row.entity_id,
        integration_id=row.integration_id, provider=row.provider, detail=dict(row.detail or {}),
    )  # fmt: skip
    return AuditRecord(int(row.id), row.occurred_at, event)


class SqlAuditTrail:
    def __init__(self, engine: Engine) -> None:
        self._engine = engine

    def query(self, query: AuditQuery) -> list[AuditRecord]:
        # Newest first by id (ids ascend with time): served by the primary key, or by the integration/entity index.
        statement = select(AuditEventRow)
        if query.integration_id is not None:
            statement = statement.where(AuditEventRow.integration_id == query.integration_id)
        if query.entity_id is not None:
            statement = statement.where(AuditEventRow.entity_id == query.entity_id)
        if query.action is not None:
            statement = statement.where(AuditEventRow.action == query.action)
        if query.since is not None:
            statement = statement.where(AuditEventRow.occurred_at >= query.since)
        if query.before_id is not None:
            statement = statement.where(AuditEventRow.id < query.before_id)
        statement = statement.order_by(AuditEventRow.id.desc()).limit(query.limit)
        with self._engine.connect() as conn:
            return [_record(row) for row in conn.execute(statement)]


class SqlIntegrationFinder:
    def __init__(self, engine: Engine) -> None:
        self._engine = engine

    def search(self, search: IntegrationSearch) -> list[Integration]:
        statement = select(IntegrationRow)
        if search.entity_id is not None:
            statement = statement.where(IntegrationRow.entity_id == search.entity_id)
        if search.provider is not None:
            statement = statement.where(IntegrationRow.provider == search.provider)
        if search.status is not None:
            statement = statement.where(IntegrationRow.status == search.status)
        if search.expiring_before is not None:
            statement = statement.where(
                IntegrationRow.token_expires_at.is_not(None), IntegrationRow.token_expires_at <= search.expiring_before
            )
        statement = statement.order_by(IntegrationRow.created_at, IntegrationRow.id).limit(search.limit)
        with self._engine.connect() as conn:
            return [to_integration(row) for row in conn.execute(statement)]
