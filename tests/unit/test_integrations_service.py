"""The integrations API's use cases with in-memory fakes: static credentials, listing, patching, sync, delete
with revocation, and the credential check."""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any, cast
from uuid import uuid4

import pytest

from shared.adapters.secret_stores import single
from shared.config import load_settings
from shared.domain.clock import FixedClock
from shared.domain.envelope import Keyring, new_data_key
from shared.domain.models import CredentialType, Integration, Status, secret_id_for
from shared.errors import BrokerError, DependencyUnavailable, ProviderError
from shared.providers.catalog import Provider, load_catalog
from shared.services.credentials import ACCESS_TOKEN_PURPOSE, PENDING_SECRET_PURPOSE, master_secret_payload
from shared.services.integrations import IntegrationPatch, IntegrationService, ListQuery, NewStaticIntegration
from tests.fakes.memory import (
    MemoryAudit,
    MemoryIntegrationAdmin,
    MemoryIntegrations,
    MemorySecretStore,
    RecordingRevoker,
    ScriptedTokenEndpoint,
    StaticDirectory,
)

API_KEY = "sk-test-0123456789abcdefghij"
OPENAI = NewStaticIntegration("openai", {"api_key": API_KEY, "organization": "org-abc"}, "Mine", {"team": "a"})


def vault(service: Any) -> MemorySecretStore:
    """The fake store behind the service's one backend."""
    return cast(MemorySecretStore, service.secrets.default)


class UserinfoEndpoint(ScriptedTokenEndpoint):
    def __init__(self) -> None:
        super().__init__()
        self.userinfo_error: Exception | None = None
        self.tokens_seen: list[str] = []

    def userinfo(self, provider: Provider, access_token: str) -> dict[str, Any]:
        self.tokens_seen.append(access_token)
        if self.userinfo_error is not None:
            raise self.userinfo_error
        return dict(self.userinfo_document)


@pytest.fixture
def service(monkeypatch) -> IntegrationService:
    monkeypatch.setenv("DEMO_CLIENT_ID", "demo-client")
    monkeypatch.setenv("DEMO_CLIENT_SECRET", "demo-local-client-secret")
    monkeypatch.delenv("GITHUB_CLIENT_ID", raising=False)
    clock = FixedClock()
    rows = MemoryIntegrations()
    endpoint = UserinfoEndpoint()
    return IntegrationService(
        settings=load_settings(port=8080, public_base_url=None), catalog=load_catalog(), integrations=rows,
        admin=MemoryIntegrationAdmin(rows, clock), secrets=single(MemorySecretStore()),
        keyring=Keyring({1: new_data_key()}),
        clock=clock, token_endpoint=endpoint, revoker=RecordingRevoker(), directory=StaticDirectory(),
        audit=MemoryAudit(),
    )  # fmt: skip


def oauth_row(service: IntegrationService, entity: str = "entity-1", *, refresh: str | None = "rt-1") -> Integration:
    """A connected `demo` integration, as the connect flow leaves it."""
    now = service.clock.now()
    integration = Integration(
        uuid4(),
        entity,
        "demo",
        CredentialType.OAUTH2,
        Status.ACTIVE,
        now,
        now,
        token_expires_at=now + timedelta(hours=1),
    )
    if refresh is not None:
        integration.secret_ref = secret_id_for("broker-int", integration.id)
        integration.secret_version = vault(service).add_version(
            integration.secret_ref, master_secret_payload(refresh), {}
        )
    integration.access_token_ciphertext, integration.access_token_key_version = service.keyring.seal(
        b"at-1", purpose=ACCESS_TOKEN_PURPOSE, record=str(integration.id)
    )
    service.integrations.add(integration)
    return integration


def test_static_credentials_go_to_the_secret_store_and_never_into_the_row(service):
    created = service.create("entity-1", OPENAI)
    assert (created.status, created.credential_type, created.label) == (Status.ACTIVE, CredentialType.API_KEY, "Mine")
    assert created.secret_ref == secret_id_for("broker-int", created.id)
    stored = json.loads(vault(service).read(created.secret_ref, created.secret_version))
    assert stored == {"credentials": {"api_key": API_KEY, "organization": "org-abc"}}
    row = service.integrations.rows[created.id]
    assert API_KEY not in repr(row.__dict__)
    (event,) = service.integrations.events
    assert (event.action, event.detail["fields"]) == ("integration.create", ["api_key", "organization"])
    assert API_KEY not in repr(event)


@pytest.mark.parametrize(
    ("credentials", "expected"),
    [
        ({}, "missing required field(s) api_key"),
        ({"api_key": "short"}, "credentials.api_key: must be at least 20 characters"),
        ({"api_key": 12345678901234567890}, "credentials.api_key: must be of type string"),
        ({"api_key": API_KEY, "extra": "extra-secret-value"}, "unknown field(s) extra"),
        ({"api_key": API_KEY, "organization": "nope-not-an-org"}, "credentials.organization: must match"),
        ({"api_key": API_KEY + "\x00"}, "credentials.api_key: must not contain control characters"),
    ],
)
def test_credentials_that_break_the_schema_are_refused_without_echoing_them(service, credentials, expected):
    with pytest.raises(BrokerError) as caught:
        service.create("entity-1", NewStaticIntegration("openai", credentials))
    assert (caught.value.code, caught.value.http_status) == ("invalid_credentials", 422)
    assert expected in caught.value.message
    for value in credentials.values():
        assert str(value) not in caught.value.message
    assert service.integrations.rows == {}
    assert vault(service).versions == {}


def test_an_oauth_provider_is_pointed_at_the_connect_flow(service):
    with pytest.raises(BrokerError) as caught:
        service.create("entity-1", NewStaticIntegration("google", {"x": "y"}))
    assert caught.value.code == "use_oauth_start"
    assert "/oauth/start" in caught.value.message


def test_a_failed_row_write_removes_the_new_secret(service):
    service.integrations.fail_next_write = True
    with pytest.raises(DependencyUnavailable):
        service.create("entity-1", OPENAI)
    assert vault(service).versions == {}


def test_listing_pages_through_in_creation_order_with_filters(service):
    created = []
    for _ in range(5):
        created.append(service.create("entity-1", OPENAI).id)
        service.clock.advance(seconds=1)
    basic = service.create("entity-1", NewStaticIntegration("jira-basic", JIRA)).id
    service.create("entity-2", OPENAI)
    seen, token = [], None
    while True:
        page = service.list("entity-1", ListQuery(provider="openai", page_size=2, page_token=token))
        seen += [i.id for i in page.items]
        token = page.next_page_token
        if token is None:
            break
    assert seen == created
    everything = service.list("entity-1", ListQuery(page_size=100))
    assert [i.id for i in everything.items] == [*created, basic]
    assert everything.next_page_token is None
    aliased = service.list("entity-1", ListQuery(provider="atlassian-basic"))
    assert [i.id for i in aliased.items] == [basic]


JIRA = {"site": "https://team.atlassian.net", "username": "me@example.com", "password": "tok"}


def test_a_page_token_only_works_with_the_filters_it_was_issued_for(service):
    for _ in range(3):
        service.create("entity-1", OPENAI)
    token = service.list("entity-1", ListQuery(page_size=1)).next_page_token
    assert token is not None
    for query in (ListQuery(provider="openai", page_token=token), ListQuery(page_token=token[:-2] + "xx")):
        with pytest.raises(BrokerError) as caught:
            service.list("entity-1", query)
        assert (caught.value.code, caught.value.http_status) == ("invalid_page_token", 400)


def test_another_entity_sees_nothing_and_changes_nothing(service):
    created = service.create("entity-1", OPENAI)
    before = dict(service.integrations.rows)
    attempts = [
        lambda: service.get("entity-2", created.id),
        lambda: service.update("entity-2", created.id, IntegrationPatch({"label": "x"})),
        lambda: service.remove("entity-2", created.id),
        lambda: service.check("entity-2", created.id),
        lambda: service.sync("entity-2", created.id),
    ]
    for attempt in attempts:
        with pytest.raises(BrokerError) as caught:
            attempt()
        assert (caught.value.code, caught.value.http_status) == ("integration_not_found", 404)
    assert service.integrations.rows == before
    assert service.list("entity-2", ListQuery()).items == []
    assert vault(service).enabled_versions(created.secret_ref) == [1]


def test_patch_changes_label_config_and_switches_status_between_active_and_inactive(service):
    created = service.create("entity-1", OPENAI)
    updated = service.update("entity-1", created.id, IntegrationPatch({"label": None, "status": "inactive"}))
    assert (updated.label, updated.status, updated.config) == (None, Status.INACTIVE, {"team": "a"})
    updated = service.update("entity-1", created.id, IntegrationPatch({"config": {}, "status": "active"}))
    assert (updated.status, updated.config) == (Status.ACTIVE, {})


def test_patch_refuses_to_leave_a_broker_owned_status(service):
    integration = oauth_row(service)
    service.integrations.rows[integration.id].status = Status.REAUTH_REQUIRED
    with pytest.raises(BrokerError) as caught:
        service.update("entity-1", integration.id, IntegrationPatch({"status": "active"}))
    assert (caught.value.code, caught.value.http_status) == ("invalid_status_transition", 409)
    assert "/oauth/start" in caught.value.message
    assert service.integrations.rows[integration.id].status == Status.REAUTH_REQUIRED
    relabelled = service.update("entity-1", integration.id, IntegrationPatch({"label": "ok"}))
    assert relabelled.label == "ok"


def test_sync_records_the_request_and_limits_the_rate(service):
    created = service.create("entity-1", OPENAI)
    synced = service.sync("entity-1", created.id)
    assert synced.last_sync_at == service.clock.now()
    service.clock.advance(seconds=4)
    with pytest.raises(BrokerError) as caught:
        service.sync("entity-1", created.id)
    assert (caught.value.code, caught.value.http_status) == ("sync_rate_limited", 429)
    assert caught.value.details["retry_after"] == pytest.approx(6)
    service.clock.advance(seconds=6)
    assert service.sync("entity-1", created.id).last_sync_at == service.clock.now()
    service.update("entity-1", created.id, IntegrationPatch({"status": "inactive"}))
    with pytest.raises(BrokerError) as inactive:
        service.sync("entity-1", created.id)
    assert inactive.value.code == "integration_not_active"


def test_delete_revokes_the_refresh_token_destroys_the_secret_and_removes_the_row(service):
    integration = oauth_row(service)
    removal = service.remove("entity-1", integration.id)
    assert (removal.revocation.outcome, removal.revocation.reason) == ("revoked", "refresh_token")
    (request,) = service.revoker.requests
    assert request.url == "http://127.0.0.1:8080/demo/oauth/revoke"
    assert request.form == {"token": "rt-1", "token_type_hint": "refresh_token"}
    assert request.basic_auth == ("demo-client", "demo-local-client-secret")
    assert vault(service).enabled_versions(str(integration.secret_ref)) == []
    assert integration.id not in service.integrations.rows
    actions = [(e.action, e.outcome) for e in service.audit.events + service.integrations.events]
    assert set(actions) == {("integration.revoke", "success"), ("integration.delete", "success")}


def test_delete_revokes_the_rotated_token_kept_in_the_row_when_there_is_one(service):
    """A rotated refresh token the secret store has not taken yet (pending, in the row) is the live one."""
    integration = oauth_row(service)
    row = service.integrations.rows[integration.id]
    row.pending_secret_ciphertext, row.pending_secret_key_version = service.keyring.seal(
        b"rt-2", purpose=PENDING_SECRET_PURPOSE, record=str(integration.id)
    )
    vault(service).fail_next_read = True  # not even needed: the store is not asked
    removal = service.remove("entity-1", integration.id)
    assert (removal.revocation.outcome, removal.revocation.reason) == ("revoked", "refresh_token")
    (request,) = service.revoker.requests
    assert request.form == {"token": "rt-2", "token_type_hint": "refresh_token"}


def test_a_failed_revocation_does_not_block_the_delete_and_is_recorded(service):
    integration = oauth_row(service)
    service.revoker.errors.append(ProviderError("down", oauth_error="http_503", transient=True))
    removal = service.remove("entity-1", integration.id)
    assert (removal.revocation.outcome, removal.revocation.reason) == ("failed", "http_503")
    assert integration.id not in service.integrations.rows
    (revoke_event,) = service.audit.events
    assert (revoke_event.outcome, revoke_event.detail["revocation"]["reason"]) == ("failure", "http_503")


def test_without_a_refresh_token_the_access_token_is_revoked(service):
    integration = oauth_row(service, refresh=None)
    service.remove("entity-1", integration.id)
    (request,) = service.revoker.requests
    assert request.form == {"token": "at-1", "token_type_hint": "access_token"}


def test_static_credentials_are_deleted_without_a_revocation_call(service):
    created = service.create("entity-1", OPENAI)
    removal = service.remove("entity-1", created.id)
    assert removal.revocation.outcome == "not_applicable"
    assert service.revoker.requests == []
    assert vault(service).versions == {}


def test_when_the_secret_cannot_be_deleted_the_row_stays_revoked_for_a_retry(service):
    integration = oauth_row(service)

    def refuse(secret_id: str) -> None:
        raise RuntimeError("secret manager down")

    vault(service).delete = refuse  # type: ignore[method-assign]
    with pytest.raises(DependencyUnavailable):
        service.remove("entity-1", integration.id)
    row = service.integrations.rows[integration.id]
    assert row.status == Status.REVOKED
    assert row.credential_version == integration.credential_version + 1, "an in-flight refresh is fenced out"


def test_check_sends_the_decrypted_access_token_to_userinfo(service):
    integration = oauth_row(service)
    service.integrations.rows[integration.id].status = Status.ERROR
    result = service.check("entity-1", integration.id)
    assert (result.check.method, result.check.result, result.check.verified) == ("userinfo", "ok", True)
    assert service.token_endpoint.tokens_seen == ["at-1"]
    assert result.integration.status == Status.ACTIVE


def test_check_reports_an_expired_token_without_calling_the_provider(service):
    integration = oauth_row(service)
    service.clock.advance(hours=2)
    result = service.check("entity-1", integration.id)
    assert (result.check.result, result.check.verified) == ("expired", False)
    assert "does not refresh" in result.check.message
    assert service.token_endpoint.tokens_seen == []
    assert result.integration.status == Status.ACTIVE


@pytest.mark.parametrize(("refresh", "status"), [("rt-1", Status.ACTIVE), (None, Status.REAUTH_REQUIRED)])
def test_a_refused_token_needs_reauth_only_when_nothing_can_refresh_it(service, refresh, status):
    integration = oauth_row(service, refresh=refresh)
    service.token_endpoint.userinfo_error = ProviderError("401", oauth_error="userinfo_refused", transient=False)
    result = service.check("entity-1", integration.id)
    assert result.check.result == "refused"
    assert service.integrations.rows[integration.id].status == status


def test_a_provider_outage_is_inconclusive_and_changes_nothing(service):
    integration = oauth_row(service)
    service.token_endpoint.userinfo_error = ProviderError("503", oauth_error="userinfo_unavailable", transient=True)
    result = service.check("entity-1", integration.id)
    assert (result.check.result, result.integration.status) == ("inconclusive", Status.ACTIVE)


@pytest.mark.parametrize("oauth_error", ["egress_refused", "discovery_failed", "userinfo_invalid"])
def test_only_a_refusal_of_the_token_is_refused_other_failures_are_inconclusive(service, oauth_error):
    """The broker could not ask (egress rules, discovery) or understand the answer: that says nothing of the token."""
    integration = oauth_row(service, refresh=None)
    service.token_endpoint.userinfo_error = ProviderError("no", oauth_error=oauth_error, transient=False)
    result = service.check("entity-1", integration.id)
    assert (result.check.result, result.integration.status) == ("inconclusive", Status.ACTIVE)
    assert oauth_error in result.check.message


def test_static_credentials_are_checked_honestly_as_not_verifiable(service):
    created = service.create("entity-1", OPENAI)
    result = service.check("entity-1", created.id)
    assert (result.check.method, result.check.result, result.check.verified) == (
        "stored_credentials",
        "not_verifiable",
        False,
    )
    vault(service).destroy_version(created.secret_ref, created.secret_version)
    gone = service.check("entity-1", created.id)
    assert (gone.check.result, gone.integration.status) == ("missing", Status.ERROR)


def test_providers_say_which_are_configured_and_show_no_secret(service):
    infos = {info.provider.id: info for info in service.providers()}
    assert infos["demo"].configured is True
    assert infos["github"].configured is False
    assert infos["openai"].configured is True
    assert "demo-local-client-secret" not in repr(infos)


def test_each_use_case_records_its_event_with_the_row_as_written(service):
    created = service.create("entity-1", OPENAI)
    service.update("entity-1", created.id, IntegrationPatch({"label": "Renamed", "status": "inactive"}))
    refused = oauth_row(service, refresh=None)
    service.token_endpoint.userinfo_error = ProviderError("401", oauth_error="userinfo_refused", transient=False)
    service.check("entity-1", refused.id)
    broken = oauth_row(service)
    service.integrations.rows[broken.id].status = Status.ERROR
    service.token_endpoint.userinfo_error = None
    service.check("entity-1", broken.id)
    service.sync("entity-1", broken.id)
    service.remove("entity-1", broken.id)
    seen = [(e.type, e.data["status"], e.data.get("reason")) for e in service.integrations.outbox]
    assert seen == [
        ("integration.connected", "active", None),
        ("integration.updated", "inactive", None),
        ("integration.reauth_required", "reauth_required", "check_refused"),
        ("integration.recovered", "active", None),
        ("integration.sync_requested", "active", None),
        ("integration.deleted", "revoked", None),
    ]
    assert service.integrations.outbox[1].data["fields"] == ["label", "status"]
    assert API_KEY not in repr(service.integrations.outbox)


def _reconnect(service: IntegrationService, integration_id: Any, access_token: bytes) -> None:
    """What a reconnect (or a secret migration, or a refresh) lands on the row: new credentials, a bumped fence."""
    row = cast(MemoryIntegrations, service.integrations).rows[integration_id]
    row.access_token_ciphertext, row.access_token_key_version = service.keyring.seal(
        access_token, purpose=ACCESS_TOKEN_PURPOSE, record=str(integration_id)
    )
    row.credential_version += 1


def test_a_refusal_of_credentials_replaced_during_the_check_does_not_end_the_new_ones(service):
    """The provider refuses the token the check read, but a reconnect landed meanwhile: the verdict is about old
    credentials, so it must not mark the new ones reauth_required; the check runs again on the row as it is now."""
    integration = oauth_row(service, refresh=None)
    endpoint = service.token_endpoint
    refused = ProviderError("401", oauth_error="userinfo_refused", transient=False)

    def userinfo(provider: Provider, access_token: str) -> dict[str, Any]:
        endpoint.tokens_seen.append(access_token)
        if access_token == "at-1":
            _reconnect(service, integration.id, b"at-2")
            raise refused
        return {"sub": "someone"}

    endpoint.userinfo = userinfo
    result = service.check("entity-1", integration.id)
    assert service.integrations.rows[integration.id].status == Status.ACTIVE
    assert (result.check.result, result.integration.status) == ("ok", Status.ACTIVE)
    assert endpoint.tokens_seen == ["at-1", "at-2"]
    tests = [e for e in [*service.audit.events, *service.integrations.events] if e.action == "integration.test"]
    assert [e.detail["result"] for e in tests] == ["ok"], "one audit event, for the check that counted"


def test_static_credentials_moved_during_the_check_are_read_where_they_are_now(service):
    """A secret migration moved the credentials (and destroyed the old version) between the check's read of the
    row and its read of the secret: that is not "missing", and the row must not become `error`."""
    created = service.create("entity-1", OPENAI)
    store = vault(service)
    read = store.read

    def moving_read(secret_id: str, version: int) -> bytes:
        row = service.integrations.rows[created.id]
        if version == created.secret_version and row.secret_version == created.secret_version:
            payload = read(secret_id, version)
            row.secret_version = store.add_version(secret_id, payload, {})
            row.credential_version += 1
            store.destroy_version(secret_id, version)
        return read(secret_id, version)

    store.read = moving_read  # type: ignore[method-assign]
    result = service.check("entity-1", created.id)
    assert (result.check.result, result.integration.status) == ("not_verifiable", Status.ACTIVE)
    assert service.integrations.rows[created.id].status == Status.ACTIVE
