"""SQL adapters of the connect experience: connect sessions (by token hash) and connect flows' outcomes."""

from __future__ import annotations

import dataclasses
from uuid import UUID

from sqlalchemy import Engine, insert, select, update

from shared.adapters.orm import ConnectSessionRow, OAuthStateRow
from shared.adapters.sql_repositories import STATE_FIELDS
from shared.domain.models import ConnectSession, OAuthState

SESSION_FIELDS = tuple(f.name for f in dataclasses.fields(ConnectSession))


class SqlConnectSessionRepository:
    def __init__(self, engine: Engine) -> None:
        self._engine = engine

    def add(self, session: ConnectSession) -> None:
        with self._engine.begin() as conn:
            conn.execute(insert(ConnectSessionRow).values(**dataclasses.asdict(session)))

    def find(self, token_hash: str) -> ConnectSession | None:
        query = select(ConnectSessionRow).where(ConnectSessionRow.token_hash == token_hash)
        with self._engine.connect() as conn:
            row = conn.execute(query).one_or_none()
        return ConnectSession(**{name: getattr(row, name) for name in SESSION_FIELDS}) if row else None


class SqlFlowRecords:
    def __init__(self, engine: Engine) -> None:
        self._engine = engine

    def flow(self, flow_id: UUID, entity_id: str) -> OAuthState | None:
        query = select(OAuthStateRow).where(OAuthStateRow.id == flow_id, OAuthStateRow.entity_id == entity_id)
        with self._engine.connect() as conn:
            row = conn.execute(query).one_or_none()
        return OAuthState(**{name: getattr(row, name) for name in STATE_FIELDS}) if row else None

    def record_outcome(self, flow_id: UUID, outcome: str, integration_id: UUID | None, error: str | None) -> None:
        statement = (
            update(OAuthStateRow)
            .where(OAuthStateRow.id == flow_id, OAuthStateRow.outcome.is_(None))
            .values(outcome=outcome, outcome_integration_id=integration_id, outcome_error=error)
        )
        with self._engine.begin() as conn:
            conn.execute(statement)
