"""The events operator API, served by the internal token function (the same callers: INTERNAL_API_KEYS or
TOKEN_INVOKERS; Cloud Run ingress internal). Each endpoint parses, calls one use case, answers its view."""

from __future__ import annotations

from datetime import datetime
from typing import Any
from uuid import UUID

import flask
from werkzeug.wrappers import Response as BaseResponse

from shared.api.router import Endpoint
from shared.bootstrap import Container
from shared.domain.delivery import AttemptRecord, DeliveryState, DestinationHealth, EventRecord
from shared.domain.events import utc_timestamp
from shared.errors import NotFound
from shared.http import json_response, method_not_allowed, parse_json, parse_query
from shared.schemas_events import ListEventsQuery, NoQuery, ReplayBody


def _time(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


def delivery_view(delivery: DeliveryState) -> dict[str, Any]:
    pending = delivery.status == "pending"
    return {
        "destination": delivery.destination, "status": delivery.status, "attempts": delivery.attempts,
        "next_attempt_at": _time(delivery.next_attempt_at) if pending else None,
        "give_up_at": _time(delivery.give_up_at), "last_error": delivery.last_error,
        "delivered_at": _time(delivery.delivered_at),
    }  # fmt: skip


def event_view(record: EventRecord) -> dict[str, Any]:
    event = record.event
    return {
        "event_id": str(event.id), "seq": event.seq, "type": event.type, "timestamp": utc_timestamp(event.occurred_at),
        "data": event.data, "deliveries": [delivery_view(d) for d in record.deliveries],
    }  # fmt: skip


def attempt_view(attempt: AttemptRecord) -> dict[str, Any]:
    return {
        "destination": attempt.destination, "attempted_at": _time(attempt.attempted_at), "outcome": attempt.outcome,
        "http_status": attempt.http_status, "error": attempt.error, "duration_ms": attempt.duration_ms,
    }  # fmt: skip


def destination_view(health: DestinationHealth, now: datetime) -> dict[str, Any]:
    return {
        "id": health.key, "kind": health.kind, "target": health.target, "breaker": health.breaker(now),
        "consecutive_failures": health.consecutive_failures, "open_until": _time(health.open_until),
        "last_success_at": _time(health.last_success_at), "last_failure_at": _time(health.last_failure_at),
        "last_error": health.last_error, "pending": health.pending, "dead": health.dead,
    }  # fmt: skip


def list_events(request: flask.Request, app: Container, caller: str, _: dict[str, str]) -> BaseResponse:
    query = parse_query(request, ListEventsQuery)
    page = app.event_operations.page(query.selection(), query.page_size, query.page_token)
    return json_response({"events": [event_view(r) for r in page.items], "next_page_token": page.next_page_token})


def get_event(request: flask.Request, app: Container, caller: str, params: dict[str, str]) -> BaseResponse:
    parse_query(request, NoQuery)
    try:
        event_id = UUID(params["event_id"])
    except ValueError:
        raise NotFound("event not found", code="event_not_found") from None
    record, attempts = app.event_operations.get(event_id)
    return json_response({**event_view(record), "attempts": [attempt_view(a) for a in attempts]})


def replay_events(request: flask.Request, app: Container, caller: str, _: dict[str, str]) -> BaseResponse:
    parse_query(request, NoQuery)
    body = parse_json(request, ReplayBody)
    replay = app.event_operations.replay(body.selection(), caller)
    return json_response({"events": replay.events, "deliveries": replay.deliveries}, 202)


def list_destinations(request: flask.Request, app: Container, caller: str, _: dict[str, str]) -> BaseResponse:
    parse_query(request, NoQuery)
    now = app.clock.now()
    return json_response({"destinations": [destination_view(h, now) for h in app.event_operations.destinations()]})


ENDPOINTS = (
    Endpoint("GET", "/events", list_events),
    Endpoint("GET", "/events/destinations", list_destinations),
    Endpoint("POST", "/events/replay", replay_events),
    Endpoint("GET", "/events/{event_id}", get_event),
)


def serve_events(request: flask.Request, app: Container) -> BaseResponse:
    """Route to the endpoint for the path and method (404, or 405 with Allow), then authenticate the caller."""
    matches = [(e, m) for e in ENDPOINTS if (m := e.pattern.fullmatch(request.path))]
    if not matches:
        raise NotFound(f"no endpoint at {request.path[:100]!r}", code="not_found")
    if any("{" not in e.path for e, _ in matches):  # `/events/replay` is that path, not an event id
        matches = [(e, m) for e, m in matches if "{" not in e.path]
    for endpoint, match in matches:
        if endpoint.method == request.method:
            caller = app.internal_callers.caller(request)
            response = endpoint.handler(request, app, caller, match.groupdict())
            response.headers["Cache-Control"] = "no-store"
            return response
    raise method_not_allowed(request, {e.method for e, _ in matches})
