"""Helpers for the events tests: integrations written through the real repositories, outbox rows read back."""

from __future__ import annotations

import base64
import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import Engine, select

from shared.adapters.orm_events import EventAttemptRow, EventDeliveryRow, EventRow
from shared.adapters.sql_repositories import SqlIntegrationRepository
from shared.domain.events import CONNECTED, EventSpec
from shared.domain.models import CredentialType, Integration, Status
from shared.domain.ports import Clock

SECRET = "whsec_" + base64.b64encode(b"k" * 32).decode()
ROTATED = "whsec_" + base64.b64encode(b"n" * 32).decode()


def connect_row(engine: Engine, clock: Clock, entity: str = "entity-1", provider: str = "demo") -> Integration:
    """An integration added with its `integration.connected` event, as the connect flow writes it."""
    now = clock.now()
    integration = Integration(
        id=uuid.uuid4(), entity_id=entity, provider=provider, credential_type=CredentialType.OAUTH2,
        status=Status.ACTIVE, created_at=now, updated_at=now, account_subject=f"acct-{uuid.uuid4().hex[:8]}",
    )  # fmt: skip
    SqlIntegrationRepository(engine, clock).add(integration, [EventSpec(CONNECTED, None, {"refreshable": True})])
    return integration


def events(engine: Engine, integration_id: uuid.UUID | None = None) -> list[Any]:
    query = select(EventRow).order_by(EventRow.seq)
    if integration_id is not None:
        query = query.where(EventRow.integration_id == integration_id)
    with engine.connect() as conn:
        return list(conn.execute(query))


def event_types(engine: Engine, integration_id: uuid.UUID | None = None) -> list[str]:
    return [row.type for row in events(engine, integration_id)]


def deliveries(engine: Engine) -> list[Any]:
    with engine.connect() as conn:
        return list(conn.execute(select(EventDeliveryRow).order_by(EventDeliveryRow.event_seq)))


def attempts(engine: Engine) -> list[Any]:
    with engine.connect() as conn:
        return list(conn.execute(select(EventAttemptRow).order_by(EventAttemptRow.id)))


def next_due(engine: Engine) -> datetime | None:
    pending = [row.next_attempt_at for row in deliveries(engine) if row.status == "pending"]
    return min(pending) if pending else None
