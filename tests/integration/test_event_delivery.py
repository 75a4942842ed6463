"""Webhook delivery over real HTTP on both dialects: retries on 5xx and 429 (honouring Retry-After), signatures an
independent implementation verifies, a receiver down for the whole retry window, and dedupe by webhook-id."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import pytest
import requests

from shared.adapters.sql_event_admin import SqlEventAdmin
from shared.adapters.sql_events import SqlEventStore
from shared.adapters.webhook_sink import WebhookSink
from shared.domain.clock import FixedClock
from shared.domain.event_ports import EventSelection
from shared.domain.webhooks import parse_secret
from shared.services.dispatcher import Dispatcher
from tests.support.events import ROTATED, SECRET, attempts, connect_row, deliveries, events
from tests.support.webhook_receiver import running_receiver

WINDOW = timedelta(hours=24)


@pytest.fixture
def clock() -> FixedClock:
    return FixedClock(datetime(2026, 6, 1, 12, tzinfo=UTC))


def dispatcher(engine, clock, *urls: str, secrets: tuple[str, ...] = (SECRET,)) -> Dispatcher:
    keys = [parse_secret(s) for s in secrets]
    sinks = [WebhookSink(url, keys, requests.Session()) for url in urls]
    return Dispatcher(SqlEventStore(engine), sinks, clock, WINDOW)


def next_wake(engine) -> datetime | None:
    """When a dispatcher would next send something: a pending delivery's due time, held by an open breaker until it
    half-opens, except a last chance (due at the end of its window), which is sent whatever the breaker says."""
    pending = [row for row in deliveries(engine) if row.status == "pending"]
    if not pending:
        return None
    (state,) = SqlEventStore(engine).states([pending[0].destination])
    held = state.open_until or datetime.min.replace(tzinfo=UTC)
    wakes: list[datetime] = [
        row.next_attempt_at if row.next_attempt_at >= row.give_up_at else max(row.next_attempt_at, held)
        for row in pending
    ]
    return min(wakes)


def test_500_then_429_with_retry_after_then_200_is_delivered_once_with_every_attempt_recorded(db_engine, clock):
    with running_receiver(SECRET) as receiver:
        integration = connect_row(db_engine, clock)
        receiver.answer(500, (429, {"Retry-After": "120"}))
        run = dispatcher(db_engine, clock, receiver.url).run

        assert run(5)["retried"] == 1  # 500
        (first,) = deliveries(db_engine)
        assert first.status == "pending"
        assert timedelta(seconds=15) <= first.next_attempt_at - clock.now() <= timedelta(seconds=30)

        clock.advance(seconds=10)
        assert run(5)["retried"] == 0, "not due yet: nothing is sent before the backoff"
        assert len(receiver.received) == 1

        clock.advance(seconds=20)
        assert run(5)["retried"] == 1  # 429, Retry-After: 120
        (second,) = deliveries(db_engine)
        assert second.next_attempt_at - clock.now() >= timedelta(seconds=120), "Retry-After is honoured"

        clock.advance(seconds=60)
        run(5)
        assert len(receiver.received) == 2, "not before Retry-After"
        clock.advance(seconds=61)
        assert run(5)["delivered"] == 1

    (done,) = deliveries(db_engine)
    assert (done.status, done.attempts, done.last_error) == ("delivered", 3, None)
    assert [(a.outcome, a.http_status) for a in attempts(db_engine)] == [
        ("failed", 500), ("failed", 429), ("delivered", 200)
    ]  # fmt: skip
    assert all(d.verified for d in receiver.received), "every attempt is signed (verified by standardwebhooks)"
    assert len(set(receiver.ids())) == 1, "one webhook-id for every attempt of one event"
    accepted = receiver.accepted()
    assert list(accepted) == [receiver.ids()[0]]
    (event,) = accepted.values()
    assert event["type"] == "integration.connected"
    assert event["data"]["integration_id"] == str(integration.id)
    assert event["data"]["event_id"] == receiver.ids()[0]
    assert set(event) == {"type", "timestamp", "data"}


def test_a_receiver_down_for_the_whole_window_ends_dead_at_its_end_and_nothing_is_lost_before(db_engine, clock):
    with running_receiver(SECRET) as receiver:
        receiver.default = 503
        connect_row(db_engine, clock)
        connect_row(db_engine, clock, entity="entity-2")
        run = dispatcher(db_engine, clock, receiver.url).run
        run(5)
        give_up = {row.give_up_at for row in deliveries(db_engine)}
        assert give_up == {clock.now() + WINDOW}
        rounds = 0
        while (wake := next_wake(db_engine)) is not None:
            rounds += 1
            assert rounds < 200
            clock.advance(seconds=max(0.0, (wake - clock.now()).total_seconds()))
            assert all(row.status == "pending" for row in deliveries(db_engine)), "none dies inside its window"
            run(5)
        assert clock.now() == give_up.pop(), "the last attempt is at the end of the window"
    rows = deliveries(db_engine)
    assert [row.status for row in rows] == ["dead", "dead"]
    assert all(row.last_error == "http_503" for row in rows)
    for row in rows:
        tried = [a for a in attempts(db_engine) if a.event_seq == row.event_seq]
        assert len(tried) == row.attempts
        assert 15 <= row.attempts <= 60, "retried all day with the backoff, not hammered"
    assert len(receiver.received) == sum(row.attempts for row in rows)


def test_a_refusal_4xx_is_dead_at_once_and_a_redirect_is_not_followed(db_engine, clock):
    with running_receiver(SECRET) as receiver:
        receiver.answer(410, (302, {"Location": "http://127.0.0.1:9/elsewhere"}))
        connect_row(db_engine, clock)
        connect_row(db_engine, clock)
        counts = dispatcher(db_engine, clock, receiver.url).run(5)
    assert counts["dead"] == 2
    assert sorted(a.http_status for a in attempts(db_engine)) == [302, 410]
    assert len(receiver.received) == 2


def test_every_secret_signs_so_a_receiver_can_rotate(db_engine, clock):
    with running_receiver(ROTATED) as new, running_receiver(SECRET) as old:
        connect_row(db_engine, clock)
        dispatcher(db_engine, clock, new.url, old.url, secrets=(SECRET, ROTATED)).run(5)
    assert [d.verified for d in new.received + old.received] == [True, True]
    assert len(new.received[0].headers["webhook-signature"].split(" ")) == 2
    with running_receiver("whsec_" + "A" * 43 + "=") as stranger:
        connect_row(db_engine, clock)
        dispatcher(db_engine, clock, stranger.url).run(5)
    assert [d.verified for d in stranger.received] == [False]


def test_an_unreachable_endpoint_is_retried_and_its_breaker_spares_it_while_another_endpoint_is_served(
    db_engine, clock
):
    dead = "http://127.0.0.1:9/hooks"  # the discard port: nothing listens, the connection is refused
    with running_receiver(SECRET) as alive:
        for number in range(8):
            connect_row(db_engine, clock, entity=f"e{number}")
        run = dispatcher(db_engine, clock, dead, alive.url).run
        counts = run(10)
        assert len(alive.accepted()) == 8, "the live endpoint gets everything at once"
        failed = [a for a in attempts(db_engine) if a.outcome == "failed"]
        assert {a.error for a in failed} == {"connection_failed"}
        tried_before = len(failed)
        assert counts["retried"] == tried_before
        clock.advance(minutes=1)
        for number in range(4):
            connect_row(db_engine, clock, entity=f"late{number}")
        run(10)
    assert len(alive.accepted()) == 12
    tried_after = len([a for a in attempts(db_engine) if a.outcome == "failed"])
    assert tried_after - tried_before <= 1, "an open breaker sends only one probe, however much is due"
    assert uuid.UUID(alive.ids()[0]).version == 7


def test_a_dead_delivery_replayed_is_pending_again_and_only_the_selected_event(db_engine, clock):
    with running_receiver(SECRET) as receiver:
        receiver.answer(410, 410)
        chosen, other = connect_row(db_engine, clock), connect_row(db_engine, clock)
        assert dispatcher(db_engine, clock, receiver.url).run(5)["dead"] == 2
    admin = SqlEventAdmin(db_engine)
    assert admin.replay(EventSelection(integration_id=chosen.id), WINDOW, clock.now()) == (1, 1)
    (chosen_event,), (other_event,) = events(db_engine, chosen.id), events(db_engine, other.id)
    states = {row.event_seq: (row.status, row.attempts) for row in deliveries(db_engine)}
    assert states == {chosen_event.seq: ("pending", 0), other_event.seq: ("dead", 1)}
