"""Connect sessions, popup flows and their status over real HTTP: oauth_start (which serves /connect*), oauth_callback
and integrations served by functions-framework, PostgreSQL, the local Secret Manager API server and oidc-provider.
Written as attacks too: a tampered or expired session, another entity's flow, an origin that is not allowed."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from html.parser import HTMLParser
from pathlib import Path
from typing import Any
from uuid import UUID

import pytest
import requests
from sqlalchemy import Engine, func, select, update

from shared.adapters.db import engine_for_url
from shared.adapters.orm import AuditEventRow, ConnectSessionRow, OAuthStateRow
from shared.domain.oauth import digest
from tests.fakes.secret_manager_server import LocalSecretManager
from tests.support.broker_env import CLIENT_ID, CLIENT_SECRET, broker_env, provider_file
from tests.support.oidc_provider import OidcProvider, running_oidc_provider
from tests.support.openapi import assert_conforms
from tests.support.postgres import DatabaseFactory, free_port
from tests.support.processes import Served, serving_function

APP = "http://127.0.0.1:9/app/"
ORIGIN = "https://app.example.test"
KEY = "internal-key-for-connect-sessions-0123456789"


class Stack:
    def __init__(self, start: Served, callback: Served, integrations: Served, provider: OidcProvider, engine: Engine):
        self.start, self.callback, self.integrations = start, callback, integrations
        self.provider, self.engine = provider, engine

    def mint(self, entity: str = "entity-a", **body: Any) -> requests.Response:
        payload = {"entity_id": entity, "allowed_origin": ORIGIN, **body}
        return requests.post(
            f"{self.start}/connect/sessions", json=payload, headers={"Authorization": f"Bearer {KEY}"}, timeout=10
        )

    def session(self, entity: str = "entity-a", **body: Any) -> str:
        minted = self.mint(entity, **body)
        assert minted.status_code == 201, minted.text
        return str(minted.json()["token"])

    def begin(self, token: str, **body: Any) -> requests.Response:
        payload = {"provider": "oidc-test", "mode": "popup", **body}
        return requests.post(
            f"{self.start}/oauth/start", json=payload, headers={"Authorization": f"Bearer {token}"}, timeout=10
        )

    def popup_flow(self, token: str, **body: Any) -> tuple[str, requests.Response]:
        """Start a popup flow with `token`, consent at oidc-provider, answer the callback: (flow id, result page)."""
        started = self.begin(token, **body)
        assert started.status_code == 200, started.text
        assert "Set-Cookie" not in started.headers, "a session's flow is bound by its token, not a cookie"
        with requests.Session() as browser:
            url = self.provider.follow_to_callback(started.json()["authorization_url"], self.callback, browser)
            page = browser.get(url, allow_redirects=False, timeout=15)
        return str(started.json()["flow_id"]), page

    def status(self, flow_id: str, token: str | None = None, entity: str | None = None, **query: str) -> Any:
        headers = {"Authorization": f"Bearer {token}"} if token else {"X-Entity-Id": entity or ""}
        return requests.get(f"{self.start}/connect/flows/{flow_id}", params=query, headers=headers, timeout=20)

    def count(self, table: Any) -> int:
        with self.engine.connect() as conn:
            return int(conn.execute(select(func.count()).select_from(table)).scalar_one())


@pytest.fixture(scope="module")
def stack(pg_databases: DatabaseFactory, secret_manager: LocalSecretManager, tmp_path_factory) -> Iterator[Stack]:
    name = pg_databases.create()
    callback_port = free_port()
    callback_base = f"http://127.0.0.1:{callback_port}"
    client = {
        "client_id": CLIENT_ID,
        "client_secret": CLIENT_SECRET,
        "redirect_uris": [f"{callback_base}/oauth/callback"],
    }
    with running_oidc_provider([client], access_token_ttl=600) as provider:
        providers = provider_file(Path(tmp_path_factory.mktemp("catalog")), provider.issuer,
                                  extra={"oidc-other": "    scopes: [openid]\n"})  # fmt: skip
        env = broker_env(
            pg_databases.server.url(name), secret_manager, providers, clients_for=("oidc-test", "oidc-other"),
            PUBLIC_BASE_URL=callback_base, ALLOWED_RETURN_URLS=APP, ALLOWED_ORIGINS=ORIGIN, INTERNAL_API_KEYS=KEY,
            AUTH_MODE="dev", ENVIRONMENT="development",
        )  # fmt: skip
        engine = engine_for_url(env["DATABASE_URL"])
        with (
            serving_function("oauth_start", env) as start,
            serving_function("oauth_callback", env, port=callback_port) as callback,
            serving_function("integrations", env) as integrations,
        ):
            yield Stack(start, callback, integrations, provider, engine)
        engine.dispose()
    pg_databases.drop(name)


@pytest.fixture(autouse=True)
def _fresh(stack: Stack) -> None:
    stack.provider.reset()


class _Result(HTMLParser):
    """The result page's embedded JSON (`<script type="application/json" id="result">`)."""

    def __init__(self) -> None:
        super().__init__()
        self.data: dict[str, Any] | None = None
        self._in = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self._in = tag == "script" and ("id", "result") in attrs

    def handle_data(self, data: str) -> None:
        if self._in:
            self.data = json.loads(data)
            self._in = False


def _result(page: requests.Response) -> dict[str, Any]:
    parser = _Result()
    parser.feed(page.text)
    assert parser.data is not None, page.text[:500]
    return parser.data


def test_a_session_is_minted_for_one_entity_and_only_its_hash_is_stored(stack: Stack) -> None:
    minted = stack.mint("entity-a", allowed_providers=["oidc-test"], label="Work")
    assert minted.status_code == 201, minted.text
    assert_conforms(minted, "POST", "/connect/sessions")
    assert minted.headers["Cache-Control"] == "no-store"
    body = minted.json()
    token = body["token"]
    assert re.fullmatch(r"cs_[A-Za-z0-9_-]{43}", token)
    assert body["connect_url"] == f"{stack.callback}/connect?session={token}"
    expires = datetime.fromisoformat(body["expires_at"])
    assert timedelta(minutes=29) < expires - datetime.now(UTC) <= timedelta(minutes=30)
    with stack.engine.connect() as conn:
        row = conn.execute(select(ConnectSessionRow).where(ConnectSessionRow.token_hash == digest(token))).one()
        audit = conn.execute(select(AuditEventRow).where(AuditEventRow.action == "connect.session")).all()
    assert token not in repr(tuple(row)), "the token itself is never stored"
    assert (row.entity_id, row.allowed_origin, row.allowed_providers) == ("entity-a", ORIGIN, ["oidc-test"])
    assert any(event.detail["session_id"] == str(row.id) and token not in json.dumps(event.detail) for event in audit)


@pytest.mark.parametrize(
    ("headers", "body", "status", "code"),
    [
        ({}, {}, 401, "unauthenticated"),
        ({"Authorization": "Bearer not-the-key-0123456789"}, {}, 401, "unauthenticated"),
        ({"Authorization": f"Bearer {KEY}"}, {"allowed_origin": "https://evil.example"}, 400, "origin_not_allowed"),
        ({"Authorization": f"Bearer {KEY}"}, {"allowed_providers": ["gitlub"]}, 404, "unknown_provider"),
        ({"Authorization": f"Bearer {KEY}"}, {"allowed_providers": []}, 422, "validation_failed"),
        ({"Authorization": f"Bearer {KEY}"}, {"entity_id": "a b"}, 422, "validation_failed"),
        ({"Authorization": f"Bearer {KEY}"}, {"integration_id": "0190a5d0-0000-7000-8000-000000000000"}, 404,
         "integration_not_found"),
        ({"Authorization": f"Bearer {KEY}"}, {"extra": 1}, 422, "validation_failed"),
    ],
)  # fmt: skip
def test_bad_session_requests_are_refused_and_store_nothing(stack: Stack, headers, body, status, code) -> None:
    before = stack.count(ConnectSessionRow)
    payload = {"entity_id": "entity-a", "allowed_origin": ORIGIN, **body}
    refused = requests.post(f"{stack.start}/connect/sessions", json=payload, headers=headers, timeout=10)
    assert (refused.status_code, refused.json()["error"]["code"]) == (status, code)
    assert_conforms(refused, "POST", "/connect/sessions")
    assert stack.count(ConnectSessionRow) == before


def test_a_popup_flow_posts_its_result_to_the_exact_origin_and_the_status_says_connected(stack: Stack) -> None:
    token = stack.session("entity-a")
    assert stack.status("0190a5d0-0000-7000-8000-000000000000", token).status_code == 404
    flow_id, page = stack.popup_flow(token)
    assert page.status_code == 200, page.text[:300]
    assert_conforms(page, "GET", "/oauth/callback")
    csp = page.headers["Content-Security-Policy"]
    assert re.search(r"script-src 'sha256-[A-Za-z0-9+/=]+';", csp)
    assert "frame-ancestors 'none'" in csp
    assert "'unsafe-inline'" not in csp
    assert page.headers["Cross-Origin-Opener-Policy"] == "unsafe-none"  # same-origin would sever the opener
    assert page.headers["Referrer-Policy"] == "no-referrer"
    result = _result(page)
    assert result["origin"] == ORIGIN, "posted to the session's origin, never '*'"
    message = result["message"]
    assert message["type"] == "broker:connect"
    assert message["flow_id"] == flow_id
    assert message["status"] == "connected"
    UUID(message["integration_id"])
    status = stack.status(flow_id, token)
    assert status.json() == {"status": "connected", "integration_id": message["integration_id"]}
    assert_conforms(status, "GET", "/connect/flows/{flow_id}")
    assert stack.status(flow_id, entity="entity-a").json()["status"] == "connected", "the entity's own auth works too"


def test_another_entitys_session_cannot_see_or_act_on_the_flow_or_its_integration(stack: Stack) -> None:
    token_a, token_b = stack.session("entity-a"), stack.session("entity-b")
    flow_id, page = stack.popup_flow(token_a)
    integration_id = _result(page)["message"]["integration_id"]
    assert stack.status(flow_id, token_b).status_code == 404
    assert stack.status(flow_id, token_b).json()["error"]["code"] == "flow_not_found"
    assert stack.status(flow_id, entity="entity-b").status_code == 404
    with_b = {"Authorization": f"Bearer {token_b}"}
    assert (
        requests.get(f"{stack.integrations}/integrations/{integration_id}", headers=with_b, timeout=10).status_code
        == 404
    )
    assert (
        requests.delete(f"{stack.integrations}/integrations/{integration_id}", headers=with_b, timeout=10).status_code
        == 404
    )
    listed = requests.get(f"{stack.integrations}/integrations", headers=with_b, timeout=10).json()["integrations"]
    assert integration_id not in [item["id"] for item in listed]
    reconnect = stack.begin(token_b, integration_id=integration_id)
    assert (reconnect.status_code, reconnect.json()["error"]["code"]) == (404, "integration_not_found")
    page_b = requests.get(f"{stack.start}/connect", params={"session": token_b}, timeout=10)
    assert integration_id not in page_b.text
    page_a = requests.get(f"{stack.start}/connect", params={"session": token_a}, timeout=10)
    assert integration_id in page_a.text  # listed for its own entity, with reconnect and disconnect
    assert f'data-disconnect="{integration_id}"' in page_a.text


def test_a_tampered_or_expired_session_is_refused_with_a_clear_answer(stack: Stack) -> None:
    token = stack.session("entity-a")
    tampered = token[:-1] + ("A" if token[-1] != "A" else "B")
    for bad in (tampered, "cs_short", token + "x"):
        refused = stack.begin(bad)
        assert (refused.status_code, refused.json()["error"]["code"]) == (401, "invalid_session")
        assert "WWW-Authenticate" in refused.headers
        assert stack.status("0190a5d0-0000-7000-8000-000000000000", bad).status_code == 401
        page = requests.get(f"{stack.start}/connect", params={"session": bad}, allow_redirects=False, timeout=10)
        assert (page.status_code, "Location" in page.headers) == (401, False)
        assert "not valid" in page.text
    with stack.engine.begin() as conn:
        conn.execute(update(ConnectSessionRow).where(ConnectSessionRow.token_hash == digest(token))
                     .values(expires_at=datetime.now(UTC) - timedelta(seconds=1)))  # fmt: skip
    expired = stack.begin(token)
    assert (expired.status_code, expired.json()["error"]["code"]) == (401, "session_expired")
    page = requests.get(f"{stack.start}/connect", params={"session": token}, allow_redirects=False, timeout=10)
    assert (page.status_code, "Location" in page.headers) == (401, False)
    assert "This link has expired" in page.text
    assert "<script" not in page.text
    assert_conforms(page, "GET", "/connect")


def test_the_session_limits_what_it_may_start_and_do(stack: Stack) -> None:
    token = stack.session("entity-a", allowed_providers=["oidc-test"])
    other = stack.begin(token, provider="oidc-other")
    assert (other.status_code, other.json()["error"]["code"]) == (403, "session_not_permitted")
    headers = {"Authorization": f"Bearer {token}"}
    static = requests.post(f"{stack.integrations}/integrations", headers=headers, timeout=10,
                           json={"provider": "openai", "credentials": {"api_key": "sk-" + "x" * 30}})  # fmt: skip
    assert (static.status_code, static.json()["error"]["code"]) == (403, "session_not_permitted")
    _flow_id, page = stack.popup_flow(token)
    integration_id = _result(page)["message"]["integration_id"]
    one = f"{stack.integrations}/integrations/{integration_id}"
    patched = requests.patch(one, headers=headers, json={"label": "x"}, timeout=10)
    assert (patched.status_code, patched.json()["error"]["code"]) == (403, "session_not_permitted")
    # A reconnect session offers that one integration, in place.
    again = stack.session("entity-a", integration_id=integration_id)
    _, page = stack.popup_flow(again)
    assert _result(page)["message"]["integration_id"] == integration_id
    assert stack.begin(again, integration_id="0190a5d0-0000-7000-8000-000000000000").status_code == 403


def test_pending_denied_and_expired_flows(stack: Stack) -> None:
    token = stack.session("entity-a")
    started = stack.begin(token)
    flow_id = started.json()["flow_id"]
    assert stack.status(flow_id, token).json() == {"status": "pending"}
    held = stack.status(flow_id, token, wait="1")
    assert held.json() == {"status": "pending"}
    assert held.elapsed >= timedelta(seconds=0.9), "a long poll waits"
    assert stack.status(flow_id, token, wait="x").status_code == 422
    assert stack.status(flow_id, token, other="1").status_code == 400
    with stack.engine.begin() as conn:
        conn.execute(update(OAuthStateRow).where(OAuthStateRow.id == UUID(flow_id))
                     .values(expires_at=datetime.now(UTC) - timedelta(seconds=1)))  # fmt: skip
    assert stack.status(flow_id, token).json() == {"status": "expired"}
    stack.provider.deny_next()
    denied_id, page = stack.popup_flow(token)
    assert _result(page)["message"]["error"] == "access_denied"
    assert "You did not allow access" in page.text
    assert stack.status(denied_id, token).json() == {"status": "failed", "error": "access_denied"}


def test_a_popup_flow_with_an_id_token_posts_to_the_calling_origin_only_when_it_is_allowed(stack: Stack) -> None:
    body = {"provider": "oidc-test", "mode": "popup"}
    for origin, status in ((ORIGIN, 200), ("https://evil.example", 400), (None, 400)):
        headers = {"X-Entity-Id": "entity-a", **({"Origin": origin} if origin else {})}
        started = requests.post(f"{stack.start}/oauth/start", json=body, headers=headers, timeout=10)
        assert started.status_code == status, (origin, started.text)
        if status == 400:
            assert started.json()["error"]["code"] == "origin_not_allowed"


def test_the_connect_page_offers_configured_providers_and_names_an_unconfigured_one_it_was_asked_for(stack: Stack):
    every = requests.get(f"{stack.start}/connect", params={"session": stack.session()}, timeout=10).text
    assert 'data-provider="oidc-test"' in every
    assert 'data-provider="github"' not in every, "a provider without client credentials is not offered"
    named = stack.session(allowed_providers=["github", "oidc-test"])
    page = requests.get(f"{stack.start}/connect", params={"session": named}, timeout=10).text
    assert re.search(r'data-provider="github"[^>]*disabled', page), "named by the session: shown, unavailable"
    assert "Not available: not set up on this service." in page


def test_the_connect_page_is_framed_only_by_the_session_origin_and_the_sdk_is_served(stack: Stack) -> None:
    token = stack.session("entity-a")
    page = requests.get(f"{stack.start}/connect", params={"session": token}, timeout=10)
    assert page.status_code == 200
    csp = page.headers["Content-Security-Policy"]
    assert f"frame-ancestors {ORIGIN}" in csp
    assert "script-src 'self'" in csp
    assert "default-src 'none'" in csp
    assert "unsafe-inline" not in csp
    assert "http" not in csp.split("frame-ancestors")[0].replace("https:", "")
    assert page.headers["Referrer-Policy"] == "no-referrer"
    assert page.headers["Cache-Control"] == "no-store"
    sdk = requests.get(f"{stack.start}/connect.js", timeout=10)
    assert sdk.headers["Content-Type"].startswith("text/javascript")
    assert sdk.headers["Access-Control-Allow-Origin"] == "*"
    assert "export function connect(" in sdk.text
    for asset in ("connect.css", "page.js"):
        assert requests.get(f"{stack.start}/connect/assets/{asset}", timeout=10).status_code == 200
    assert requests.get(f"{stack.start}/connect/assets/../routes.py", timeout=10).status_code == 404
    assert requests.get(f"{stack.start}/connect/nope", timeout=10).json()["error"]["code"] == "not_found"
    assert requests.put(f"{stack.start}/connect", timeout=10).status_code == 405
