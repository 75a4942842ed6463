"""SSRF: in production a webhook's host is resolved and every address checked on each delivery; a name that
resolves to a private, link-local, loopback or metadata address is never connected to."""

from __future__ import annotations

from datetime import timedelta

import pytest

from shared.adapters.db import engine_for_url
from shared.adapters.egress import egress_session
from shared.adapters.sql_events import SqlEventStore
from shared.adapters.webhook_sink import WebhookSink
from shared.domain.clock import FixedClock
from shared.domain.egress import EgressPolicy
from shared.domain.webhooks import parse_secret
from shared.services.dispatcher import Dispatcher
from tests.support.events import SECRET, attempts, connect_row, deliveries
from tests.support.webhook_receiver import running_receiver

ADDRESSES = {
    "private.hooks.test": "10.20.30.40",
    "link-local.hooks.test": "169.254.10.1",
    "metadata.hooks.test": "169.254.169.254",
    "loopback.hooks.test": "127.0.0.1",
    "mapped.hooks.test": "::ffff:192.168.0.7",
}


@pytest.mark.parametrize("host", list(ADDRESSES))
def test_a_webhook_host_resolving_to_a_refused_address_is_never_contacted(sqlite_url, host):
    engine = engine_for_url(sqlite_url)
    clock = FixedClock()
    with running_receiver(SECRET) as receiver:
        port = receiver.url.split(":")[2].split("/")[0]
        session = egress_session(EgressPolicy(), resolver=lambda name, _port: [ADDRESSES[name]])
        sink = WebhookSink(f"http://{host}:{port}/hooks", [parse_secret(SECRET)], session)
        connect_row(engine, clock)
        counts = Dispatcher(SqlEventStore(engine), [sink], clock, timedelta(hours=24)).run(5)
    assert receiver.received == [], "nothing reached the (loopback) receiver"
    assert counts["retried"] == 1
    (attempt,) = attempts(engine)
    assert (attempt.outcome, attempt.error, attempt.http_status) == ("failed", "egress_refused", None)
    assert deliveries(engine)[0].status == "pending", "an egress refusal is retried like a network error"
    engine.dispose()


def test_the_same_session_in_development_delivers_to_loopback(sqlite_url):
    engine = engine_for_url(sqlite_url)
    clock = FixedClock()
    with running_receiver(SECRET) as receiver:
        sink = WebhookSink(receiver.url, [parse_secret(SECRET)], egress_session(None))
        connect_row(engine, clock)
        Dispatcher(SqlEventStore(engine), [sink], clock, timedelta(hours=24)).run(5)
    assert len(receiver.accepted()) == 1
    engine.dispose()
