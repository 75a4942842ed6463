"""SqlIntegrationAdmin on PostgreSQL, MySQL and SQLite: entity-scoped pages on (created_at, id), conditional and
fenced updates, removal; and the handshake state's single-use consume."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from uuid import UUID, uuid4

import pytest
from sqlalchemy import select

from shared.adapters.orm import AuditEventRow
from shared.adapters.sql_integrations import SqlIntegrationAdmin
from shared.adapters.sql_repositories import SqlIntegrationRepository, SqlOAuthStateRepository
from shared.domain.clock import FixedClock
from shared.domain.models import AuditEvent, CredentialType, Integration, OAuthState, Status
from shared.domain.pagination import Cursor


@pytest.fixture
def clock() -> FixedClock:
    return FixedClock()


def add(repo: SqlIntegrationRepository, clock: FixedClock, entity: str, provider: str = "openai", **fields) -> UUID:
    now = clock.now()
    integration = Integration(uuid4(), entity, provider, CredentialType.API_KEY, Status.ACTIVE, now, now, **fields)
    repo.add(integration)
    return integration.id


def test_pages_follow_created_at_then_id_and_stay_inside_the_entity(db_engine, clock):
    repo, admin = SqlIntegrationRepository(db_engine, clock), SqlIntegrationAdmin(db_engine, clock)
    same_instant = sorted(add(repo, clock, "e1") for _ in range(3))  # ties broken by id
    clock.advance(seconds=1)
    later = add(repo, clock, "e1", provider="jira-basic")
    add(repo, clock, "e2")
    expected = [*same_instant, later]
    seen, after = [], None
    while True:
        page = admin.list_page("e1", provider=None, status=None, after=after, limit=2)
        if not page:
            break
        seen += [i.id for i in page]
        after = Cursor(page[-1].created_at, page[-1].id)
    assert seen == expected
    only = admin.list_page("e1", provider="jira-basic", status=None, after=None, limit=10)
    assert [i.id for i in only] == [later]
    assert admin.list_page("e1", provider=None, status="inactive", after=None, limit=10) == []


def test_update_is_scoped_conditional_and_can_fence(db_engine, clock):
    repo, admin = SqlIntegrationRepository(db_engine, clock), SqlIntegrationAdmin(db_engine, clock)
    target = add(repo, clock, "e1", label="old", config={"a": 1})
    assert admin.update(target, "e2", {"label": "stolen"}) is None
    assert admin.update(target, "e1", {"status": "inactive"}, when_status={"reauth_required"}) is None
    assert admin.update(target, "e1", {"status": "inactive"}, when_version=1) is None, "new credentials landed"
    clock.advance(seconds=5)
    event = AuditEvent("entity:e1", "integration.update", "success", "e1", target, "openai", {"fields": ["label"]})
    updated = admin.update(target, "e1", {"label": None, "config": {"b": [1, "ü"]}}, [event])
    assert updated is not None
    assert (updated.label, updated.config, updated.updated_at) == (None, {"b": [1, "ü"]}, clock.now())
    assert updated.credential_version == 0
    fenced = admin.update(target, "e1", {"status": "revoked"}, fence=True)
    assert fenced is not None
    assert (fenced.status, fenced.credential_version) == (Status.REVOKED, 1)
    with db_engine.connect() as conn:
        assert conn.execute(select(AuditEventRow.action)).scalars().all() == ["integration.update"]
    with pytest.raises(ValueError, match="access_token_ciphertext"):
        admin.update(target, "e1", {"access_token_ciphertext": b"x"})


def test_remove_is_scoped_and_writes_its_event_only_when_it_removed(db_engine, clock):
    repo, admin = SqlIntegrationRepository(db_engine, clock), SqlIntegrationAdmin(db_engine, clock)
    target = add(repo, clock, "e1", last_sync_at=clock.now() - timedelta(days=1))
    event = AuditEvent("entity:e1", "integration.delete", "success", "e1", target, "openai")
    assert admin.remove(target, "e2", [event]) is False
    assert repo.get(target) is not None
    assert admin.remove(target, "e1", [event]) is True
    assert admin.remove(target, "e1", [event]) is False
    assert repo.get(target) is None
    with db_engine.connect() as conn:
        assert conn.execute(select(AuditEventRow.integration_id)).scalars().all() == [target]


def test_a_state_is_consumed_once_even_by_racing_callbacks(db_engine, clock):
    states = SqlOAuthStateRepository(db_engine)
    now = clock.now()
    state = OAuthState(uuid4(), "h" * 64, "e1", "google", now, now + timedelta(minutes=10), "https://app.example/",
                       ["openid"], browser_binding_hash="b" * 64)  # fmt: skip
    states.add(state)
    assert states.consume(state.state_hash, "x" * 64, now) is None, "another browser's binding"
    with ThreadPoolExecutor(max_workers=8) as pool:
        won = [s for s in pool.map(lambda _: states.consume(state.state_hash, "b" * 64, now), range(8)) if s]
    assert [(s.id, s.entity_id, s.requested_scopes, s.consumed_at) for s in won] == [(state.id, "e1", ["openid"], now)]
    assert states.why_refused(state.state_hash, "b" * 64, now) == "used"
    late = OAuthState(uuid4(), "l" * 64, "e1", "google", now, now + timedelta(minutes=10), "https://app.example/")
    states.add(late)
    assert states.consume(late.state_hash, None, now + timedelta(minutes=11)) is None, "expired"
