"""`broker integrations list|show|test|refresh|revoke` and `broker audit`: the same services as the API and the
token endpoint, across entities, each audited with the operator as the actor."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from uuid import UUID, uuid4

from sqlalchemy import func, select

from shared.adapters.orm import IntegrationRow, VaultSecretVersionRow
from tests.support.broker_env import connect
from tests.support.engine import current, refresh_grants, set_row

CONTRACT = {"id", "entity_id", "provider", "status", "token_expires_at"}


def test_list_json_keeps_its_contract_and_filters(app, provider, broker):
    first = connect(app, provider, entity="entity-1")
    second = connect(app, provider, entity="entity-2")
    set_row(app, second, token_expires_at=datetime.now(UTC) + timedelta(hours=2), status="reauth_required")

    listed = broker("integrations", "list", "--json")
    assert listed.code == 0, listed.err
    rows = listed.json()
    assert [row["id"] for row in rows] == [first, second], "oldest first, across entities"
    assert all(set(row) >= CONTRACT for row in rows)
    assert rows[0]["entity_id"] == "entity-1"
    assert rows[0]["provider"] == "oidc-test"
    assert rows[0]["status"] == "active"
    assert datetime.fromisoformat(rows[0]["token_expires_at"]) > datetime.now(UTC)

    def ids(*args: str) -> list[str]:
        ran = broker("integrations", "list", "--json", *args)
        assert ran.code == 0, ran.err
        return [row["id"] for row in ran.json()]

    assert ids("--entity", "entity-2") == [second]
    assert ids("--status", "active") == [first]
    assert ids("--expiring-within", "30m") == [first], "the provider's tokens live 10 minutes"
    assert ids("--expiring-within", "2h30m") == [first, second]
    assert ids("--provider", "github") == []


def test_list_prints_a_table_without_secrets(app, provider, broker):
    integration_id = connect(app, provider)
    token = app.token_service.fetch(UUID(integration_id), "test")["access_token"]
    table = broker("integrations", "list")
    assert table.code == 0, table.err
    assert integration_id in table.out
    assert "entity-1" in table.out
    assert "1 integration(s)" in table.out
    assert "in 9m" in table.out or "in 10m" in table.out, "the token expiry, relative"
    assert token not in table.out


def test_show_gives_the_engine_state_and_is_audited_with_the_operator(app, provider, broker):
    integration_id = connect(app, provider)
    token = app.token_service.fetch(UUID(integration_id), "test")["access_token"]
    shown = broker("integrations", "show", integration_id, "--json", "--actor", "alice")
    assert shown.code == 0, shown.err
    view = shown.json()
    assert view["id"] == integration_id
    assert view["credential_version"] == current(app, integration_id).credential_version
    assert view["secret"]["version"] == 1
    assert view["secret"]["backend"] == "database", "the backend that holds it, recorded by the connect"
    assert view["pending_refresh_token"] is False
    assert token not in shown.out
    events = broker("audit", "--json", "--integration", integration_id, "--action", "integration.read").json()
    assert [(e["actor"], e["outcome"]) for e in events] == [("operator:alice", "success")]
    plain = broker("integrations", "show", integration_id)
    assert "credential_version:" in plain.out


def test_test_checks_at_the_provider_and_records_the_operator(app, provider, broker):
    integration_id = connect(app, provider)
    tested = broker("integrations", "test", integration_id, "--actor", "bob")
    assert tested.code == 0, tested.err
    assert tested.out.startswith("ok: the provider accepted the access token")
    assert provider.stats()["userinfo"]["success"] >= 1
    events = broker("audit", "--json", "--action", "integration.test").json()
    assert [(e["actor"], e["integration_id"], e["detail"]["result"]) for e in events] == [
        ("operator:bob", integration_id, "ok")
    ]


def test_refresh_force_refreshes_at_the_provider_through_the_engine(app, provider, broker):
    integration_id = connect(app, provider)
    before = current(app, integration_id)
    provider.reset_stats()
    refreshed = broker("integrations", "refresh", integration_id, "--force", "--json", "--actor", "carol")
    assert refreshed.code == 0, refreshed.err
    assert refreshed.json()["outcome"] == "refreshed"
    assert refresh_grants(provider) == {"success": 1, "errors": {}}
    after = current(app, integration_id)
    assert after.credential_version > before.credential_version
    assert before.secret_version is not None
    assert after.secret_version == before.secret_version + 1, "the rotated token is in the vault"
    assert app.secret_store.enabled_versions(after.secret_ref) == [after.secret_version]
    not_due = broker("integrations", "refresh", integration_id)
    assert (not_due.code, not_due.out.split()[0]) == (0, "not_due")
    events = broker("audit", "--json", "--integration", integration_id, "--since", "1h").json()
    assert [e["action"] for e in events][:4] == [
        "integration.refresh",
        "integration.refresh",
        "secret.version_added",
        "token.refresh",
    ], "the operator's request, then what the engine wrote"
    assert events[1]["actor"] == "operator:carol"
    assert events[1]["detail"] == {"result": "refreshed", "reason": "forced", "force": True}


def test_revoke_revokes_at_the_provider_then_deletes_row_and_secret(app, provider, broker):
    integration_id = connect(app, provider)
    secret_ref = current(app, integration_id).secret_ref
    revoked = broker("integrations", "revoke", integration_id, "--actor", "dave")
    assert revoked.code == 0, revoked.err
    assert revoked.out.strip() == f"deleted {integration_id}; revocation at the provider: revoked (refresh_token)"
    assert provider.stats()["revocation"]["success"] == 1
    with app.engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(IntegrationRow)).scalar() == 0
        versions = select(func.count()).where(VaultSecretVersionRow.secret_id == secret_ref)
        assert conn.execute(versions).scalar() == 0
    events = broker("audit", "--json", "--integration", integration_id).json()
    assert [(e["action"], e["actor"]) for e in events[:2]] == [
        ("integration.delete", "operator:dave"),
        ("integration.revoke", "operator:dave"),
    ]


def test_unknown_and_malformed_ids_are_clear_errors_that_change_nothing(app, provider, broker):
    integration_id = connect(app, provider)
    for action in ("show", "test", "refresh", "revoke"):
        missing = broker("integrations", action, str(uuid4()))
        assert missing.code == 1
        assert missing.err.startswith("broker: integration_not_found: no integration"), missing.err
        assert "Traceback" not in missing.err
    assert len(broker("integrations", "list", "--json").json()) == 1
    assert current(app, integration_id).status.value == "active"


def test_audit_lists_newest_first_and_filters(app, provider, broker):
    one = connect(app, provider, entity="entity-1")
    connect(app, provider, entity="entity-2")
    app.token_service.fetch(UUID(one), "apikey:test")
    everything = broker("audit", "--json").json()
    assert [e["id"] for e in everything] == sorted((e["id"] for e in everything), reverse=True)
    assert {e["action"] for e in everything} >= {"oauth.connect", "token.read"}
    reads = broker("audit", "--json", "--action", "token.read").json()
    assert [(e["actor"], e["integration_id"]) for e in reads] == [("apikey:test", one)]
    assert {e["entity_id"] for e in broker("audit", "--json", "--entity", "entity-2").json()} == {"entity-2"}
    assert broker("audit", "--json", "--limit", "1").json() == everything[:1]
    table = broker("audit", "--since", "1h")
    assert table.code == 0
    assert "token.read" in table.out
    assert "apikey:test" in table.out
