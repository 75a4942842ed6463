"""The refresh store's hot statements behave alike on every dialect: PostgreSQL runs them as prepared SQL text
(shared/adapters/pg_refresh.py), SQLite and MySQL as SQLAlchemy Core. JSON values, the pin's fence on the
pending copy, a provider's claim and a refused write read the same everywhere."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select
from sqlalchemy.exc import SQLAlchemyError

from shared.adapters.orm import AuditEventRow
from shared.adapters.sql_refresh import SqlRefreshStore
from shared.domain.clock import FixedClock
from shared.domain.models import AuditEvent
from tests.support.events import connect_row

LEASE = timedelta(seconds=30)


def claimed(engine, clock, provider="demo"):
    integration = connect_row(engine, clock, provider=provider)
    store = SqlRefreshStore(engine)
    assert store.claim(integration.id, "worker-1", LEASE, clock.now()) is not None
    return store, integration


def audit_actions(engine, integration_id):
    with engine.connect() as conn:
        query = select(AuditEventRow.action, AuditEventRow.detail).where(AuditEventRow.integration_id == integration_id)
        return [tuple(row) for row in conn.execute(query.order_by(AuditEventRow.id))]


def test_a_fenced_write_stores_json_values_and_its_audit_row(db_engine):
    clock = FixedClock()
    store, integration = claimed(db_engine, clock)
    values = {
        "granted_scopes": ["read", "write"], "scopes_known": True, "provider_metadata": {"instance_url": "x"},
        "token_expires_at": clock.now() + timedelta(hours=1), "access_token_ciphertext": b"\x00sealed",
    }  # fmt: skip
    event = AuditEvent("system:refresh", "token.refresh", "success", integration.entity_id, integration.id, "demo",
                       {"reason": "due"})  # fmt: skip
    written = store.write(integration.id, 0, "worker-1", values, [event], clock.now(), bump=True, extend=LEASE)
    assert written is not None
    again = store.get(integration.id)
    for row in (written, again):
        assert row is not None
        assert (row.granted_scopes, row.provider_metadata, row.credential_version) == (
            ["read", "write"], {"instance_url": "x"}, 1,
        )  # fmt: skip
        assert (row.access_token_ciphertext, row.lease_owner) == (b"\x00sealed", "worker-1")
        assert row.token_expires_at == clock.now() + timedelta(hours=1)
        assert row.token_expires_at is not None
        assert row.token_expires_at.utcoffset() == timedelta(0)
    assert audit_actions(db_engine, integration.id) == [("token.refresh", {"reason": "due"})]


def test_a_fenced_out_write_changes_nothing_and_writes_no_audit_row(db_engine):
    clock = FixedClock()
    store, integration = claimed(db_engine, clock)
    event = AuditEvent("system:refresh", "token.refresh", "success", integration.entity_id, integration.id, "demo")
    assert store.write(integration.id, 7, "worker-1", {"consecutive_failures": 3}, [event], clock.now(),
                       bump=True) is None  # fmt: skip
    assert store.write(integration.id, 0, "worker-2", {"consecutive_failures": 3}, [event], clock.now(),
                       bump=True) is None  # fmt: skip
    row = store.get(integration.id)
    assert row is not None
    assert (row.consecutive_failures, row.credential_version) == (0, 0)
    assert row.lease_owner is None  # the fenced-out owner's lease is given back
    assert audit_actions(db_engine, integration.id) == []


def test_a_refused_write_is_a_database_error_with_its_parameters_hidden_and_changes_nothing(db_engine):
    clock = FixedClock()
    store, integration = claimed(db_engine, clock)
    with pytest.raises(SQLAlchemyError) as raised:
        store.write(integration.id, 0, "worker-1", {"consecutive_failures": None, "label": "changed"}, [],
                    clock.now(), bump=True)  # fmt: skip
    assert "parameters hidden" in str(raised.value)
    row = store.get(integration.id)
    assert row is not None
    assert (row.label, row.credential_version, row.lease_owner) == (None, 0, "worker-1")
    assert store.write(integration.id, 0, "worker-1", {"consecutive_failures": 1}, [], clock.now(), bump=False)


def test_a_naive_time_is_refused(db_engine):
    clock = FixedClock()
    store, integration = claimed(db_engine, clock)
    with pytest.raises((ValueError, SQLAlchemyError), match="naive"):
        store.write(integration.id, 0, "worker-1", {"token_expires_at": datetime(2030, 1, 1)}, [], clock.now(),
                    bump=False)  # fmt: skip


def test_a_pin_is_fenced_on_the_pending_copy(db_engine):
    clock = FixedClock()
    store, integration = claimed(db_engine, clock)
    pending = {"pending_secret_ciphertext": b"sealed-1", "pending_secret_key_version": 1}
    written = store.write(integration.id, 0, "worker-1", pending, [], clock.now(), bump=True, extend=LEASE)
    assert written is not None
    stale = store.write(integration.id, 1, "worker-1", {"pending_secret_ciphertext": b"sealed-2"}, [], clock.now(),
                        bump=True, extend=LEASE)  # fmt: skip
    assert stale is not None  # the pending copy moved on: a pin of the first one must not land
    event = AuditEvent("system:refresh", "secret.version_added", "success", None, integration.id, "demo")
    assert store.pin(written, "worker-1", 5, [event], clock.now()) is None
    current = store.get(integration.id)
    assert current is not None
    assert (current.secret_version, current.lease_owner) == (None, None)
    assert store.claim(integration.id, "worker-1", LEASE, clock.now()) is not None
    pinned = store.pin(current, "worker-1", 6, [event], clock.now())
    assert pinned is not None
    assert (pinned.secret_version, pinned.pending_secret_ciphertext, pinned.lease_owner) == (6, None, None)
    assert [action for action, _ in audit_actions(db_engine, integration.id)] == ["secret.version_added"]


def test_a_claim_takes_only_its_providers_due_rows(db_engine):
    clock = FixedClock()
    store = SqlRefreshStore(db_engine)
    rows = [connect_row(db_engine, clock, provider=p) for p in ("demo", "demo", "other")]
    for minutes, row in zip((10, 5, 1), rows, strict=True):
        assert store.claim(row.id, "seed", LEASE, clock.now()) is not None
        store.write(row.id, 0, "seed", {"token_expires_at": clock.now() + timedelta(minutes=minutes),
                                         "secret_ref": f"s-{row.id.hex}"}, [], clock.now(), bump=False)  # fmt: skip
    began = datetime.now(UTC)
    batch = store.claim_due(timedelta(minutes=15), 5, "job-1", LEASE, clock.now(), began, provider="demo")
    assert {i.id for i in batch} == {rows[0].id, rows[1].id}
    assert {i.lease_owner for i in batch} == {"job-1"}
    assert store.claim_due(timedelta(minutes=15), 5, "job-2", LEASE, clock.now(), began, provider="demo") == []
