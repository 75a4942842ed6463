"""The connect flow over real HTTP: oauth_start and oauth_callback served by functions-framework, a real
PostgreSQL database, the real Secret Manager client against the local API server, and `oidc-provider` from npm
as the provider (strict: PKCE required, codes single use, refresh tokens rotated)."""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit
from uuid import UUID

import grpc
import pytest
import requests
from sqlalchemy import Engine, func, select, update

from shared.adapters.db import engine_for_url
from shared.adapters.gcp_secret_store import GcpSecretManagerStore
from shared.adapters.orm import AuditEventRow, IntegrationRow, OAuthStateRow
from tests.fakes.secret_manager_server import LocalSecretManager
from tests.support.broker_env import CLIENT_ID, CLIENT_SECRET, PROJECT, broker_env, provider_file
from tests.support.oidc_provider import OidcProvider, running_oidc_provider
from tests.support.postgres import DatabaseFactory, free_port
from tests.support.processes import Served, serving_function

APP = "http://127.0.0.1:9/app/"  # the frontend's return URL: never requested, only read
CLIENT = {"client_id": CLIENT_ID, "client_secret": CLIENT_SECRET}


class Broker:
    def __init__(self, start: Served, callback: Served, provider: OidcProvider, engine: Engine, sm: LocalSecretManager):
        self.start_url, self.callback, self.provider, self.engine = start, callback, provider, engine
        self.secrets = GcpSecretManagerStore(PROJECT, GcpSecretManagerStore.build_client(sm.grpc_endpoint))
        self.sm = sm

    def begin(self, browser: requests.Session, entity: str = "entity-1", **body: Any) -> requests.Response:
        payload = {"provider": "oidc-test", **body}
        return browser.post(f"{self.start_url}/oauth/start", json=payload, headers={"X-Entity-Id": entity}, timeout=10)

    def authorize(self, browser: requests.Session, **body: Any) -> str:
        started = self.begin(browser, **body)
        assert started.status_code == 200, started.text
        return self.provider.follow_to_callback(started.json()["authorization_url"], self.callback, browser)

    def finish(self, browser: requests.Session, callback_url: str) -> requests.Response:
        return browser.get(callback_url, allow_redirects=False, timeout=15)

    def connect(self, **body: Any) -> dict[str, str]:
        with requests.Session() as browser:
            response = self.finish(browser, self.authorize(browser, **body))
        assert response.status_code == 302, response.text
        location = response.headers["Location"]
        assert location.startswith(APP)
        return {k: v[0] for k, v in parse_qs(urlsplit(location).query).items()}

    def rows(self) -> list[Any]:
        with self.engine.connect() as conn:
            return list(conn.execute(select(IntegrationRow).order_by(IntegrationRow.created_at)))

    def count_states(self) -> int:
        with self.engine.connect() as conn:
            return int(conn.execute(select(func.count()).select_from(OAuthStateRow)).scalar_one())


@pytest.fixture(scope="module")
def broker(pg_databases: DatabaseFactory, secret_manager: LocalSecretManager, tmp_path_factory) -> Iterator[Broker]:
    name = pg_databases.create()
    callback_port = free_port()
    callback_base = f"http://127.0.0.1:{callback_port}"
    client = {**CLIENT, "redirect_uris": [f"{callback_base}/oauth/callback"]}
    with running_oidc_provider([client], access_token_ttl=600) as provider:
        directory = Path(tmp_path_factory.mktemp("catalog"))
        providers = provider_file(directory, provider.issuer, extra={"oidc-wrong-secret": "    scopes: [openid]\n"})
        env = broker_env(
            pg_databases.server.url(name), secret_manager, providers, clients_for=("oidc-test", "oidc-wrong-secret"),
            OIDC_WRONG_SECRET_CLIENT_SECRET="not-the-right-secret", PUBLIC_BASE_URL=callback_base,
            ALLOWED_RETURN_URLS=APP, PROVIDER_TIMEOUT="1",
        )  # fmt: skip
        engine = engine_for_url(env["DATABASE_URL"])
        with (
            serving_function("oauth_start", env) as start,
            serving_function("oauth_callback", env, port=callback_port) as cb,
        ):
            yield Broker(start, cb, provider, engine, secret_manager)
        engine.dispose()
    pg_databases.drop(name)


@pytest.fixture(autouse=True)
def _fresh(broker: Broker) -> None:
    broker.provider.reset()
    broker.sm.clear_failures()


def test_new_connection_then_reconnect_in_place(broker: Broker) -> None:
    first = broker.connect(label="Work account")
    assert first["status"] == "connected"
    assert first["refreshable"] == "true"
    integration_id = UUID(first["integration_id"])
    row = next(r for r in broker.rows() if r.id == integration_id)
    assert (row.status, row.account_subject, row.account_email, row.label) == (
        "active",
        "alice",
        "alice@example.test",
        "Work account",
    )
    assert row.token_expires_at > datetime.now(UTC) + timedelta(minutes=8)
    assert set(row.granted_scopes) >= {"openid", "email"}
    assert broker.secrets.enabled_versions(row.secret_ref) == [row.secret_version]
    stored = broker.secrets.read(row.secret_ref, row.secret_version)
    assert b"refresh_token" in stored

    again = broker.connect(integration_id=str(integration_id))
    assert again["integration_id"] == str(integration_id)
    updated = next(r for r in broker.rows() if r.id == integration_id)
    assert updated.secret_version == row.secret_version + 1
    assert updated.credential_version == row.credential_version + 1
    assert updated.label == "Work account"
    assert broker.secrets.enabled_versions(row.secret_ref) == [updated.secret_version], "superseded version destroyed"
    assert broker.provider.stats()["token"]["authorization_code"]["success"] == 2


def test_same_account_updates_and_another_account_is_a_second_integration(broker: Broker) -> None:
    broker.provider.next_account("carol")
    first = broker.connect()
    assert broker.connect()["integration_id"] == first["integration_id"]
    broker.provider.next_account("dave")
    second = broker.connect()
    assert second["integration_id"] != first["integration_id"]
    subjects = [r.account_subject for r in broker.rows() if r.account_subject in ("carol", "dave")]
    assert sorted(subjects) == ["carol", "dave"]


def test_replayed_callback_is_refused_without_a_redirect(broker: Broker) -> None:
    with requests.Session() as browser:
        callback = broker.authorize(browser)
        assert broker.finish(browser, callback).status_code == 302
        replay = broker.finish(browser, callback)
    assert replay.status_code == 400
    assert replay.headers["X-Error-Code"] == "state_used"
    assert "Location" not in replay.headers


def test_callback_from_another_browser_is_refused_and_the_right_one_still_finishes(broker: Broker) -> None:
    with requests.Session() as browser, requests.Session() as stranger:
        callback = broker.authorize(browser)
        refused = broker.finish(stranger, callback)
        assert (refused.status_code, refused.headers["X-Error-Code"]) == (400, "state_foreign_browser")
        assert broker.finish(browser, callback).status_code == 302


def test_expired_and_unknown_states_are_refused(broker: Broker) -> None:
    with requests.Session() as browser:
        callback = broker.authorize(browser)
        with broker.engine.begin() as conn:
            conn.execute(update(OAuthStateRow).values(expires_at=datetime.now(UTC) - timedelta(seconds=1)))
        expired = broker.finish(browser, callback)
        params = {"state": secrets.token_urlsafe(32), "code": "x"}
        unknown = browser.get(f"{broker.callback}/oauth/callback", params=params, allow_redirects=False, timeout=5)
    assert (expired.status_code, expired.headers["X-Error-Code"]) == (400, "state_expired")
    assert (unknown.status_code, unknown.headers["X-Error-Code"]) == (400, "state_unknown")


@pytest.mark.parametrize(
    ("body", "status", "code"),
    [
        ({"return_to": "https://evil.example/app/"}, 400, "return_url_not_allowed"),
        ({"provider": "nope"}, 404, "unknown_provider"),
        ({"provider": "github"}, 409, "provider_not_configured"),
        ({"scopes": ["a b"]}, 422, "invalid_scope"),
        ({"integration_id": "00000000-0000-4000-8000-000000000000"}, 404, "integration_not_found"),
        ({"unexpected": 1}, 422, "validation_failed"),
        # Dot segments, plain or percent-encoded, would leave the allowed path once a browser resolves them.
        ({"return_to": APP + "../admin"}, 400, "return_url_not_allowed"),
        ({"return_to": APP + "%2e%2e/admin"}, 400, "return_url_not_allowed"),
        ({"return_to": APP + ".%2E/admin"}, 400, "return_url_not_allowed"),
        ({"return_to": APP + ".."}, 400, "return_url_not_allowed"),
        ({"return_to": APP + "x\\..\\..\\admin"}, 400, "return_url_not_allowed"),
        ({"return_to": APP + "..%2fadmin"}, 400, "return_url_not_allowed"),
        # Crafted hosts and characters: refused, never a 500, and nothing stored (NUL breaks PostgreSQL text).
        ({"return_to": "http://127.0.0.1\uff03.x/app/"}, 400, "return_url_not_allowed"),
        ({"return_to": "http://127.0.0.1\uff0fapp/"}, 400, "return_url_not_allowed"),
        ({"return_to": "http://[127.0.0.1/app/"}, 400, "return_url_not_allowed"),
        ({"return_to": APP + "\u0000"}, 400, "return_url_not_allowed"),
        ({"return_to": APP + "a\u0000b"}, 400, "return_url_not_allowed"),
        ({"return_to": APP + "\u202e"}, 400, "return_url_not_allowed"),
        ({"return_to": APP + "\u0085"}, 400, "return_url_not_allowed"),
        ({"label": "a\u0085b"}, 422, "validation_failed"),
        ({"label": "\u202egnp.exe"}, 422, "validation_failed"),
        ({"label": "a\u2066b"}, 422, "validation_failed"),
    ],
)
def test_bad_start_requests_get_a_stable_error_and_store_nothing(broker: Broker, body, status, code) -> None:
    before = broker.count_states()
    with requests.Session() as browser:
        response = broker.begin(browser, **body)
    assert (response.status_code, response.json()["error"]["code"]) == (status, code)
    assert broker.count_states() == before
    assert "Set-Cookie" not in response.headers


def test_the_return_url_is_normalised_and_the_browser_goes_back_to_the_normalised_url(broker: Broker) -> None:
    back = broker.connect(return_to="HTTP://127.0.0.1:9/app/./done/../x/%2E/?tab=1")
    assert back["status"] == "connected"
    with broker.engine.connect() as conn:
        kept = conn.execute(select(OAuthStateRow.return_to).order_by(OAuthStateRow.created_at.desc())).first()
    assert kept is not None
    assert kept.return_to == APP + "x/?tab=1"


def test_methods_a_function_does_not_serve_get_a_405_with_allow(broker: Broker) -> None:
    for url, method, allow in [
        (f"{broker.start_url}/oauth/start", "GET", "OPTIONS, POST"),
        (f"{broker.start_url}/oauth/start", "DELETE", "OPTIONS, POST"),
        (f"{broker.callback}/oauth/callback", "POST", "GET"),
    ]:
        response = requests.request(method, url, timeout=5)
        assert (response.status_code, response.json()["error"]["code"]) == (405, "method_not_allowed")
        assert response.headers.get("Allow") == allow, (method, url)


def test_start_needs_a_caller(broker: Broker) -> None:
    response = requests.post(f"{broker.start_url}/oauth/start", json={"provider": "oidc-test"}, timeout=5)
    assert (response.status_code, response.json()["error"]["code"]) == (401, "unauthenticated")


def _failed(broker: Broker, provider: str = "oidc-test") -> dict[str, str]:
    before = len(broker.rows())
    back = broker.connect(provider=provider)
    assert len(broker.rows()) == before, "nothing stored"
    return back


def test_access_denied_goes_back_to_the_app_with_the_error(broker: Broker) -> None:
    broker.provider.deny_next()
    back = _failed(broker)
    assert back["error"] == "access_denied"
    assert back["error_description"]


def test_wrong_client_secret(broker: Broker) -> None:
    back = _failed(broker, provider="oidc-wrong-secret")
    assert back["error"] == "provider_error"
    assert "invalid_client" in back["error_description"]


@pytest.mark.parametrize(("mode", "delay"), [("500", 0), ("timeout", 2500)])
def test_token_endpoint_failing_or_slow(broker: Broker, mode: str, delay: int) -> None:
    broker.provider.fail_token(mode, delay_ms=delay)
    back = _failed(broker)
    assert back["error"] == "temporarily_unavailable"


def test_secret_store_failing_after_the_exchange_leaves_no_half_state(broker: Broker) -> None:
    broker.provider.next_account("erin")
    broker.sm.fail_next("AddSecretVersion", grpc.StatusCode.PERMISSION_DENIED)
    back = _failed(broker)
    assert back["error"] == "temporarily_unavailable", "the store refused (a missing grant): the user can only retry"
    assert not [r for r in broker.rows() if r.account_subject == "erin"]
    assert broker.provider.stats()["token"]["authorization_code"]["success"] == 1


def test_nothing_secret_reaches_the_logs_or_the_redirect(broker: Broker) -> None:
    with requests.Session() as browser:
        callback = broker.authorize(browser)
        response = broker.finish(browser, callback)
    query = parse_qs(urlsplit(callback).query)
    code, state = query["code"][0], query["state"][0]
    logs = broker.start_url.output() + broker.callback.output()
    for secret in (code, state, CLIENT["client_secret"]):
        assert secret not in logs
        assert secret not in response.headers["Location"]
    with broker.engine.connect() as conn:
        details = " ".join(str(d) for d in conn.execute(select(AuditEventRow.detail)).scalars())
    assert code not in details
