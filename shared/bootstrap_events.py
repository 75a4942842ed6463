"""The composition root's events part (a base of shared.bootstrap.Container): the outbox store, the sinks, the
dispatcher and the operator API, each built lazily, once per instance."""

from __future__ import annotations

from datetime import timedelta
from functools import cached_property
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import requests
    from sqlalchemy import Engine

    from shared.config import Settings
    from shared.domain.event_ports import EventSink, EventStore
    from shared.domain.ports import AuditLog, Clock
    from shared.services.dispatcher import Dispatcher
    from shared.services.event_operations import EventOperations


class EventComponents:
    settings: Settings

    if TYPE_CHECKING:  # what the Container provides

        @property
        def engine(self) -> Engine: ...

        @property
        def clock(self) -> Clock: ...

        @property
        def audit(self) -> AuditLog: ...

        @property
        def egress(self) -> requests.Session: ...

    @cached_property
    def event_store(self) -> EventStore:
        from shared.adapters.sql_events import SqlEventStore

        return SqlEventStore(self.engine)

    @cached_property
    def event_sinks(self) -> list[EventSink]:
        """WEBHOOK_URLS (through the egress session) and PUBSUB_TOPIC; the Pub/Sub client is built on first use."""
        s = self.settings
        sinks: list[EventSink] = []
        if s.webhook_urls:  # only then `requests` and the egress session (a cold start without webhooks skips them)
            from shared.adapters.webhook_sink import WebhookSink

            sinks += [WebhookSink(url, s.webhook_keys, self.egress) for url in s.webhook_urls]
        if s.pubsub_topic:
            from shared.adapters.pubsub_sink import PubSubSink

            sinks.append(PubSubSink(s.pubsub_topic))
        return sinks

    @cached_property
    def dispatcher(self) -> Dispatcher:
        from shared.lifecycle import stopping
        from shared.services.dispatcher import Dispatcher

        window = timedelta(hours=self.settings.events_retry_hours)
        return Dispatcher(self.event_store, self.event_sinks, self.clock, window, stopping=stopping)

    @cached_property
    def event_operations(self) -> EventOperations:
        from shared.adapters.sql_event_admin import SqlEventAdmin
        from shared.services.event_operations import EventOperations

        window = timedelta(hours=self.settings.events_retry_hours)
        return EventOperations(SqlEventAdmin(self.engine), self.audit, self.clock, window)
