"""The outbox on both dialects: every write path writes its events in its own transaction, so an event exists if
and only if its state change committed; events carry the row as that transaction wrote it, and no secret."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import Engine, event

from shared.adapters.sql_integrations import SqlIntegrationAdmin
from shared.adapters.sql_refresh import SqlRefreshStore
from shared.adapters.sql_repositories import SqlIntegrationRepository
from shared.domain.clock import FixedClock
from shared.domain.events import (
    DELETED,
    RECONNECTED,
    SYNC_REQUESTED,
    UPDATED,
    EventSpec,
    refresh_transitions,
)
from shared.domain.models import Status
from shared.domain.ports import REAUTH_IF_ACTIVE
from tests.support.events import connect_row, event_types, events


class CommitRefused(Exception):
    pass


@contextmanager
def failing_commit(engine: Engine) -> Iterator[None]:
    """The next transaction fails at COMMIT, after every statement in it ran (the change and its records)."""

    def refuse(conn: Any) -> None:
        raise CommitRefused("the database refused to commit (injected)")

    event.listen(engine, "commit", refuse, once=True)
    try:
        yield
    finally:
        if event.contains(engine, "commit", refuse):
            event.remove(engine, "commit", refuse)


def reconnect(engine, clock, integration):
    changed = dataclasses.replace(integration, account_email="new@example.test")
    SqlIntegrationRepository(engine, clock).replace_credentials(changed, [EventSpec(RECONNECTED)])


def patch(engine, clock, integration):
    SqlIntegrationAdmin(engine, clock).update(
        integration.id,
        integration.entity_id,
        {"status": "inactive"},
        [EventSpec(UPDATED, None, {"fields": ["status"]})],
    )


def sync(engine, clock, integration):
    at = clock.now()
    SqlIntegrationAdmin(engine, clock).record_sync(
        integration.id, integration.entity_id, at, after=at, events=[EventSpec(SYNC_REQUESTED)]
    )


def delete(engine, clock, integration):
    SqlIntegrationAdmin(engine, clock).remove(integration.id, integration.entity_id, [EventSpec(DELETED)])


def refresh_reauth(engine, clock, integration):
    store = SqlRefreshStore(engine)
    claimed = store.claim(integration.id, "worker-1", timedelta(seconds=30), clock.now())
    assert claimed is not None
    store.write(
        integration.id, claimed.credential_version, "worker-1", {"last_refresh_error": "invalid_grant"}, [],
        clock.now(), bump=False, status=REAUTH_IF_ACTIVE,
        transitions=lambda written: refresh_transitions(claimed, written),
    )  # fmt: skip


CHANGES: dict[str, tuple[Callable[..., None], str]] = {
    "reconnect": (reconnect, "integration.reconnected"),
    "patch": (patch, "integration.updated"),
    "sync": (sync, "integration.sync_requested"),
    "delete": (delete, "integration.deleted"),
    "refresh": (refresh_reauth, "integration.reauth_required"),
}


@pytest.mark.parametrize("change", list(CHANGES))
def test_an_event_is_written_if_and_only_if_its_state_change_commits(db_engine, change):
    clock = FixedClock()
    make, expected = CHANGES[change]
    integration = connect_row(db_engine, clock)
    before = SqlIntegrationRepository(db_engine, clock).get(integration.id)
    clock.advance(seconds=30)
    with failing_commit(db_engine), pytest.raises(CommitRefused):
        make(db_engine, clock, integration)
    assert SqlIntegrationRepository(db_engine, clock).get(integration.id) == before, "the change did not commit"
    assert event_types(db_engine) == ["integration.connected"], "so neither did its event"
    make(db_engine, clock, integration)
    assert event_types(db_engine) == ["integration.connected", expected]


def test_a_connect_that_does_not_commit_writes_no_event(db_engine):
    clock = FixedClock()
    with failing_commit(db_engine), pytest.raises(CommitRefused):
        connect_row(db_engine, clock)
    assert events(db_engine) == []


def test_events_carry_the_row_as_written_and_nothing_secret(db_engine):
    clock = FixedClock()
    integration = connect_row(db_engine, clock)
    patch(db_engine, clock, integration)
    delete(db_engine, clock, integration)
    rows = events(db_engine)
    assert [row.data["status"] for row in rows] == ["active", "inactive", "inactive"]
    for row in rows:
        assert row.data["event_id"] == str(row.id)
        assert row.id.version == 7
        assert (row.data["integration_id"], row.data["entity_id"], row.data["provider"]) == (
            str(integration.id), "entity-1", "demo"
        )  # fmt: skip
        assert not {"account_subject", "account_email", "label", "config"} & set(row.data)
    assert [row.seq for row in rows] == sorted(row.seq for row in rows)


def test_a_fenced_out_refresh_writes_no_event(db_engine):
    clock = FixedClock()
    integration = connect_row(db_engine, clock)
    store = SqlRefreshStore(db_engine)
    claimed = store.claim(integration.id, "worker-1", timedelta(seconds=30), clock.now())
    assert claimed is not None
    reconnect(db_engine, clock, integration)  # bumps the fencing counter
    written = store.write(
        integration.id, claimed.credential_version, "worker-1", {"consecutive_failures": 1}, [], clock.now(),
        bump=False, transitions=lambda row: refresh_transitions(claimed, row),
    )  # fmt: skip
    assert written is None
    assert event_types(db_engine) == ["integration.connected", "integration.reconnected"]


def test_reauth_is_no_event_when_the_user_made_the_integration_inactive_meanwhile(db_engine):
    clock = FixedClock()
    integration = connect_row(db_engine, clock)
    store = SqlRefreshStore(db_engine)
    claimed = store.claim(integration.id, "worker-1", timedelta(seconds=30), clock.now())
    assert claimed is not None
    patch(db_engine, clock, integration)  # the user's `inactive` lands while the refresh is in flight
    written = store.write(
        integration.id, claimed.credential_version, "worker-1", {"last_refresh_error": "invalid_grant"}, [],
        clock.now(), bump=False, status=REAUTH_IF_ACTIVE, transitions=lambda row: refresh_transitions(claimed, row),
    )  # fmt: skip
    assert written is not None
    assert written.status == Status.INACTIVE
    assert event_types(db_engine) == ["integration.connected", "integration.updated"]
