"""Pub/Sub against the real emulator: events arrive on a subscription with their attributes, in commit order per
integration (ordering key), also when a publish failed and was retried."""

from __future__ import annotations

import json
import time
import uuid
from datetime import timedelta
from typing import Any

import pytest

from shared.adapters.pubsub_sink import PubSubSink
from shared.adapters.sql_events import SqlEventStore
from shared.adapters.sql_integrations import SqlIntegrationAdmin
from shared.domain.clock import FixedClock
from shared.domain.events import UPDATED, EventSpec
from shared.services.dispatcher import Dispatcher
from tests.support.events import connect_row, deliveries, events

PROJECT = "events-test"


@pytest.fixture
def pubsub(pubsub_emulator, monkeypatch):
    from google.cloud import pubsub_v1

    monkeypatch.setenv("PUBSUB_EMULATOR_HOST", pubsub_emulator)
    publisher, subscriber = pubsub_v1.PublisherClient(), pubsub_v1.SubscriberClient()
    yield publisher, subscriber
    subscriber.close()


def unique(name: str) -> str:
    return f"{name}-{uuid.uuid4().hex[:8]}"  # one emulator serves the whole session


def create(pubsub, name: str) -> tuple[str, str]:
    publisher, subscriber = pubsub
    topic, subscription = f"projects/{PROJECT}/topics/{name}", f"projects/{PROJECT}/subscriptions/{name}-sub"
    publisher.create_topic(name=topic)
    subscriber.create_subscription(request={"name": subscription, "topic": topic, "enable_message_ordering": True})
    return topic, subscription


def pull(subscriber, subscription: str, count: int) -> list[Any]:
    received: list[Any] = []
    deadline = time.monotonic() + 30
    while len(received) < count and time.monotonic() < deadline:
        reply = subscriber.pull(request={"subscription": subscription, "max_messages": 100}, timeout=5)
        if reply.received_messages:
            received += [m.message for m in reply.received_messages]
            subscriber.acknowledge(
                request={"subscription": subscription, "ack_ids": [m.ack_id for m in reply.received_messages]}
            )
    return received


def changes(engine, clock, integrations: int, updates: int) -> dict[str, list[str]]:
    """Interleaved state changes of several integrations; each integration's event ids in commit order."""
    rows = [connect_row(engine, clock, entity=f"entity-{n}") for n in range(integrations)]
    admin = SqlIntegrationAdmin(engine, clock)
    for number in range(updates):
        for row in rows:
            admin.update(row.id, row.entity_id, {"label": f"v{number}"}, [EventSpec(UPDATED, None, {"n": number})])
    order: dict[str, list[str]] = {}
    for event in events(engine):
        order.setdefault(str(event.integration_id), []).append(str(event.id))
    return order


def test_events_arrive_with_their_attributes_in_order_per_integration(db_engine, pubsub):
    topic, subscription = create(pubsub, unique("ordered"))
    clock = FixedClock()
    expected = changes(db_engine, clock, integrations=3, updates=6)
    counts = Dispatcher(SqlEventStore(db_engine), [PubSubSink(topic)], clock, timedelta(hours=24)).run(30)
    assert counts["delivered"] == 21
    messages = pull(pubsub[1], subscription, 21)
    assert len(messages) == 21
    seen: dict[str, list[str]] = {}
    for message in messages:
        body = json.loads(message.data)
        attributes = dict(message.attributes)
        assert attributes == {
            "type": body["type"], "event_id": body["data"]["event_id"], "entity_id": body["data"]["entity_id"],
            "integration_id": body["data"]["integration_id"], "provider": "demo",
        }  # fmt: skip
        assert message.ordering_key == attributes["integration_id"]
        seen.setdefault(message.ordering_key, []).append(attributes["event_id"])
    assert seen == expected, "each integration's events in commit order"


def test_a_failed_publish_is_retried_and_order_still_holds(db_engine, pubsub):
    clock = FixedClock()
    expected = changes(db_engine, clock, integrations=2, updates=3)
    name = unique("late")
    topic = f"projects/{PROJECT}/topics/{name}"
    dispatcher = Dispatcher(SqlEventStore(db_engine), [PubSubSink(topic)], clock, timedelta(hours=24))
    first = dispatcher.run(30)  # the topic does not exist yet: every publish fails
    assert first["delivered"] == 0
    assert first["retried"] >= 1
    assert {row.status for row in deliveries(db_engine)} == {"pending"}
    _, subscription = create(pubsub, name)
    clock.advance(hours=2)
    assert dispatcher.run(30)["delivered"] == 8
    seen: dict[str, list[str]] = {}
    for message in pull(pubsub[1], subscription, 8):
        seen.setdefault(message.ordering_key, []).append(message.attributes["event_id"])
    assert seen == expected
