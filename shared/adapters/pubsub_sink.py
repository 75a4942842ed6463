"""Pub/Sub delivery: one topic, the event body as the message, attributes to filter on, ordered per integration.

Each message's ordering key is its integration id, so a subscription with message ordering enabled receives one
integration's events in the order they committed (the dispatcher publishes them in that order, one publisher at
a time, and none after a failure). The client is google-cloud-pubsub, imported and built on first use (cold
starts pay for neither); it honours `PUBSUB_EMULATOR_HOST`, as every Google client does.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Sequence
from typing import Any

from shared.domain.delivery import Destination, SendResult
from shared.domain.events import OutboxEvent, body

log = logging.getLogger("broker.events")

PUBLISH_TIMEOUT = 10.0  # seconds for one publish, the client library's retries included


def attributes(event: OutboxEvent) -> dict[str, str]:
    return {
        "type": event.type,
        "event_id": str(event.id),
        "integration_id": str(event.integration_id),
        "entity_id": event.entity_id,
        "provider": event.provider,
    }


class PubSubSink:
    ordered = True

    def __init__(self, topic: str, client: Any = None) -> None:
        self.destination = Destination("pubsub", "pubsub", topic)
        self._topic = topic
        self._client = client
        self._lock = threading.Lock()

    def publisher(self) -> Any:
        with self._lock:
            if self._client is None:
                from google.cloud.pubsub_v1 import PublisherClient, types

                options = types.PublisherOptions(enable_message_ordering=True)
                self._client = PublisherClient(publisher_options=options)
            return self._client

    def deliver(self, events: Sequence[OutboxEvent]) -> list[SendResult]:
        client = self.publisher()
        started = time.monotonic()
        pending: list[Any] = []
        for event in events:
            try:
                pending.append(
                    client.publish(
                        self._topic, body(event), ordering_key=str(event.integration_id), timeout=PUBLISH_TIMEOUT,
                        **attributes(event),
                    )
                )  # fmt: skip
            except Exception as exc:  # noqa: BLE001 - e.g. the key is paused after an earlier failure
                pending.append(exc)
        results: list[SendResult] = []
        paused: set[str] = set()
        for event, future in zip(events, pending, strict=True):
            try:
                if isinstance(future, Exception):
                    raise future
                future.result(timeout=PUBLISH_TIMEOUT * 2)
                results.append(SendResult("delivered", duration_ms=_ms(started)))
            except Exception as exc:  # noqa: BLE001 - every failure is retried after a backoff
                paused.add(str(event.integration_id))
                results.append(SendResult("retry", error=f"pubsub:{type(exc).__name__}"[:64], duration_ms=_ms(started)))
        for key in paused:  # the client stops a key after a failure until told to go on
            try:
                client.resume_publish(self._topic, key)
            except Exception as exc:  # noqa: BLE001 - the next publish of that key fails again and is retried
                log.warning("could not resume publishing for %s: %s", key, type(exc).__name__)
        return results


def _ms(started: float) -> int:
    return int((time.monotonic() - started) * 1000)
