"""A Secret Manager outage over real HTTP: every endpoint that touches the secret store answers 503
`secret_store_unavailable` (the connect callback: `error=temporarily_unavailable`), never a 500, and changes nothing
it cannot finish. The functions run in functions-framework against PostgreSQL, oidc-provider and the local Secret
Manager server, whose fault injection (`fail_always`) plays the outage."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit
from uuid import UUID

import grpc
import pytest
import requests
from sqlalchemy import Engine, func, select

from shared.adapters.db import engine_for_url
from shared.adapters.gcp_secret_store import GcpSecretManagerStore
from shared.adapters.orm import AuditEventRow, IntegrationRow
from tests.fakes.secret_manager_server import LocalSecretManager
from tests.support.broker_env import CLIENT_ID, CLIENT_SECRET, PROJECT, broker_env, provider_file
from tests.support.id_tokens import TestIssuer, running_issuer
from tests.support.oidc_provider import OidcProvider, running_oidc_provider
from tests.support.openapi import assert_conforms
from tests.support.postgres import DatabaseFactory, free_port
from tests.support.processes import Served, serving_function

APP = "http://127.0.0.1:9/app/"
INTERNAL_KEY = "internal-key-for-the-outage-tests-0123"
API_KEY = "sk-live-abcdefghijklmnopqrstuvwxyz012345"
ID = "/integrations/{integration_id}"
# api_core retries AccessSecretVersion on UNAVAILABLE until the store's timeout (10 s): INTERNAL fails at once.
READ_OUTAGE = grpc.StatusCode.INTERNAL


class Stack:
    def __init__(self, served: dict[str, Served], issuer: TestIssuer, provider: OidcProvider, engine: Engine, sm):
        self.served, self.issuer, self.provider, self.engine, self.sm = served, issuer, provider, engine, sm
        self.secrets = GcpSecretManagerStore(PROJECT, GcpSecretManagerStore.build_client(sm.grpc_endpoint))

    def call(self, method: str, path: str, template: str, entity: str = "alice", **kwargs: Any) -> requests.Response:
        headers = {"Authorization": f"Bearer {self.issuer.mint(entity)}"}
        response = requests.request(method, self.served["integrations"] + path, headers=headers, timeout=30, **kwargs)
        assert_conforms(response, method, template)
        return response

    def create(self, entity: str = "alice") -> str:
        body = {"provider": "openai", "credentials": {"api_key": API_KEY}}
        response = self.call("POST", "/integrations", "/integrations", entity, json=body)
        assert response.status_code == 201, response.text
        return str(response.json()["id"])

    def connect(self, entity: str = "alice") -> dict[str, list[str]]:
        """The real connect flow; the query the browser is sent back to the application with."""
        with requests.Session() as browser:
            started = browser.post(
                f"{self.served['oauth_start']}/oauth/start", json={"provider": "oidc-test"}, timeout=10,
                headers={"Authorization": f"Bearer {self.issuer.mint(entity)}"},
            )  # fmt: skip
            assert started.status_code == 200, started.text
            callback = self.provider.follow_to_callback(
                started.json()["authorization_url"], self.served["oauth_callback"], browser
            )
            done = browser.get(callback, allow_redirects=False, timeout=30)
        assert done.status_code == 302, done.text
        return parse_qs(urlsplit(done.headers["Location"]).query)

    def fetch(self, integration_id: str) -> requests.Response:
        url = f"{self.served['token_fetch']}/token/{integration_id}"
        response = requests.get(url, headers={"Authorization": f"Bearer {INTERNAL_KEY}"}, timeout=30)
        assert_conforms(response, "GET", "/token/{integration_id}")
        return response

    def count(self, table: Any = IntegrationRow) -> int:
        with self.engine.connect() as conn:
            return int(conn.execute(select(func.count()).select_from(table)).scalar_one())

    def audit(self, integration_id: str) -> list[tuple[str, str, dict[str, Any]]]:
        with self.engine.connect() as conn:
            rows = conn.execute(
                select(AuditEventRow.action, AuditEventRow.outcome, AuditEventRow.detail)
                .where(AuditEventRow.integration_id == UUID(integration_id))
                .order_by(AuditEventRow.id)
            ).all()
        return [(row.action, row.outcome, row.detail) for row in rows]

    def logs(self) -> str:
        return "".join(served.output() for served in self.served.values())


@pytest.fixture(scope="module")
def stack(pg_databases: DatabaseFactory, secret_manager: LocalSecretManager, tmp_path_factory) -> Iterator[Stack]:
    name = pg_databases.create()
    callback_port = free_port()
    callback_base = f"http://127.0.0.1:{callback_port}"
    redirect = f"{callback_base}/oauth/callback"
    client = {"client_id": CLIENT_ID, "client_secret": CLIENT_SECRET, "redirect_uris": [redirect]}
    with running_oidc_provider([client], access_token_ttl=600) as provider, running_issuer() as issuer:
        providers = provider_file(Path(tmp_path_factory.mktemp("catalog")), provider.issuer)
        env = broker_env(
            pg_databases.server.url(name), secret_manager, providers, PUBLIC_BASE_URL=callback_base,
            ALLOWED_RETURN_URLS=APP, AUTH_MODE="oidc", AUTH_ISSUER=issuer.url, AUTH_AUDIENCE="broker-frontend",
            INTERNAL_API_KEYS=INTERNAL_KEY,
        )  # fmt: skip
        engine = engine_for_url(env["DATABASE_URL"])
        with (
            serving_function("integrations", env) as integrations,
            serving_function("oauth_start", env) as start,
            serving_function("oauth_callback", env, port=callback_port) as callback,
            serving_function("token_fetch", env) as token_fetch,
        ):
            served = {"integrations": integrations, "oauth_start": start, "oauth_callback": callback,
                      "token_fetch": token_fetch}  # fmt: skip
            yield Stack(served, issuer, provider, engine, secret_manager)
        engine.dispose()
    pg_databases.drop(name)


@pytest.fixture(autouse=True)
def _fresh(stack: Stack) -> Iterator[None]:
    stack.provider.reset()
    yield
    stack.sm.clear_failures()  # an outage never outlives its test


def _unavailable(response: requests.Response) -> None:
    assert (response.status_code, response.json()["error"]["code"]) == (503, "secret_store_unavailable"), response.text
    assert response.headers["Cache-Control"] == "no-store"


def test_delete_while_the_store_cannot_be_read_revokes_what_it_can_keeps_the_secret_and_answers_503(stack):
    query = stack.connect("alice")
    integration_id = query["integration_id"][0]
    secret_ref = f"broker-int-{integration_id}"

    stack.sm.fail_always("AccessSecretVersion", READ_OUTAGE)
    failed = stack.call("DELETE", f"/integrations/{integration_id}", ID)
    _unavailable(failed)
    stats = stack.provider.stats()
    assert stats["revocation"]["revoked"] == {"AccessToken": 1}, "the access token (in the row) is revoked anyway"
    action, outcome, detail = stack.audit(integration_id)[-1]
    assert (action, outcome) == ("integration.revoke", "success")
    assert detail == {"revocation": {"outcome": "revoked", "reason": "access_token"}, "refresh_token": "unreadable"}
    kept = stack.call("GET", f"/integrations/{integration_id}", ID).json()
    assert kept["status"] == "revoked", "the row stays, fenced, for a retried DELETE"
    stack.sm.clear_failures()
    assert stack.secrets.enabled_versions(secret_ref) == [1], "the refresh token is kept until its grant is revoked"
    refresh_token = json.loads(stack.secrets.read(secret_ref, 1))["refresh_token"]
    grant = {"grant_type": "refresh_token", "refresh_token": refresh_token}
    refused = requests.post(stack.provider.token_endpoint, data=grant, auth=(CLIENT_ID, CLIENT_SECRET), timeout=10)
    assert refused.json()["error"] == "invalid_grant", "oidc-provider ends a grant with any of its tokens"

    retried = stack.call("DELETE", f"/integrations/{integration_id}", ID)
    assert retried.status_code == 200, retried.text
    assert retried.json()["revocation"] == {"outcome": "revoked", "reason": "refresh_token"}
    assert stack.provider.stats()["revocation"]["success"] == 2, "the refresh token was sent too (RFC 7009: 200)"
    assert stack.secrets.enabled_versions(secret_ref) == []
    assert stack.call("GET", f"/integrations/{integration_id}", ID).status_code == 404


def test_delete_while_the_secret_cannot_be_deleted_answers_503_and_a_retry_finishes(stack):
    integration_id = stack.create("bob")
    stack.sm.fail_always("DeleteSecret", grpc.StatusCode.UNAVAILABLE)
    _unavailable(stack.call("DELETE", f"/integrations/{integration_id}", ID, "bob"))
    assert stack.call("GET", f"/integrations/{integration_id}", ID, "bob").json()["status"] == "revoked"
    stack.sm.clear_failures()
    assert stack.call("DELETE", f"/integrations/{integration_id}", ID, "bob").status_code == 200
    assert stack.call("GET", f"/integrations/{integration_id}", ID, "bob").status_code == 404


def test_creating_static_credentials_while_the_store_is_down_answers_503_and_stores_nothing(stack):
    before = (stack.count(), stack.count(AuditEventRow))
    stack.sm.fail_always("AddSecretVersion", grpc.StatusCode.UNAVAILABLE)
    body = {"provider": "openai", "credentials": {"api_key": API_KEY}}
    response = stack.call("POST", "/integrations", "/integrations", "carol", json=body)
    _unavailable(response)
    assert API_KEY not in response.text
    assert (stack.count(), stack.count(AuditEventRow)) == before


def test_testing_static_credentials_while_the_store_is_down_answers_503_and_keeps_the_status(stack):
    integration_id = stack.create("dave")
    stack.sm.fail_always("AccessSecretVersion", READ_OUTAGE)
    _unavailable(stack.call("POST", f"/integrations/{integration_id}/test", ID + "/test", "dave"))
    stack.sm.clear_failures()
    assert stack.call("GET", f"/integrations/{integration_id}", ID, "dave").json()["status"] == "active"
    assert [action for action, _, _ in stack.audit(integration_id)] == ["integration.create"]


def test_fetching_static_credentials_while_the_store_is_down_answers_503(stack):
    integration_id = stack.create("erin")
    stack.sm.fail_always("AccessSecretVersion", READ_OUTAGE)
    _unavailable(stack.fetch(integration_id))
    stack.sm.clear_failures()
    served = stack.fetch(integration_id)
    assert served.status_code == 200, served.text
    assert served.json()["credentials"] == {"api_key": API_KEY}


def test_connecting_while_the_store_is_down_sends_the_browser_back_with_temporarily_unavailable(stack):
    before = stack.count()
    stack.sm.fail_always("AddSecretVersion", grpc.StatusCode.UNAVAILABLE)
    query = stack.connect("frank")
    assert query["error"] == ["temporarily_unavailable"], query
    assert "integration_id" not in query
    assert stack.count() == before
    assert "Traceback" not in stack.logs()
