"""Events, pure: what a state change tells the product, and the body every sink delivers.

A use case says what happened (`EventSpec`: a type, a reason, a few facts); the adapter that writes the state
change completes it from the row exactly as that transaction wrote it (`materialise`), so the integration's ids,
provider and status in an event are the committed ones, and writes the event in the same transaction. Payloads
hold ids, provider, entity, status, reason and times: never a secret, a token, a label or an account's email.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from uuid import UUID

from uuid6 import uuid7

from shared.domain.models import Integration, Status

CONNECTED = "integration.connected"
RECONNECTED = "integration.reconnected"
UPDATED = "integration.updated"
REFRESH_FAILED = "integration.refresh_failed"
RECOVERED = "integration.recovered"
REAUTH_REQUIRED = "integration.reauth_required"
DELETED = "integration.deleted"
SYNC_REQUESTED = "integration.sync_requested"
EXPIRING_SOON = "integration.expiring_soon"  # the refresh token ends soon (the refresh job, once per window)
EVENT_TYPES = (
    CONNECTED, RECONNECTED, UPDATED, REFRESH_FAILED, RECOVERED, REAUTH_REQUIRED, DELETED, SYNC_REQUESTED,
    EXPIRING_SOON,
)  # fmt: skip


def new_event_id() -> UUID:
    """A UUIDv7 (RFC 9562): unique, and sortable by the millisecond it was made."""
    return UUID(int=uuid7().int)


@dataclass(frozen=True)
class EventSpec:
    """What happened to an integration; `facts` are extra, secret-free fields of the event's `data`."""

    type: str
    reason: str | None = None
    facts: Mapping[str, Any] = field(default_factory=dict)
    id: UUID = field(default_factory=new_event_id)


@dataclass(frozen=True)
class OutboxEvent:
    """An event as the outbox keeps it. `seq` orders events as they committed (per integration: exactly)."""

    id: UUID
    type: str
    occurred_at: datetime
    integration_id: UUID
    entity_id: str
    provider: str
    data: dict[str, Any]
    seq: int = 0


def materialise(spec: EventSpec, integration: Integration, now: datetime) -> OutboxEvent:
    data: dict[str, Any] = {
        "event_id": str(spec.id),
        "integration_id": str(integration.id),
        "entity_id": integration.entity_id,
        "provider": integration.provider,
        "status": integration.status.value,
        "credential_type": integration.credential_type.value,
    }
    if spec.reason is not None:
        data["reason"] = spec.reason
    data.update({key: value for key, value in spec.facts.items() if key not in data})
    return OutboxEvent(spec.id, spec.type, now, integration.id, integration.entity_id, integration.provider, data)


def body(event: OutboxEvent) -> bytes:
    """The body every sink delivers: `{"type", "timestamp", "data"}` (the Standard Webhooks shape)."""
    document = {"type": event.type, "timestamp": utc_timestamp(event.occurred_at), "data": event.data}
    return json.dumps(document, separators=(",", ":"), ensure_ascii=False).encode()


def utc_timestamp(moment: datetime) -> str:
    """ISO 8601 in UTC with a `Z`, to the millisecond (Standard Webhooks' `timestamp`)."""
    return moment.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def refresh_transitions(before: Integration, after: Integration) -> list[EventSpec]:
    """The events a refresh's write makes, from the row the worker claimed (`before`) and the row as written.

    One event per transition, never per attempt: the first failure after a success is `refresh_failed` (later
    ones are not events), a success after failures is `recovered`, and the write that moved the integration to
    `reauth_required` is that event (a user's `inactive` is left alone by the refresh engine: no event then).
    """
    if after.status == Status.REAUTH_REQUIRED and before.status != Status.REAUTH_REQUIRED:
        return [EventSpec(REAUTH_REQUIRED, after.last_refresh_error)]
    if after.consecutive_failures > 0 and before.consecutive_failures == 0:
        facts = {"next_attempt_at": utc_timestamp(after.next_attempt_after)} if after.next_attempt_after else {}
        return [EventSpec(REFRESH_FAILED, after.last_refresh_error, facts)]
    if after.consecutive_failures == 0 and before.consecutive_failures > 0:
        return [EventSpec(RECOVERED, None, {"failures": before.consecutive_failures})]
    return []


def expiring_soon(integration: Integration) -> EventSpec:
    """The refresh token ends at `refresh_token_expires_at` and refreshing cannot move it: connect again before."""
    end = integration.refresh_token_expires_at
    facts = {"refresh_token_expires_at": utc_timestamp(end)} if end is not None else {}
    return EventSpec(EXPIRING_SOON, "refresh_token_expiring", facts)
