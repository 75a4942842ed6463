"""token_fetch and token_refresh over real HTTP (functions-framework), against oidc-provider and PostgreSQL."""

from __future__ import annotations

import json
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID, uuid4

import pytest
import requests
from sqlalchemy import update

from shared.adapters.orm import IntegrationRow
from shared.bootstrap import Container
from tests.support.broker_env import CLIENT_ID, CLIENT_SECRET, broker_env, connect, in_process_broker, provider_file
from tests.support.oidc_provider import OidcProvider, running_oidc_provider
from tests.support.postgres import DatabaseFactory
from tests.support.processes import Served, serving_function

API_KEY = "internal-key-for-the-tests-0123456789"


class Stack:
    def __init__(self, app: Container, provider: OidcProvider, fetchers: list[Served], refresh: Served) -> None:
        self.app, self.provider, self.fetchers, self.refresh_url = app, provider, fetchers, refresh

    def fetch(
        self, integration_id: str, *, which: int = 0, key: str | None = API_KEY, **params: Any
    ) -> requests.Response:
        headers = {"Authorization": f"Bearer {key}"} if key else {}
        return requests.get(
            f"{self.fetchers[which]}/token/{integration_id}", headers=headers, params=params, timeout=30
        )

    def expire(self, *ids: str) -> None:
        with self.app.engine.begin() as conn:
            past = datetime.now(UTC) - timedelta(seconds=5)
            statement = update(IntegrationRow).where(IntegrationRow.id.in_([UUID(i) for i in ids]))
            conn.execute(statement.values(token_expires_at=past))

    def outputs(self) -> str:
        return "".join(served.output() for served in [*self.fetchers, self.refresh_url])


@pytest.fixture(scope="module")
def stack(pg_databases: DatabaseFactory, secret_manager, tmp_path_factory) -> Iterator[Stack]:
    name = pg_databases.create()
    client = {
        "client_id": CLIENT_ID,
        "client_secret": CLIENT_SECRET,
        "redirect_uris": ["http://127.0.0.1:9/oauth/callback"],
    }
    with running_oidc_provider([client], access_token_ttl=3600) as provider, pytest.MonkeyPatch.context() as mp:
        providers = provider_file(tmp_path_factory.mktemp("catalog"), provider.issuer)
        env = broker_env(pg_databases.server.url(name), secret_manager, providers, INTERNAL_API_KEYS=API_KEY)
        with (
            in_process_broker(env, mp) as app,
            serving_function("token_fetch", env) as one,
            serving_function("token_fetch", env) as two,
            serving_function("token_refresh", env) as refresh,
        ):
            yield Stack(app, provider, [one, two], refresh)
    pg_databases.drop(name)


@pytest.fixture(autouse=True)
def _reset(stack: Stack) -> None:
    stack.provider.reset()


def test_a_valid_token_is_served_with_no_store(stack: Stack) -> None:
    integration_id = connect(stack.app, stack.provider)
    response = stack.fetch(integration_id)
    assert response.status_code == 200, response.text
    body = response.json()
    assert set(body) == {"integration_id", "access_token", "token_type", "expires_at", "scopes"}
    assert response.headers["Cache-Control"] == "no-store"
    me = requests.get(
        stack.provider.userinfo_endpoint, headers={"Authorization": f"Bearer {body['access_token']}"}, timeout=5
    )
    assert me.status_code == 200


@pytest.mark.parametrize(
    ("path", "key", "params", "status", "code"),
    [
        ("{id}", None, {}, 401, "unauthenticated"),
        ("{id}", "wrong-key-wrong-key-wrong-key", {}, 401, "unauthenticated"),
        (str(uuid4()), API_KEY, {}, 404, "integration_not_found"),
        ("not-a-uuid", API_KEY, {}, 404, "integration_not_found"),
        ("{id}", API_KEY, {"min_ttl": "-5"}, 422, "validation_failed"),
        ("{id}", API_KEY, {"force_refresh": "maybe"}, 422, "validation_failed"),
        ("{id}", API_KEY, {"scope": "x"}, 400, "unknown_parameter"),
        # str.isdigit() says yes to these, int() then fails: they were 500s.
        ("{id}", API_KEY, {"min_ttl": "\u00b2"}, 422, "validation_failed"),
        ("{id}", API_KEY, {"min_ttl": "\u2460"}, 422, "validation_failed"),
        ("{id}", API_KEY, {"min_ttl": "\u0663"}, 422, "validation_failed"),
        ("{id}", API_KEY, {"min_ttl": "9" * 5000}, 422, "validation_failed"),
        ("{id}", API_KEY, {"min_ttl": "0" * 5000 + "1"}, 422, "validation_failed"),
        ("{id}", API_KEY, {"min_ttl": " 5"}, 422, "validation_failed"),
        ("{id}", f" {API_KEY}", {}, 401, "unauthenticated"),
    ],
)
def test_bad_requests_get_clear_errors(stack: Stack, path, key, params, status, code) -> None:
    integration_id = connect(stack.app, stack.provider, entity="errors")
    response = stack.fetch(path.format(id=integration_id), key=key, **params)
    assert (response.status_code, response.json()["error"]["code"]) == (status, code)
    if status == 401:
        assert response.headers["WWW-Authenticate"].startswith("Bearer")


def test_only_get_is_allowed(stack: Stack) -> None:
    response = requests.post(
        f"{stack.fetchers[0]}/token/{uuid4()}", headers={"Authorization": f"Bearer {API_KEY}"}, timeout=5
    )
    assert (response.status_code, response.json()["error"]["code"]) == (405, "method_not_allowed")
    assert response.headers.get("Allow") == "GET"
    refresh = requests.get(f"{stack.refresh_url}/refresh", timeout=5)
    assert (refresh.status_code, refresh.headers.get("Allow")) == (405, "POST")


def test_fifty_concurrent_fetches_of_an_expired_token_from_two_processes_refresh_once(stack: Stack) -> None:
    integration_id = connect(stack.app, stack.provider, entity="crowd")
    stack.expire(integration_id)
    stack.provider.reset_stats()
    with ThreadPoolExecutor(max_workers=50) as pool:
        responses = list(pool.map(lambda i: stack.fetch(integration_id, which=i % 2), range(50)))
    assert [r.status_code for r in responses] == [200] * 50, {r.text for r in responses if r.status_code != 200}
    grants = stack.provider.stats()["token"]["refresh_token"]
    assert grants == {"success": 1, "errors": {}}, grants
    tokens = {r.json()["access_token"] for r in responses}
    for token in tokens:  # every caller got a token the provider accepts
        me = requests.get(stack.provider.userinfo_endpoint, headers={"Authorization": f"Bearer {token}"}, timeout=5)
        assert me.status_code == 200


def test_reauth_required_is_a_409_the_caller_can_act_on(stack: Stack) -> None:
    integration_id = connect(stack.app, stack.provider, entity="revoked")
    stack.provider.fail_token("invalid_grant")
    stack.expire(integration_id)
    response = stack.fetch(integration_id)
    assert (response.status_code, response.json()["error"]["code"]) == (409, "reauth_required")


def test_the_refresh_job_refreshes_what_expires_soon(stack: Stack) -> None:
    ids = [connect(stack.app, stack.provider, entity=f"job-{i}") for i in range(3)]
    stack.expire(*ids[:2])
    response = requests.post(f"{stack.refresh_url}/refresh", timeout=60)
    assert response.status_code == 200, response.text
    counts = response.json()
    assert counts["claimed"] >= 2
    assert counts["refreshed"] == counts["claimed"]
    assert set(counts) == {
        "claimed", "refreshed", "failed_transient", "reauth_required", "skipped", "secrets_settled",
        "secrets_pending", "expiring_soon", "duration_ms", "purged", "swept", "events",
    }  # fmt: skip
    assert stack.provider.stats()["token"]["refresh_token"]["success"] == counts["refreshed"]
    again = requests.post(f"{stack.refresh_url}/refresh", timeout=60).json()
    assert again["claimed"] == 0, "refreshed tokens are not due again"


def test_no_refresh_token_or_client_secret_in_any_log_or_response(stack: Stack) -> None:
    integration_id = connect(stack.app, stack.provider, entity="leaks")
    stack.expire(integration_id)
    body = stack.fetch(integration_id).text
    row = stack.app.refresh_store.get(UUID(integration_id))
    assert row is not None
    assert row.secret_ref is not None
    assert row.secret_version is not None
    refresh_token = json.loads(stack.app.secret_store.read(row.secret_ref, row.secret_version))["refresh_token"]
    logs = stack.outputs()
    for secret in (refresh_token, CLIENT_SECRET, API_KEY):
        assert secret not in logs
        assert secret not in body


def _audit(stack: Stack, key: str | None = API_KEY, **params: Any) -> requests.Response:
    headers = {"Authorization": f"Bearer {key}"} if key else {}
    return requests.get(f"{stack.fetchers[1]}/audit", headers=headers, params=params, timeout=30)


def test_refused_token_reads_are_audited_with_the_reason(stack: Stack) -> None:
    integration_id = connect(stack.app, stack.provider, entity="refusals")
    assert stack.fetch(integration_id, key="wrong-key-wrong-key-wrong-key").status_code == 401
    with stack.app.engine.begin() as conn:
        conn.execute(update(IntegrationRow).where(IntegrationRow.id == UUID(integration_id)).values(status="inactive"))
    assert stack.fetch(integration_id).status_code == 409
    events = _audit(stack, integration_id=integration_id, action="token.read").json()["events"]
    assert [(e["actor"], e["outcome"], e["detail"]) for e in events] == [
        ("apikey:" + _key_digest(), "refused", {"reason": "integration_inactive", "status": 409}),
        ("anonymous", "refused", {"reason": "unauthenticated", "status": 401}),
    ]
    assert events[0]["entity_id"] == "refusals"
    assert events[0]["provider"] == "oidc-test"


def _key_digest() -> str:
    import hashlib

    return hashlib.sha256(API_KEY.encode()).hexdigest()[:8]


def test_the_audit_endpoint_pages_newest_first_for_internal_callers_only(stack: Stack) -> None:
    integration_id = connect(stack.app, stack.provider, entity="audited")
    for _ in range(3):
        assert stack.fetch(integration_id).status_code == 200
    page = _audit(stack, integration_id=integration_id, limit="2")
    assert page.status_code == 200, page.text
    assert page.headers["Cache-Control"] == "no-store"
    body = page.json()
    assert len(body["events"]) == 2
    older = _audit(stack, integration_id=integration_id, limit="2", page_token=body["next_page_token"]).json()
    ids = [e["id"] for e in body["events"] + older["events"]]
    assert ids == sorted(ids, reverse=True)
    assert [e["action"] for e in older["events"]][-1] == "oauth.connect", "the first event is the connect"
    since = _audit(stack, integration_id=integration_id, since=datetime.now(UTC).isoformat()).json()
    assert since["events"] == []
    assert _audit(stack, key=None).status_code == 401


@pytest.mark.parametrize(
    ("params", "status", "code"),
    [
        ({"limit": "0"}, 422, "validation_failed"),
        ({"limit": "501"}, 422, "validation_failed"),
        ({"limit": "\u00b2"}, 422, "validation_failed"),
        ({"integration_id": "nope"}, 422, "validation_failed"),
        ({"since": "yesterday"}, 422, "validation_failed"),
        ({"since": "2025-01-31T12:00:00"}, 422, "validation_failed"),
        ({"action": "DROP TABLE"}, 422, "validation_failed"),
        ({"page_token": "abc"}, 400, "invalid_page_token"),
        ({"page_token": "9" * 40}, 400, "invalid_page_token"),
        ({"page_token": "9" * 19}, 400, "invalid_page_token"),  # 19 digits, past BIGINT: was a 500
        ({"page_token": str(2**63)}, 400, "invalid_page_token"),
        ({"entity": "x"}, 400, "unknown_parameter"),
    ],
)
def test_bad_audit_queries_get_clear_errors(stack: Stack, params, status, code) -> None:
    response = _audit(stack, **params)
    assert (response.status_code, response.json()["error"]["code"]) == (status, code)
