"""The events operator API over real HTTP (token_fetch, functions-framework) and the events schedule (token_refresh
POST /dispatch) on PostgreSQL: list, read with attempts, health, replay; every answer as documented."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import pytest
import requests

from shared.adapters.db import engine_for_url
from shared.domain.clock import SystemClock
from tests.support.broker_env import DATA_KEY
from tests.support.events import SECRET, connect_row
from tests.support.openapi import assert_conforms
from tests.support.postgres import DatabaseFactory
from tests.support.processes import serving_function
from tests.support.webhook_receiver import Receiver, running_receiver

KEY = "internal-key-for-the-events-api-0123456789"
AUTH = {"Authorization": f"Bearer {KEY}"}
JSON_AUTH = {**AUTH, "Content-Type": "application/json"}


class Stack:
    def __init__(self, fetch: str, refresh: str, receiver: Receiver, engine: Any) -> None:
        self.fetch, self.refresh, self.receiver, self.engine = fetch, refresh, receiver, engine

    def call(self, method: str, path: str, template: str | None = None, **kwargs: Any) -> requests.Response:
        response = requests.request(method, self.fetch + path, headers=kwargs.pop("headers", AUTH), timeout=20,
                                    **kwargs)  # fmt: skip
        if response.status_code != 405:  # a method the path does not serve has no entry in the document
            assert_conforms(response, method, template or path.split("?")[0])
        return response

    def dispatch(self) -> dict[str, Any]:
        response = requests.post(self.refresh + "/dispatch", headers=AUTH, timeout=60)
        assert_conforms(response, "POST", "/dispatch")
        assert response.status_code == 200, response.text
        return dict(response.json())


@pytest.fixture(scope="module")
def stack(pg_databases: DatabaseFactory) -> Iterator[Stack]:
    name = pg_databases.create()
    url = pg_databases.server.url(name)
    with running_receiver(SECRET) as receiver:
        env = {
            "DATABASE_URL": url, "SECRET_BACKEND": "database", "DATA_KEYS": f"1:{DATA_KEY}",
            "INTERNAL_API_KEYS": KEY, "WEBHOOK_URLS": receiver.url, "WEBHOOK_SECRETS": SECRET,
        }  # fmt: skip
        engine = engine_for_url(url)
        with serving_function("token_fetch", env) as fetch, serving_function("token_refresh", env) as refresh:
            yield Stack(fetch, refresh, receiver, engine)
        engine.dispose()
    pg_databases.drop(name)


def test_a_refused_event_is_listed_dead_then_replayed_and_delivered(stack):
    integration = connect_row(stack.engine, SystemClock(), entity="ops-entity")
    stack.receiver.answer(410)
    assert stack.dispatch()["dead"] == 1
    listed = stack.call("GET", f"/events?integration_id={integration.id}", "/events").json()
    (event,) = listed["events"]
    assert listed["next_page_token"] is None
    assert event["type"] == "integration.connected"
    (delivery,) = event["deliveries"]
    assert (delivery["status"], delivery["attempts"], delivery["last_error"]) == ("dead", 1, "http_410")
    by_entity = stack.call("GET", "/events?entity_id=ops-entity", "/events").json()
    assert [e["event_id"] for e in by_entity["events"]] == [event["event_id"]]

    health = stack.call("GET", "/events/destinations").json()["destinations"]
    (mine,) = [d for d in health if d["target"] == stack.receiver.url]
    assert (mine["kind"], mine["breaker"], mine["dead"], mine["last_error"]) == ("webhook", "closed", 1, "http_410")

    replayed = stack.call("POST", "/events/replay", json={"event_ids": [event["event_id"]]})
    assert (replayed.status_code, replayed.json()) == (202, {"events": 1, "deliveries": 1})
    assert stack.dispatch()["delivered"] == 1
    detail = stack.call("GET", f"/events/{event['event_id']}", "/events/{event_id}").json()
    assert detail["deliveries"][0]["status"] == "delivered"
    assert [(a["outcome"], a["http_status"]) for a in detail["attempts"]] == [("refused", 410), ("delivered", 200)]
    assert stack.receiver.ids() == [event["event_id"]] * 2, "a replay keeps the webhook-id: receivers dedupe on it"


def test_pages_follow_commit_order(stack):
    clock = SystemClock()
    for _ in range(3):
        connect_row(stack.engine, clock, entity="paged-entity")
    first = stack.call("GET", "/events?entity_id=paged-entity&page_size=2", "/events").json()
    assert len(first["events"]) == 2
    rest = stack.call(
        "GET", f"/events?entity_id=paged-entity&page_size=2&page_token={first['next_page_token']}", "/events"
    ).json()
    assert len(rest["events"]) == 1
    assert rest["next_page_token"] is None
    seqs = [e["seq"] for e in first["events"] + rest["events"]]
    assert seqs == sorted(seqs)


@pytest.mark.parametrize(
    ("method", "path", "template", "kwargs", "status", "code"),
    [
        ("GET", "/events?integration_id=x", "/events", {}, 422, "validation_failed"),
        ("GET", "/events", "/events", {}, 422, "validation_failed"),
        ("GET", f"/events?entity_id=a&integration_id={uuid.uuid4()}", "/events", {}, 422, "validation_failed"),
        ("GET", "/events?entity_id=a&page_token=-1", "/events", {}, 422, "validation_failed"),
        ("GET", "/events?entity_id=a%00b", "/events", {}, 422, "validation_failed"),
        ("GET", "/events?entity_id=a&x=1", "/events", {}, 400, "unknown_parameter"),
        ("GET", f"/events/{uuid.uuid4()}", "/events/{event_id}", {}, 404, "event_not_found"),
        ("GET", "/events/not-a-uuid", "/events/{event_id}", {}, 404, "event_not_found"),
        ("GET", "/events/replay", "/events/replay", {}, 405, "method_not_allowed"),
        ("DELETE", "/events", "/events", {}, 405, "method_not_allowed"),
        ("POST", "/events/replay", "/events/replay", {"json": {}}, 422, "validation_failed"),
        ("POST", "/events/replay", "/events/replay",
         {"json": {"event_ids": [str(uuid.uuid4())], "integration_id": str(uuid.uuid4())}}, 422, "validation_failed"),
        ("POST", "/events/replay", "/events/replay",
         {"json": {"integration_id": str(uuid.uuid4()), "since": "2026-01-01T00:00:00"}}, 422, "validation_failed"),
        ("POST", "/events/replay", "/events/replay", {"data": "{", "headers": JSON_AUTH}, 400, "malformed_json"),
        ("GET", "/events?entity_id=a", "/events", {"headers": {}}, 401, "unauthenticated"),
        ("POST", "/events/replay", "/events/replay", {"json": {}, "headers": {"Authorization": "Bearer no"}}, 401,
         "unauthenticated"),
    ],
)  # fmt: skip
def test_bad_requests_are_clear_4xx(stack, method, path, template, kwargs, status, code):
    response = stack.call(method, path, template, **kwargs)
    assert (response.status_code, response.json()["error"]["code"]) == (status, code), response.text
    if status == 405:
        assert response.headers["Allow"] in ("POST", "GET")


def test_a_replay_by_range_is_bounded_and_audited(stack):
    integration = connect_row(stack.engine, SystemClock(), entity="range-entity")
    stack.dispatch()
    body = {"integration_id": str(integration.id), "since": "2020-01-01T00:00:00Z"}
    replayed = stack.call("POST", "/events/replay", json=body).json()
    assert replayed == {"events": 1, "deliveries": 1}
    with stack.engine.connect() as conn:
        actions = [row[0] for row in conn.exec_driver_sql("SELECT action FROM audit_events ORDER BY id")]
    assert "events.replay" in actions
