"""Retention: old audit events and spent or expired handshake states are deleted in bounded batches, by index."""

from __future__ import annotations

import re
import time
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import uuid4

import pytest
from sqlalchemy import Engine, func, insert, select, text
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.expression import ClauseElement, Executable

from shared.adapters.db import engine_for_url
from shared.adapters.orm import AuditEventRow, OAuthStateRow
from shared.adapters.sql_housekeeping import SqlHousekeepingStore, purge_statement
from shared.domain.clock import FixedClock
from shared.services.retention import RetentionPolicy, purge_expired_rows

NOW = datetime(2027, 6, 1, 12, 0, tzinfo=UTC)
POLICY = RetentionPolicy(audit_events=timedelta(days=400), oauth_states=timedelta(days=1), batch_size=2, max_batches=2)


def _audit(occurred_at: datetime) -> dict[str, Any]:
    return {"occurred_at": occurred_at, "actor": "apikey:x", "action": "token.read", "outcome": "success",
            "entity_id": "e", "integration_id": uuid4(), "provider": "demo", "detail": {}}  # fmt: skip


def _state(expires_at: datetime, *, consumed: bool = False) -> dict[str, Any]:
    return {"id": uuid4(), "state_hash": uuid4().hex + uuid4().hex, "entity_id": "e", "provider": "demo",
            "created_at": expires_at - timedelta(minutes=10), "expires_at": expires_at,
            "consumed_at": expires_at - timedelta(minutes=5) if consumed else None, "requested_scopes": []}  # fmt: skip


def _count(engine: Engine, table: Any) -> int:
    with engine.connect() as conn:
        return int(conn.execute(select(func.count()).select_from(table)).scalar_one())


def test_old_audit_events_and_spent_states_go_in_bounded_batches_and_nothing_younger(db_engine: Engine) -> None:
    day = timedelta(days=1)
    with db_engine.begin() as conn:
        conn.execute(insert(AuditEventRow), [_audit(NOW - 401 * day) for _ in range(5)])
        conn.execute(insert(AuditEventRow), [_audit(NOW - 399 * day), _audit(NOW)])
        conn.execute(insert(OAuthStateRow), [
            _state(NOW - 2 * day), _state(NOW - 2 * day, consumed=True), _state(NOW - 3 * day, consumed=True),
            _state(NOW - timedelta(hours=1), consumed=True),  # spent, but within a day of its expiry: kept
            _state(NOW + timedelta(minutes=5)),  # a flow in progress
        ])  # fmt: skip
    store, clock = SqlHousekeepingStore(db_engine), FixedClock(NOW)
    deadline = time.monotonic() + 30

    first = purge_expired_rows(store, clock, POLICY, deadline=deadline)
    expected = {"audit_events": 4, "oauth_states": 3, "connect_sessions": 0, "events": 0}
    assert first == expected, "at most batch_size * max_batches per table"
    assert (_count(db_engine, AuditEventRow), _count(db_engine, OAuthStateRow)) == (3, 2)
    second = purge_expired_rows(store, clock, POLICY, deadline=deadline)
    assert second == {"audit_events": 1, "oauth_states": 0, "connect_sessions": 0, "events": 0}
    with db_engine.connect() as conn:
        kept = sorted(conn.execute(select(AuditEventRow.occurred_at)).scalars())
    assert kept == [NOW - 399 * day, NOW]
    assert purge_expired_rows(store, clock, POLICY, deadline=time.monotonic() - 1) == {
        "audit_events": 0, "oauth_states": 0, "connect_sessions": 0, "events": 0,
    }, "past the deadline nothing is started"  # fmt: skip


def test_an_audit_retention_of_none_keeps_every_event(db_engine: Engine) -> None:
    with db_engine.begin() as conn:
        conn.execute(insert(AuditEventRow), [_audit(NOW - timedelta(days=4000))])
    forever = RetentionPolicy(audit_events=None, oauth_states=timedelta(days=1), batch_size=10, max_batches=1)
    store = SqlHousekeepingStore(db_engine)
    purged = purge_expired_rows(store, FixedClock(NOW), forever, deadline=time.monotonic() + 30)
    assert purged == {"audit_events": 0, "oauth_states": 0, "connect_sessions": 0, "events": 0}
    assert _count(db_engine, AuditEventRow) == 1


def test_outbox_events_past_retention_go_with_their_deliveries_and_attempts(db_engine: Engine) -> None:
    import requests

    from shared.adapters.sql_events import SqlEventStore
    from shared.adapters.webhook_sink import WebhookSink
    from shared.domain.webhooks import parse_secret
    from shared.services.dispatcher import Dispatcher
    from tests.support.events import SECRET, attempts, connect_row, deliveries, events

    old_clock, new_clock = FixedClock(NOW - timedelta(days=401)), FixedClock(NOW)
    sink = WebhookSink("http://127.0.0.1:9/hooks", [parse_secret(SECRET)], requests.Session())  # refused: retried
    connect_row(db_engine, old_clock)
    Dispatcher(SqlEventStore(db_engine), [sink], old_clock, timedelta(hours=1)).run(5)
    recent = connect_row(db_engine, new_clock)
    assert (len(events(db_engine)), len(deliveries(db_engine)), len(attempts(db_engine))) == (2, 1, 1)
    purged = purge_expired_rows(SqlHousekeepingStore(db_engine), new_clock, POLICY, deadline=time.monotonic() + 30)
    assert purged["events"] == 1
    assert [row.integration_id for row in events(db_engine)] == [recent.id]
    assert (deliveries(db_engine), attempts(db_engine)) == ([], [])


class Explain(Executable, ClauseElement):
    """EXPLAIN <statement>, with the statement's own bound parameters (SQLAlchemy's compiler recipe)."""

    inherit_cache = False

    def __init__(self, statement: Any) -> None:
        self.statement = statement


@compiles(Explain, "postgresql")
def _explain(element: Explain, compiler: Any, **kw: Any) -> str:
    return "EXPLAIN " + str(compiler.process(element.statement, **kw))


@pytest.mark.parametrize(
    ("table", "index"),
    [("audit_events", "ix_audit_events_occurred_at"), ("oauth_states", "ix_oauth_states_expires_at")],
)
def test_the_purge_reads_by_index_on_postgresql(pg_url: str, table: str, index: str) -> None:
    engine = engine_for_url(pg_url)
    with engine.begin() as conn:  # a year of rows, a few of them past retention; statistics as in production
        if table == "audit_events":
            conn.execute(text(
                "INSERT INTO audit_events (occurred_at, actor, action, outcome, detail) "
                "SELECT now() - (n || ' seconds')::interval, 'apikey:x', 'token.read', 'success', '{}' "
                "FROM generate_series(1, 60000) AS n"
            ))  # fmt: skip
        else:
            conn.execute(text(
                "INSERT INTO oauth_states (id, state_hash, entity_id, provider, created_at, expires_at, "
                "requested_scopes) SELECT gen_random_uuid(), md5(n::text) || md5((n + 1)::text), 'e', 'demo', "
                "now(), now() + (n || ' seconds')::interval, '[]' FROM generate_series(1, 60000) AS n"
            ))  # fmt: skip
        conn.execute(text(f"ANALYZE {table}"))
    statement = purge_statement(table, datetime.now(UTC) - timedelta(hours=1), 1000)
    with engine.connect() as conn:
        plan = "\n".join(conn.execute(Explain(statement)).scalars())
    engine.dispose()
    assert re.search(rf"Index (Only )?Scan using {index}", plan), plan
    assert f"Index Scan on pk_{table}" in plan or f"Index Scan using pk_{table}" in plan, plan
    assert "Seq Scan" not in plan, plan


def _session(expires_at: datetime) -> dict[str, Any]:
    return {"id": uuid4(), "token_hash": uuid4().hex + uuid4().hex, "entity_id": "e", "allowed_origin": "https://a",
            "created_by": "apikey:x", "created_at": expires_at - timedelta(minutes=30),
            "expires_at": expires_at}  # fmt: skip


def test_expired_connect_sessions_go_after_the_state_retention(db_engine: Engine) -> None:
    from shared.adapters.orm import ConnectSessionRow

    day = timedelta(days=1)
    with db_engine.begin() as conn:
        conn.execute(insert(ConnectSessionRow), [
            _session(NOW - 2 * day), _session(NOW - 3 * day), _session(NOW - timedelta(hours=1)),
            _session(NOW + timedelta(minutes=10)),
        ])  # fmt: skip
    store = SqlHousekeepingStore(db_engine)
    purged = purge_expired_rows(store, FixedClock(NOW), POLICY, deadline=time.monotonic() + 30)
    assert purged["connect_sessions"] == 2
    assert _count(db_engine, ConnectSessionRow) == 2, "a live session and one within the retention stay"
