"""The events operator API's use cases: list an entity's or an integration's events, read one with its attempts,
replay, and see each destination's health. Callers are internal (INTERNAL_API_KEYS / TOKEN_INVOKERS)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from uuid import UUID

from shared.domain.delivery import AttemptRecord, DestinationHealth, EventRecord
from shared.domain.event_ports import EventAdmin, EventSelection
from shared.domain.models import AuditEvent
from shared.domain.ports import AuditLog, Clock
from shared.errors import NotFound, ValidationFailed

MAX_REPLAY = 1000  # events per range replay: a larger range is split by the caller (since/until)


@dataclass(frozen=True)
class EventPage:
    items: list[EventRecord]
    next_page_token: str | None


@dataclass(frozen=True)
class Replay:
    events: int
    deliveries: int


@dataclass
class EventOperations:
    admin: EventAdmin
    audit: AuditLog
    clock: Clock
    window: timedelta  # EVENTS_RETRY_HOURS: a replayed delivery is retried this long again

    def page(self, selection: EventSelection, page_size: int, page_token: str | None) -> EventPage:
        """Events in commit order; `next_page_token` continues after the last one (None: no more)."""
        after = int(page_token) if page_token else None
        rows = self.admin.page(selection, after, page_size + 1)
        items = rows[:page_size]
        return EventPage(items, str(items[-1].event.seq) if len(rows) > page_size else None)

    def get(self, event_id: UUID) -> tuple[EventRecord, list[AttemptRecord]]:
        found = self.admin.get(event_id)
        if found is None:
            raise NotFound("event not found", code="event_not_found")
        return found

    def replay(self, selection: EventSelection, caller: str) -> Replay:
        """Deliver the selected events again to every destination they were delivered (or dead) to, due now."""
        if not selection.event_ids:
            matched = self.admin.count(selection)
            if matched > MAX_REPLAY:
                raise ValidationFailed(
                    f"the range holds {matched} events; replay at most {MAX_REPLAY} at once (narrow since/until)",
                    code="replay_too_large",
                )
        events, deliveries = self.admin.replay(selection, self.window, self.clock.now())
        detail = {"events": events, "deliveries": deliveries, "by_id": len(selection.event_ids)}
        self.audit.record(AuditEvent(caller, "events.replay", "success", None, selection.integration_id, None, detail))
        return Replay(events, deliveries)

    def destinations(self) -> list[DestinationHealth]:
        return self.admin.destinations()
