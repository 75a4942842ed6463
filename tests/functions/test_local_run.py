"""`broker serve` over real HTTP: health, readiness, and the demo provider's OAuth server."""

from __future__ import annotations

import base64
import hashlib
import os
import subprocess
import sys
from urllib.parse import parse_qs, urlsplit

import pytest
import requests

from shared.local.demo_oauth import DEMO_CLIENT_ID, DEMO_CLIENT_SECRET
from tests.support.processes import serving

VERIFIER = "x" * 64
CHALLENGE = base64.urlsafe_b64encode(hashlib.sha256(VERIFIER.encode()).digest()).rstrip(b"=").decode()


def _env(tmp_path) -> dict[str, str]:
    return {
        "LOCAL_DATA_DIR": str(tmp_path / "data"),
        "ENVIRONMENT": "development",
        "SECRET_BACKEND": "database",
    }


@pytest.fixture(scope="module")
def local(tmp_path_factory):
    env = _env(tmp_path_factory.mktemp("run"))
    subprocess.run([sys.executable, "-m", "shared.cli", "migrate"], env={**os.environ, **env}, check=True)
    with serving(["shared.cli", "serve"], env) as base:
        yield base


def test_health_and_ready(local):
    assert requests.get(f"{local}/health", timeout=5).json() == {"status": "ok"}
    ready = requests.get(f"{local}/ready", timeout=5)
    assert ready.status_code == 200
    assert ready.json()["checks"] == {"database": "ok", "secret_store": "ok"}


def test_ready_says_why_when_the_database_is_not_migrated(tmp_path):
    with serving(["shared.cli", "serve"], _env(tmp_path)) as base:
        ready = requests.get(f"{base}/ready", timeout=5)
    assert ready.status_code == 503
    assert ready.json()["checks"]["database"].startswith("unavailable")
    assert "broker migrate" in ready.json()["checks"]["database"]


def test_unknown_path_gets_the_json_error_shape(local):
    response = requests.get(f"{local}/nope", timeout=5)
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "not_found"


def test_a_405_says_what_the_path_allows(local):
    for method, path, allow in [
        ("PUT", "/health", "GET, HEAD, OPTIONS"),
        ("DELETE", "/oauth/start", "OPTIONS, POST"),
        ("POST", "/oauth/callback", "GET"),
        ("PUT", "/integrations", "GET, OPTIONS, POST"),
        ("POST", "/token/x", "GET"),
        ("GET", "/refresh", "POST"),
        ("TRACE", "/providers", "GET, OPTIONS"),
    ]:
        response = requests.request(method, f"{local}{path}", headers={"X-Entity-Id": "u"}, timeout=5)
        assert (response.status_code, response.headers.get("Allow")) == (405, allow), (method, path)
        assert response.json()["error"]["code"] == "method_not_allowed"


def test_demo_provider_flow_over_http(local):
    redirect_uri = f"{local}/oauth/callback"
    params = {
        "client_id": DEMO_CLIENT_ID,
        "redirect_uri": redirect_uri,
        "response_type": "code",
        "scope": "profile",
        "state": "s1",
        "code_challenge": CHALLENGE,
        "code_challenge_method": "S256",
    }
    page = requests.get(f"{local}/demo/oauth/authorize", params=params, timeout=5)
    assert page.status_code == 200
    assert "Approve" in page.text
    decision = requests.post(
        f"{local}/demo/oauth/authorize", data={**params, "login": "bob", "decision": "approve"},
        allow_redirects=False, timeout=5,
    )  # fmt: skip
    assert decision.status_code == 302
    location = decision.headers["Location"]
    assert location.startswith(redirect_uri)
    code = parse_qs(urlsplit(location).query)["code"][0]
    token = requests.post(
        f"{local}/demo/oauth/token",
        data={
            "grant_type": "authorization_code",
            "code": code,
            "redirect_uri": redirect_uri,
            "code_verifier": VERIFIER,
        },
        auth=(DEMO_CLIENT_ID, DEMO_CLIENT_SECRET),
        timeout=5,
    )
    assert token.status_code == 200, token.text
    assert token.headers["Cache-Control"] == "no-store"
    access = token.json()["access_token"]
    me = requests.get(f"{local}/demo/oauth/userinfo", headers={"Authorization": f"Bearer {access}"}, timeout=5)
    assert me.json()["sub"] == "demo|bob"


def test_serve_refuses_production(tmp_path):
    env = {**_env(tmp_path), "ENVIRONMENT": "production", "AUTH_MODE": "dev"}
    result = subprocess.run(
        [sys.executable, "-m", "shared.cli", "serve"],
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 2
    assert "AUTH_MODE: 'dev' is refused when ENVIRONMENT=production" in result.stderr


def test_connect_the_demo_provider_like_a_browser(local):
    """`make run`, then the whole connect flow offline: start, consent page, approve, callback, back to the app."""
    import html
    import re

    with requests.Session() as browser:
        started = browser.post(
            f"{local}/oauth/start",
            json={"provider": "demo", "label": "Demo"},
            headers={"X-Entity-Id": "user-1"},
            timeout=5,
        )
        assert started.status_code == 200, started.text
        consent = browser.get(started.json()["authorization_url"], timeout=5)
        form = {k: html.unescape(v) for k, v in re.findall(r'name="(\w+)" value="([^"]*)"', consent.text)}
        approved = browser.post(
            f"{local}/demo/oauth/authorize", data={**form, "decision": "approve"}, allow_redirects=False, timeout=5
        )
        callback = approved.headers["Location"]
        assert callback.startswith(f"{local}/oauth/callback?")
        back = browser.get(callback, allow_redirects=False, timeout=10)
    assert back.status_code == 302, back.text
    query = parse_qs(urlsplit(back.headers["Location"]).query)
    assert query["status"] == ["connected"]
    assert query["integration_id"][0]
    assert "code=" not in local.output(), "the access log keeps query strings out"


def test_the_local_home_page_is_a_sample_product_using_the_sdk(local):
    page = requests.get(f"{local}/", timeout=5)
    assert page.status_code == 200
    assert 'from "/connect.js"' in page.text
    minted = requests.post(f"{local}/demo/session", json={"entity_id": "user-1"}, timeout=5)
    assert minted.status_code == 200, minted.text
    listed = requests.get(
        f"{local}/integrations", headers={"Authorization": f"Bearer {minted.json()['token']}"}, timeout=5
    )
    assert listed.status_code == 200, listed.text
    assert requests.post(f"{local}/demo/session", json={"entity_id": "a b"}, timeout=5).status_code == 422
