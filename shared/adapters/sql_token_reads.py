"""The token hot path through SQLAlchemy (SQLite, the embedded default): the read and, when the token is handed out
as it is, its audit event and the `last_used_at` stamp, in one transaction (PostgreSQL uses PgTokenReads)."""

from __future__ import annotations

from dataclasses import asdict
from datetime import datetime, timedelta
from uuid import UUID

from sqlalchemy import Engine, insert, or_, select, update
from sqlalchemy.exc import SQLAlchemyError

from shared.adapters.orm import AuditEventRow
from shared.adapters.orm import IntegrationRow as R
from shared.adapters.sql_repositories import to_integration
from shared.domain.models import AuditEvent, Integration
from shared.domain.refresh import servable_as_is
from shared.errors import DependencyUnavailable


class SqlTokenReads:
    def __init__(self, engine: Engine) -> None:
        self._engine = engine

    def read_for_use(
        self, integration_id: UUID, actor: str, now: datetime, fresh_until: datetime, every: timedelta
    ) -> tuple[Integration | None, bool]:
        try:
            with self._engine.begin() as conn:
                row = conn.execute(select(R).where(R.id == integration_id)).one_or_none()
                if row is None:
                    return None, False
                integration = to_integration(row)
                if not servable_as_is(integration, fresh_until):
                    return integration, False
                if integration.last_used_at is None or integration.last_used_at < now - every:
                    conn.execute(
                        update(R)
                        .where(R.id == integration.id, or_(R.last_used_at.is_(None), R.last_used_at < now - every))
                        .values(last_used_at=now)
                    )
                event = AuditEvent(actor, "token.read", "success", integration.entity_id, integration.id,
                                   integration.provider)  # fmt: skip
                conn.execute(insert(AuditEventRow).values(**asdict(event), occurred_at=now))
        except SQLAlchemyError as exc:
            raise DependencyUnavailable(
                f"the database refused or is unreachable ({type(exc).__name__})", code="database_unavailable"
            ) from None
        return integration, True
