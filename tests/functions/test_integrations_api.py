"""The integrations API over real HTTP: the `integrations` function (and the connect flow's two) served by
functions-framework, AUTH_MODE=oidc with ID tokens from a test issuer, real PostgreSQL, the real Secret Manager
client against the local API server, and `oidc-provider` as the OAuth provider. Every answer is checked
against shared/openapi.yaml."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
import requests
from sqlalchemy import Engine, func, select

from shared.adapters.db import engine_for_url
from shared.adapters.gcp_secret_store import GcpSecretManagerStore
from shared.adapters.orm import AuditEventRow, IntegrationRow
from tests.fakes.secret_manager_server import LocalSecretManager
from tests.support.broker_env import CLIENT_ID, CLIENT_SECRET, PROJECT, broker_env, provider_file
from tests.support.id_tokens import TestIssuer, new_key, running_issuer
from tests.support.oidc_provider import OidcProvider, running_oidc_provider
from tests.support.openapi import assert_conforms
from tests.support.postgres import DatabaseFactory, free_port
from tests.support.processes import Served, serving_function

APP = "http://127.0.0.1:9/app/"
ORIGIN = "https://app.example.test"
CLIENT = {"client_id": CLIENT_ID, "client_secret": CLIENT_SECRET}
API_KEY = "sk-live-abcdefghijklmnopqrstuvwxyz012345"
JIRA = {"site": "https://team.atlassian.net", "username": "me@example.com", "password": "jira-api-token-value"}
ID = "/integrations/{integration_id}"


class Api:
    def __init__(self, served: dict[str, Served], issuer: TestIssuer, provider: OidcProvider, engine: Engine, sm):
        self.base, self.start, self.callback = served["integrations"], served["oauth_start"], served["oauth_callback"]
        self.issuer, self.provider, self.engine = issuer, provider, engine
        self.secrets = GcpSecretManagerStore(PROJECT, GcpSecretManagerStore.build_client(sm.grpc_endpoint))

    def call(self, method: str, path: str, template: str, entity: str | None = "alice", **kwargs: Any):
        headers = dict(kwargs.pop("headers", {}))
        if entity is not None:
            headers.setdefault("Authorization", f"Bearer {self.issuer.mint(entity)}")
        response = requests.request(method, self.base + path, headers=headers, timeout=15, **kwargs)
        assert_conforms(response, method, template)
        return response

    def create(self, entity: str = "alice", **body: Any) -> dict[str, Any]:
        payload = {"provider": "openai", "credentials": {"api_key": API_KEY}, **body}
        response = self.call("POST", "/integrations", "/integrations", entity, json=payload)
        assert response.status_code == 201, response.text
        return dict(response.json())

    def connect(self, entity: str = "alice", provider: str = "oidc-test") -> str:
        """The real connect flow: /oauth/start with the caller's ID token, consent at oidc-provider, callback."""
        with requests.Session() as browser:
            started = browser.post(
                f"{self.start}/oauth/start", json={"provider": provider}, timeout=10,
                headers={"Authorization": f"Bearer {self.issuer.mint(entity)}"},
            )  # fmt: skip
            assert started.status_code == 200, started.text
            callback = self.provider.follow_to_callback(started.json()["authorization_url"], self.callback, browser)
            done = browser.get(callback, allow_redirects=False, timeout=15)
        assert done.status_code == 302, done.text
        query = parse_qs(urlsplit(done.headers["Location"]).query)
        assert query["status"] == ["connected"], query
        return query["integration_id"][0]

    def count(self, table: Any = IntegrationRow) -> int:
        with self.engine.connect() as conn:
            return int(conn.execute(select(func.count()).select_from(table)).scalar_one())

    def logs(self) -> str:
        return self.base.output() + self.start.output() + self.callback.output()


@pytest.fixture(scope="module")
def api(pg_databases: DatabaseFactory, secret_manager: LocalSecretManager, tmp_path_factory) -> Iterator[Api]:
    name = pg_databases.create()
    callback_port = free_port()
    callback_base = f"http://127.0.0.1:{callback_port}"
    client = {**CLIENT, "redirect_uris": [f"{callback_base}/oauth/callback"]}
    with running_oidc_provider([client], access_token_ttl=600) as provider, running_issuer() as issuer:
        norevoke = "    scopes: [openid]\n    revocation_url: http://127.0.0.1:9/revoke\n"
        providers = provider_file(
            Path(tmp_path_factory.mktemp("catalog")), provider.issuer, extra={"oidc-norevoke": norevoke}
        )
        env = broker_env(
            pg_databases.server.url(name), secret_manager, providers, clients_for=("oidc-test", "oidc-norevoke"),
            PUBLIC_BASE_URL=callback_base, ALLOWED_RETURN_URLS=APP, ALLOWED_ORIGINS=ORIGIN, AUTH_MODE="oidc",
            AUTH_ISSUER=issuer.url,  # no AUTH_JWKS_URL: found by discovery
            AUTH_AUDIENCE="broker-frontend",
        )  # fmt: skip
        engine = engine_for_url(env["DATABASE_URL"])
        with (
            serving_function("integrations", env) as integrations,
            serving_function("oauth_start", env) as start,
            serving_function("oauth_callback", env, port=callback_port) as callback,
        ):
            served = {"integrations": integrations, "oauth_start": start, "oauth_callback": callback}
            yield Api(served, issuer, provider, engine, secret_manager)
        engine.dispose()
    pg_databases.drop(name)


@pytest.fixture(autouse=True)
def _fresh(api: Api) -> None:
    api.provider.reset()


def test_static_credentials_lifecycle(api):
    created = api.create(label="Prod key", config={"model": "gpt"})
    integration_id = created["id"]
    assert (created["status"], created["credential_type"], created["refreshable"]) == ("active", "api_key", False)
    with api.engine.connect() as conn:
        row = conn.execute(select(IntegrationRow).where(IntegrationRow.id == integration_id)).one()
    assert API_KEY not in repr(tuple(row))
    assert json.loads(api.secrets.read(row.secret_ref, row.secret_version)) == {"credentials": {"api_key": API_KEY}}

    fetched = api.call("GET", f"/integrations/{integration_id}", ID)
    assert fetched.json() == created
    assert "secret" not in fetched.text
    assert API_KEY not in fetched.text
    check = api.call("POST", f"/integrations/{integration_id}/test", ID + "/test").json()["check"]
    assert (check["result"], check["verified"]) == ("not_verifiable", False)
    patched = api.call("PATCH", f"/integrations/{integration_id}", ID, json={"label": None, "status": "inactive"})
    assert (patched.json()["label"], patched.json()["status"]) == (None, "inactive")
    assert api.call("POST", f"/integrations/{integration_id}/sync", ID + "/sync").status_code == 409
    api.call("PATCH", f"/integrations/{integration_id}", ID, json={"status": "active"})
    synced = api.call("POST", f"/integrations/{integration_id}/sync", ID + "/sync")
    assert synced.status_code == 202
    assert synced.json()["last_sync_at"]
    again = api.call("POST", f"/integrations/{integration_id}/sync", ID + "/sync")
    assert again.status_code == 429
    assert int(again.headers["Retry-After"]) >= 1

    deleted = api.call("DELETE", f"/integrations/{integration_id}", ID)
    assert deleted.json()["revocation"]["outcome"] == "not_applicable"
    assert api.call("GET", f"/integrations/{integration_id}", ID).status_code == 404
    assert api.secrets.enabled_versions(row.secret_ref) == []
    assert API_KEY not in api.logs()
    with api.engine.connect() as conn:
        details = " ".join(str(d) for d in conn.execute(select(AuditEventRow.detail)).scalars())
    assert API_KEY not in details


def test_an_oauth_integration_is_tested_at_userinfo_and_its_delete_is_seen_at_the_revocation_endpoint(api):
    integration_id = api.connect("carol")
    view = api.call("GET", f"/integrations/{integration_id}", ID, "carol").json()
    assert (view["credential_type"], view["refreshable"], view["account"]["subject"]) == ("oauth2", True, "alice")
    tested = api.call("POST", f"/integrations/{integration_id}/test", ID + "/test", "carol").json()
    assert tested["check"] == {
        "method": "userinfo", "result": "ok", "verified": True,
        "message": "the provider accepted the access token at its userinfo endpoint",
    }  # fmt: skip
    assert api.provider.stats()["userinfo"]["success"] == 1
    secret_ref = f"broker-int-{integration_id}"
    assert api.secrets.enabled_versions(secret_ref) != []

    deleted = api.call("DELETE", f"/integrations/{integration_id}", ID, "carol").json()
    assert deleted["revocation"] == {"outcome": "revoked", "reason": "refresh_token"}
    revocation = api.provider.stats()["revocation"]
    assert revocation["success"] == 1
    assert revocation["revoked"].get("RefreshToken") == 1
    assert api.secrets.enabled_versions(secret_ref) == []
    assert api.call("GET", f"/integrations/{integration_id}", ID, "carol").status_code == 404
    with api.engine.connect() as conn:
        events = conn.execute(
            select(AuditEventRow.action, AuditEventRow.outcome).where(AuditEventRow.integration_id == integration_id)
        ).all()
    assert ("integration.revoke", "success") in events
    assert ("integration.delete", "success") in events


def test_a_revocation_endpoint_that_fails_does_not_block_the_delete(api):
    integration_id = api.connect("dave", provider="oidc-norevoke")
    deleted = api.call("DELETE", f"/integrations/{integration_id}", ID, "dave")
    assert deleted.status_code == 200
    assert deleted.json()["revocation"] == {"outcome": "failed", "reason": "unreachable"}
    assert api.call("GET", f"/integrations/{integration_id}", ID, "dave").status_code == 404
    with api.engine.connect() as conn:
        detail = conn.execute(
            select(AuditEventRow.detail).where(
                AuditEventRow.integration_id == integration_id, AuditEventRow.action == "integration.revoke"
            )
        ).scalar_one()
    assert detail["revocation"] == {"outcome": "failed", "reason": "unreachable"}


def test_another_entitys_integration_is_a_404_on_every_endpoint_and_nothing_changes(api):
    created = api.create("erin", label="Erin's")
    target = created["id"]
    attempts = [
        ("GET", f"/integrations/{target}", ID, {}),
        ("PATCH", f"/integrations/{target}", ID, {"json": {"label": "mallory"}}),
        ("DELETE", f"/integrations/{target}", ID, {}),
        ("POST", f"/integrations/{target}/test", ID + "/test", {}),
        ("POST", f"/integrations/{target}/sync", ID + "/sync", {}),
    ]
    for method, path, template, kwargs in attempts:
        response = api.call(method, path, template, "mallory", **kwargs)
        assert (response.status_code, response.json()["error"]["code"]) == (404, "integration_not_found"), path
    listed = api.call("GET", "/integrations", "/integrations", "mallory").json()
    assert target not in [i["id"] for i in listed["integrations"]]
    assert api.call("GET", f"/integrations/{target}", ID, "erin").json() == created
    assert api.secrets.enabled_versions(f"broker-int-{target}") == [1]


def test_pagination_across_pages_with_filters(api):
    mine = [api.create("frank")["id"] for _ in range(4)]
    jira = api.create("frank", provider="jira-basic", credentials=JIRA)["id"]
    seen, token = [], None
    for _ in range(10):
        params = {"page_size": 2, "provider": "openai", **({"page_token": token} if token else {})}
        page = api.call("GET", "/integrations", "/integrations", "frank", params=params).json()
        seen += [i["id"] for i in page["integrations"]]
        token = page["next_page_token"]
        if token is None:
            break
    assert seen == mine
    everything = api.call("GET", "/integrations", "/integrations", "frank", params={"page_size": 100}).json()
    assert [i["id"] for i in everything["integrations"]] == [*mine, jira]
    first = api.call("GET", "/integrations", "/integrations", "frank", params={"page_size": 1}).json()
    reused = api.call(
        "GET", "/integrations", "/integrations", "frank",
        params={"page_size": 1, "page_token": first["next_page_token"], "status": "inactive"},
    )  # fmt: skip
    assert (reused.status_code, reused.json()["error"]["code"]) == (400, "invalid_page_token")


LONG = "x" * 10_000
FULLWIDTH_OPENAI = "\uff4f\uff50\uff45\uff4e\uff41\uff49"  # "openai" in fullwidth letters
BAD_LABELS = [
    ({"json": {"provider": "openai", "credentials": {"api_key": API_KEY}, "label": label}}, 422, "validation_failed")
    for label in ("a\u0085b", "\u202egnp.exe", "a\u2067b", "a\u200fb", "a\u2028b")
]
# Numbers JSON cannot carry: PostgreSQL refused them (a 500); SQLite stored them and every later listing answered
# invalid JSON. Integers past 2^53 do not survive a JavaScript reader.
BAD_NUMBERS = [
    (
        {
            "data": b'{"provider": "openai", "credentials": {"api_key": "%s"}, "config": {"n": %s}}'
            % (API_KEY.encode(), number),
            "headers": {"Content-Type": "application/json"},
        },
        422,
        "validation_failed",
    )
    for number in (b"NaN", b"Infinity", b"-Infinity", b"1e400", b"[1, -1e999]", b"9007199254740993")
]


@pytest.mark.parametrize(
    ("kwargs", "status", "code"),
    [
        (
            {"data": b'{"provider": "openai", "credentials": {', "headers": {"Content-Type": "application/json"}},
            400,
            "malformed_json",
        ),
        (
            {"data": b'{"provider": "\\ud800", "credentials": {}}', "headers": {"Content-Type": "application/json"}},
            400,
            "malformed_json",
        ),
        (
            {"data": "provider=openai", "headers": {"Content-Type": "application/x-www-form-urlencoded"}},
            415,
            "unsupported_media_type",
        ),
        ({"json": {"provider": "openai", "credentials": {"api_key": API_KEY}, "extra": 1}}, 422, "validation_failed"),
        ({"json": {"provider": 5, "credentials": {"api_key": API_KEY}}}, 422, "validation_failed"),
        ({"json": {"provider": "openai", "credentials": ["x"]}}, 422, "validation_failed"),
        (
            {"json": {"provider": "openai", "credentials": {"api_key": API_KEY}, "label": LONG}},
            422,
            "validation_failed",
        ),
        (
            {"json": {"provider": "openai", "credentials": {"api_key": API_KEY}, "label": "a\u0000b"}},
            422,
            "validation_failed",
        ),
        (
            {"json": {"provider": "openai", "credentials": {"api_key": API_KEY}, "config": {"k": "\u0000"}}},
            422,
            "validation_failed",
        ),
        (
            {"json": {"provider": "openai", "credentials": {"api_key": API_KEY + "\u202e\u0007"}}},
            422,
            "invalid_credentials",
        ),
        ({"json": {"provider": "openai", "credentials": {"api_key": "x" * 70_000}}}, 413, "payload_too_large"),
        ({"json": {"provider": FULLWIDTH_OPENAI, "credentials": {"api_key": API_KEY}}}, 404, "unknown_provider"),
        ({"json": {"provider": "google", "credentials": {}}}, 400, "use_oauth_start"),
        *BAD_LABELS,
        *BAD_NUMBERS,
    ],
)
def test_bad_create_requests_get_a_4xx_and_change_nothing(api, kwargs, status, code):
    before = (api.count(), api.count(AuditEventRow))
    response = api.call("POST", "/integrations", "/integrations", "grace", **kwargs)
    assert (response.status_code, response.json()["error"]["code"]) == (status, code)
    assert (api.count(), api.count(AuditEventRow)) == before
    assert API_KEY not in response.text


@pytest.mark.parametrize(
    ("body", "status"),
    [({}, 422), ({"status": "revoked"}, 422), ({"status": None}, 422), ({"config": None}, 422),
     ({"label": ""}, 422), ({"unknown": 1}, 422), ({"config": [1]}, 422)],
)  # fmt: skip
def test_bad_patches_change_nothing(api, body, status):
    created = api.create("heidi")
    response = api.call("PATCH", f"/integrations/{created['id']}", ID, "heidi", json=body)
    assert response.status_code == status
    assert api.call("GET", f"/integrations/{created['id']}", ID, "heidi").json() == created


@pytest.mark.parametrize(
    "raw",
    [b'{"config": {"n": NaN}}', b'{"config": {"n": Infinity}}', b'{"config": {"n": [1e400]}}',
     b'{"label": "\\u202eevil"}', b'{"label": "a\\u009bb"}'],
)  # fmt: skip
def test_patches_with_numbers_or_characters_that_cannot_be_kept_change_nothing(api, raw):
    created = api.create("heidi")
    response = api.call(
        "PATCH", f"/integrations/{created['id']}", ID, "heidi", data=raw, headers={"Content-Type": "application/json"}
    )
    assert (response.status_code, response.json()["error"]["code"]) == (422, "validation_failed")
    listed = api.call("GET", "/integrations", "/integrations", "heidi")
    assert listed.status_code == 200
    assert created in listed.json()["integrations"]


@pytest.mark.parametrize("provider", ["\x00", "a\x00b", "\x1b[31m", "\u202e"])
def test_a_list_filter_with_control_characters_is_refused(api, provider):
    response = api.call("GET", "/integrations", "/integrations", "heidi", params={"provider": provider})
    assert (response.status_code, response.json()["error"]["code"]) == (422, "validation_failed")


def test_concurrent_syncs_accept_exactly_one_request(api):
    integration_id = api.create("sybil")["id"]
    barrier = threading.Barrier(8)

    def sync(_: int) -> int:
        headers = {"Authorization": f"Bearer {api.issuer.mint('sybil')}"}
        barrier.wait()
        return requests.post(f"{api.base}/integrations/{integration_id}/sync", headers=headers, timeout=15).status_code

    with ThreadPoolExecutor(max_workers=8) as pool:
        statuses = sorted(pool.map(sync, range(8)))
    assert statuses == [202] + [429] * 7
    with api.engine.connect() as conn:
        requested = conn.execute(
            select(func.count())
            .select_from(AuditEventRow)
            .where(AuditEventRow.integration_id == integration_id, AuditEventRow.action == "integration.sync_requested")
        ).scalar_one()
    assert requested == 1


@pytest.mark.parametrize(
    ("header", "code"),
    [
        (None, "unauthenticated"),
        ("Basic dXNlcjpwYXNz", "unauthenticated"),
        ("Bearer not-a-token", "invalid_token"),
        ("expired", "invalid_token"),
        ("wrong-audience", "invalid_token"),
        ("forged", "invalid_token"),
    ],
)
def test_callers_without_a_valid_id_token_get_a_401_with_a_bearer_challenge(api, header, code):
    tokens = {
        "expired": api.issuer.mint("alice", exp_in=-120),
        "wrong-audience": api.issuer.mint("alice", audience="another-app"),
        "forged": api.issuer.mint("alice", key=new_key()),
    }
    headers = {"Authorization": f"Bearer {tokens[header]}" if header in tokens else header} if header else {}
    for method, path, template in [("GET", "/integrations", "/integrations"), ("GET", "/providers", "/providers")]:
        response = api.call(method, path, template, None, headers=headers)
        assert (response.status_code, response.json()["error"]["code"]) == (401, code)
        assert response.headers["WWW-Authenticate"].startswith("Bearer")


def test_providers_are_listed_for_the_frontend_without_secrets(api):
    response = api.call("GET", "/providers", "/providers", "ivan")
    providers = {p["id"]: p for p in response.json()["providers"]}
    assert providers["oidc-test"]["configured"] is True
    assert providers["github"]["configured"] is False
    assert providers["openai"]["credentials_schema"]["properties"]["api_key"]["writeOnly"] is True
    assert CLIENT["client_secret"] not in response.text


def test_cors_for_listed_origins_only_and_on_errors_too(api):
    preflight = requests.options(
        f"{api.base}/integrations/x", headers={"Origin": ORIGIN, "Access-Control-Request-Method": "PATCH"}, timeout=5
    )
    assert preflight.status_code == 204
    assert preflight.headers["Access-Control-Allow-Origin"] == ORIGIN
    assert "PATCH" in preflight.headers["Access-Control-Allow-Methods"]
    error = api.call("GET", "/integrations", "/integrations", None, headers={"Origin": ORIGIN})
    assert error.headers["Access-Control-Allow-Origin"] == ORIGIN
    stranger = api.call("GET", "/providers", "/providers", "judy", headers={"Origin": "https://evil.example"})
    assert "Access-Control-Allow-Origin" not in stranger.headers


def test_unknown_paths_and_methods(api):
    headers = {"Authorization": f"Bearer {api.issuer.mint('kim')}"}
    unknown = requests.get(f"{api.base}/integrations/a/b/c", headers=headers, timeout=5)
    assert (unknown.status_code, unknown.json()["error"]["code"]) == (404, "not_found")
    put = requests.put(f"{api.base}/integrations", headers=headers, timeout=5)
    assert (put.status_code, put.json()["error"]["code"]) == (405, "method_not_allowed")
    assert put.headers.get("Allow") == "GET, OPTIONS, POST"
    for method, path, allow in [
        ("POST", "/providers", "GET, OPTIONS"),
        ("POST", "/integrations/a", "DELETE, GET, OPTIONS, PATCH"),
        ("GET", "/integrations/a/sync", "OPTIONS, POST"),
        ("DELETE", "/integrations/a/test", "OPTIONS, POST"),
    ]:
        response = requests.request(method, f"{api.base}{path}", headers=headers, timeout=5)
        assert (response.status_code, response.headers.get("Allow")) == (405, allow), (method, path)
    not_uuid = api.call("GET", "/integrations/not-a-uuid", ID, "kim")
    assert not_uuid.json()["error"]["code"] == "integration_not_found"
