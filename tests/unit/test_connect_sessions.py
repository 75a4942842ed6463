"""Connect sessions and popup endings with in-memory fakes: token shape, hash-only storage, expiry, the session's
limits on a flow, the result message, the flow's status."""

from __future__ import annotations

import dataclasses
import json
from datetime import timedelta
from urllib.parse import parse_qs, urlsplit
from uuid import UUID

import pytest

from shared.adapters.secret_stores import single
from shared.config import load_settings
from shared.domain.clock import FixedClock
from shared.domain.envelope import Keyring, new_data_key
from shared.domain.models import ConnectSession, OAuthState
from shared.domain.oauth import TokenSet, digest
from shared.errors import FlowNotFound, OriginNotAllowed, SessionExpired, SessionInvalid, SessionNotPermitted
from shared.providers.catalog import load_catalog
from shared.services.connect import ConnectFlow, StartRequest
from shared.services.connect_sessions import ConnectSessions, SessionRequest
from tests.fakes.memory import (
    MemoryAudit,
    MemoryIntegrations,
    MemorySecretStore,
    MemoryStates,
    ScriptedTokenEndpoint,
    StaticDirectory,
)

ORIGIN = "https://app.example.com"


class MemorySessions:
    def __init__(self) -> None:
        self.rows: dict[str, ConnectSession] = {}

    def add(self, session: ConnectSession) -> None:
        self.rows[session.token_hash] = session

    def find(self, token_hash: str) -> ConnectSession | None:
        return self.rows.get(token_hash)


class MemoryFlows:
    def __init__(self, states: MemoryStates) -> None:
        self.states = states

    def flow(self, flow_id: UUID, entity_id: str) -> OAuthState | None:
        found = [s for s in self.states.rows.values() if s.id == flow_id and s.entity_id == entity_id]
        return dataclasses.replace(found[0]) if found else None

    def record_outcome(self, flow_id: UUID, outcome: str, integration_id: UUID | None, error: str | None) -> None:
        for state in self.states.rows.values():
            if state.id == flow_id and state.outcome is None:
                state.outcome, state.outcome_integration_id, state.outcome_error = outcome, integration_id, error


def _advance(clock: FixedClock, seconds: float) -> None:
    clock.advance(seconds=seconds)


@pytest.fixture
def parts(monkeypatch):
    monkeypatch.setenv("DEMO_CLIENT_ID", "demo-client")
    monkeypatch.setenv("DEMO_CLIENT_SECRET", "demo-local-client-secret")
    monkeypatch.setenv("GITHUB_CLIENT_ID", "github-client")
    monkeypatch.setenv("GITHUB_CLIENT_SECRET", "github-client-secret-value")
    settings = load_settings(allowed_origins=ORIGIN, port=8080, public_base_url=None)
    clock, states, integrations, audit = FixedClock(), MemoryStates(), MemoryIntegrations(), MemoryAudit()
    flows = MemoryFlows(states)
    sessions = ConnectSessions(
        settings=settings, catalog=load_catalog(), sessions=MemorySessions(), flows=flows, integrations=integrations,
        clock=clock, audit=audit, sleep=lambda seconds: _advance(clock, seconds),
    )  # fmt: skip
    flow = ConnectFlow(
        settings=settings, catalog=load_catalog(), states=states, integrations=integrations,
        secrets=single(MemorySecretStore()), keyring=Keyring({1: new_data_key()}), clock=clock,
        token_endpoint=ScriptedTokenEndpoint(), directory=StaticDirectory(), audit=audit, flows=flows,
    )  # fmt: skip
    return sessions, flow, clock


def test_a_session_token_is_random_stored_as_its_hash_and_lives_thirty_minutes(parts):
    sessions, _, clock = parts
    minted = sessions.create("apikey:1", SessionRequest("user-1", ORIGIN + "/", ["local-demo"]))
    assert minted.token.startswith("cs_")
    assert minted.token not in repr(minted)
    (stored,) = sessions.sessions.rows.values()
    assert stored.token_hash == digest(minted.token)
    assert minted.token not in json.dumps(dataclasses.asdict(stored), default=str)
    assert (stored.allowed_origin, stored.allowed_providers) == (ORIGIN, ["demo"]), "normalised, aliases resolved"
    assert stored.expires_at - stored.created_at == timedelta(minutes=30)
    assert sessions.authenticate(minted.token).entity_id == "user-1"
    clock.advance(seconds=1800)
    with pytest.raises(SessionExpired):
        sessions.authenticate(minted.token)
    for bad in ("", "cs_" + "A" * 43, minted.token.upper(), minted.token + "=", "Bearer " + minted.token):
        with pytest.raises(SessionInvalid):
            sessions.authenticate(bad)
    with pytest.raises(OriginNotAllowed):
        sessions.create("apikey:1", SessionRequest("user-1", "https://evil.example"))


def test_a_sessions_popup_flow_ends_with_the_message_for_its_origin_and_a_status(parts):
    sessions, flow, _ = parts
    session = sessions.authenticate(sessions.create("apikey:1", SessionRequest("user-1", ORIGIN, ["demo"])).token)
    with pytest.raises(SessionNotPermitted):
        flow.start("user-1", StartRequest("github"), session)
    started = flow.start("user-1", StartRequest("demo", mode="popup"), session)
    assert started.binding is None, "the session binds the flow, not a cookie"
    assert sessions.flow_status("user-1", started.flow_id) == {"status": "pending"}
    with pytest.raises(FlowNotFound):
        sessions.flow_status("user-2", started.flow_id)
    flow.token_endpoint.replies.append(TokenSet("at", "rt", None, ["profile"]))
    state = parse_qs(urlsplit(started.authorization_url).query)["state"][0]
    ending = flow.end({"state": state, "code": "c"}, {})
    assert ending.origin == ORIGIN
    assert ending.message is not None
    assert ending.message["type"] == "broker:connect"
    assert ending.message["flow_id"] == str(started.flow_id)
    assert ending.message["status"] == "connected"
    assert "refreshable" not in ending.message
    status = sessions.flow_status("user-1", started.flow_id)
    assert status == {"status": "connected", "integration_id": ending.message["integration_id"]}


def test_a_pending_flow_is_waited_on_then_expires(parts):
    sessions, flow, clock = parts
    started = flow.start("user-1", StartRequest("demo"))
    before = clock.now()
    assert sessions.flow_status("user-1", started.flow_id, wait=0.2) == {"status": "pending"}
    clock.advance(seconds=601)
    assert sessions.flow_status("user-1", started.flow_id) == {"status": "expired"}
    assert clock.now() > before
