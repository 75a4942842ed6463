"""The connect flow's use cases with in-memory fakes: validation, single-use state, no half state."""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any, cast
from urllib.parse import parse_qs, urlsplit
from uuid import UUID, uuid4

import pytest

from shared.adapters.secret_stores import single
from shared.config import load_settings
from shared.domain.clock import FixedClock
from shared.domain.envelope import Keyring, new_data_key
from shared.domain.oauth import TokenSet, digest
from shared.errors import BrokerError, ProviderError
from shared.providers.catalog import load_catalog
from shared.services.connect import ConnectFlow, StartRequest, StateRefused
from tests.fakes.memory import (
    MemoryAudit,
    MemoryIntegrations,
    MemorySecretStore,
    MemoryStates,
    ScriptedTokenEndpoint,
    StaticDirectory,
)

APP = "http://127.0.0.1:8080/app/"


def vault(service: Any) -> MemorySecretStore:
    """The fake store behind the service's one backend."""
    return cast(MemorySecretStore, service.secrets.default)


@pytest.fixture
def flow(monkeypatch) -> ConnectFlow:
    monkeypatch.setenv("DEMO_CLIENT_ID", "demo-client")
    monkeypatch.setenv("DEMO_CLIENT_SECRET", "demo-local-client-secret")
    monkeypatch.delenv("GITHUB_CLIENT_ID", raising=False)
    settings = load_settings(allowed_return_urls=APP, port=8080, public_base_url=None)
    return ConnectFlow(
        settings=settings, catalog=load_catalog(), states=MemoryStates(), integrations=MemoryIntegrations(),
        secrets=single(MemorySecretStore()), keyring=Keyring({1: new_data_key()}), clock=FixedClock(),
        token_endpoint=ScriptedTokenEndpoint(), directory=StaticDirectory(), audit=MemoryAudit(),
    )  # fmt: skip


def tokens(refresh: str | None = "rt-1", access: str = "at-1") -> TokenSet:
    return TokenSet(access, refresh, None, ["profile"])


def start(flow: ConnectFlow, **fields) -> tuple[str, dict[str, str]]:
    started = flow.start("entity-1", StartRequest(**{"provider": "demo", **fields}))
    state = parse_qs(urlsplit(started.authorization_url).query)["state"][0]
    return state, {started.cookie_name: started.binding or ""}


def finish(flow: ConnectFlow, state: str, cookies: dict[str, str], **params: str) -> dict[str, str]:
    location = flow.complete({"state": state, "code": "the-code", **params}, cookies)
    assert location.startswith(APP)
    return {k: v[0] for k, v in parse_qs(urlsplit(location).query).items()}


def test_start_builds_a_pkce_authorization_url_and_keeps_only_digests(flow):
    started = flow.start("entity-1", StartRequest("demo", scopes=["extra:scope"], return_to=APP + "x?y=1"))
    query = parse_qs(urlsplit(started.authorization_url).query)
    assert query["code_challenge_method"] == ["S256"]
    assert query["redirect_uri"] == ["http://127.0.0.1:8080/oauth/callback"]
    assert query["scope"] == ["profile email extra:scope"]
    (row,) = flow.states.rows.values()
    assert row.state_hash == digest(query["state"][0])
    assert row.browser_binding_hash == digest(started.binding or "")
    assert query["state"][0] not in repr(row.__dict__)
    assert row.expires_at - row.created_at == timedelta(minutes=10)


@pytest.mark.parametrize(
    ("request_", "code"),
    [
        (StartRequest("gitlub"), "unknown_provider"),
        (StartRequest("github"), "provider_not_configured"),
        (StartRequest("openai"), "not_an_oauth_provider"),
        (StartRequest("demo", scopes=["has space"]), "invalid_scope"),
        (StartRequest("demo", return_to="https://evil.example/app/"), "return_url_not_allowed"),
        (StartRequest("demo", return_to="http://127.0.0.1:8080/elsewhere"), "return_url_not_allowed"),
        (StartRequest("demo", integration_id=uuid4()), "integration_not_found"),
        (StartRequest("demo", scopes=["extra:scope\n"]), "invalid_scope"),
        (StartRequest("demo", return_to=APP + "../admin"), "return_url_not_allowed"),
        (StartRequest("demo", return_to="http://[127.0.0.1:8080/app/"), "return_url_not_allowed"),
    ],
)
def test_bad_start_requests_are_refused_and_store_nothing(flow, request_, code):
    with pytest.raises(BrokerError) as caught:
        flow.start("entity-1", request_)
    assert caught.value.code == code
    assert 400 <= caught.value.http_status < 500
    assert flow.states.rows == {}


def test_happy_path_creates_an_active_integration_with_a_pinned_secret(flow):
    flow.token_endpoint.replies.append(tokens())
    state, cookies = start(flow, label="Work")
    back = finish(flow, state, cookies)
    assert back["status"] == "connected"
    row = flow.integrations.rows[next(iter(flow.integrations.rows))]
    assert str(row.id) == back["integration_id"]
    assert (row.status, row.account_subject, row.label, row.secret_version) == ("active", "acct-1", "Work", 1)
    assert json.loads(vault(flow).read(row.secret_ref, 1)) == {"refresh_token": "rt-1"}
    assert b"at-1" not in row.access_token_ciphertext
    assert flow.token_endpoint.requests[0].data["code_verifier"]
    assert [e.action for e in flow.integrations.events] == ["oauth.connect"]


def test_same_account_again_updates_in_place_and_destroys_the_old_version(flow):
    flow.token_endpoint.replies += [tokens("rt-1"), tokens("rt-2")]
    first = finish(flow, *start(flow))
    second = finish(flow, *start(flow))
    assert first["integration_id"] == second["integration_id"]
    (row,) = flow.integrations.rows.values()
    assert row.secret_version == 2
    assert vault(flow).enabled_versions(row.secret_ref) == [2]
    assert row.credential_version == 1


def test_a_second_account_is_a_second_integration(flow):
    flow.token_endpoint.replies += [tokens("rt-1"), tokens("rt-2")]
    finish(flow, *start(flow))
    flow.token_endpoint.userinfo_document = {"sub": "acct-2"}
    finish(flow, *start(flow))
    assert sorted(r.account_subject for r in flow.integrations.rows.values()) == ["acct-1", "acct-2"]


def test_reconnect_by_id_keeps_the_id_and_refuses_another_account(flow):
    flow.token_endpoint.replies += [tokens("rt-1"), tokens("rt-2"), tokens("rt-3")]
    first = finish(flow, *start(flow))
    integration_id = UUID(first["integration_id"])
    again = finish(flow, *start(flow, integration_id=integration_id))
    assert again["integration_id"] == first["integration_id"]
    flow.token_endpoint.userinfo_document = {"sub": "someone-else"}
    refused = finish(flow, *start(flow, integration_id=integration_id))
    assert refused["error"] == "account_mismatch"


def test_no_refresh_token_still_connects_but_says_it_cannot_refresh(flow):
    flow.token_endpoint.replies.append(tokens(refresh=None))
    back = finish(flow, *start(flow))
    assert back["refreshable"] == "false"
    (row,) = flow.integrations.rows.values()
    assert (row.secret_ref, row.status) == (None, "active")
    assert vault(flow).versions == {}


@pytest.mark.parametrize("mutate", ["replay", "foreign_browser", "expired", "unknown"])
def test_state_problems_are_refused_without_a_redirect(flow, mutate):
    flow.token_endpoint.replies.append(tokens())
    state, cookies = start(flow)
    if mutate == "replay":
        finish(flow, state, cookies)
    elif mutate == "foreign_browser":
        cookies = {}
    elif mutate == "expired":
        flow.clock.advance(minutes=11)
    else:
        state = "x" * 43
    with pytest.raises(StateRefused) as caught:
        flow.complete({"state": state, "code": "c"}, cookies)
    assert caught.value.code == f"state_{'used' if mutate == 'replay' else mutate}"


def test_access_denied_goes_back_with_the_error_and_stores_nothing(flow):
    back = finish(flow, *start(flow), error="access_denied", error_description="User said no\r\n<script>")
    assert back["error"] == "access_denied"
    assert "\n" not in back["error_description"]
    assert flow.integrations.rows == {}


@pytest.mark.parametrize(
    ("failure", "error"),
    [
        (ProviderError("500", oauth_error="http_500", transient=True), "temporarily_unavailable"),
        (ProviderError("bad secret", oauth_error="invalid_client", transient=False), "provider_error"),
    ],
)
def test_failed_exchange_goes_back_with_an_error(flow, failure, error):
    flow.token_endpoint.replies.append(failure)
    back = finish(flow, *start(flow))
    assert back["error"] == error
    assert flow.integrations.rows == {}


def test_secret_store_failure_after_the_exchange_leaves_nothing(flow):
    flow.token_endpoint.replies.append(tokens())
    vault(flow).fail_next_add = True
    back = finish(flow, *start(flow))
    assert back["error"] == "temporarily_unavailable", "an outage of a backing service: try again later"
    assert "nothing was stored" in back["error_description"]
    assert (flow.integrations.rows, vault(flow).versions) == ({}, {})


def test_database_failure_after_the_secret_write_removes_the_secret(flow):
    flow.token_endpoint.replies.append(tokens())
    flow.integrations.fail_next_write = True
    back = finish(flow, *start(flow))
    assert back["error"] == "temporarily_unavailable"
    assert (flow.integrations.rows, vault(flow).versions) == ({}, {})


def test_database_failure_on_reconnect_destroys_only_the_new_version(flow):
    flow.token_endpoint.replies += [tokens("rt-1"), tokens("rt-2")]
    first = finish(flow, *start(flow))
    flow.integrations.fail_next_write = True
    assert finish(flow, *start(flow))["error"] == "temporarily_unavailable"
    row = flow.integrations.rows[next(iter(flow.integrations.rows))]
    assert str(row.id) == first["integration_id"]
    assert vault(flow).enabled_versions(row.secret_ref) == [1]
    assert json.loads(vault(flow).read(row.secret_ref, row.secret_version)) == {"refresh_token": "rt-1"}


def test_a_response_naming_another_issuer_is_refused(flow):
    flow.directory.issuer = "https://real.example"
    flow.token_endpoint.replies.append(tokens())
    back = finish(flow, *start(flow), iss="https://evil.example")
    assert back["error"] == "issuer_mismatch"
    assert flow.token_endpoint.requests == [], "no code is sent to anyone after a mix-up"


@pytest.mark.parametrize(
    "subject", ["acct-1\n", "acct-1\r", " acct-1", "acct-1\u0085", "acct\u202e-1", "acct\x00-1", "a" * 256]
)
def test_an_account_subject_with_control_characters_or_too_long_is_refused_not_cleaned(flow, subject):
    flow.token_endpoint.replies += [tokens("rt-1"), tokens("rt-2")]
    first = finish(flow, *start(flow))
    flow.token_endpoint.userinfo_document = {"sub": subject, "email": "a@example.test"}
    back = finish(flow, *start(flow))
    assert back["error"] == "provider_error"
    assert "invalid_subject" in back["error_description"]
    (row,) = flow.integrations.rows.values()
    assert str(row.id) == first["integration_id"]
    assert row.credential_version == 0, "the first account's integration was not touched"


def test_display_claims_with_control_characters_are_dropped(flow):
    flow.token_endpoint.replies.append(tokens())
    flow.token_endpoint.userinfo_document = {"sub": "acct-9", "email": "a@example.test\n", "name": "x" * 300}
    finish(flow, *start(flow))
    (row,) = flow.integrations.rows.values()
    assert (row.account_subject, row.account_email, row.account_login) == ("acct-9", None, None)
