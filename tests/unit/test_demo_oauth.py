"""The offline demo authorization server: PKCE, single-use codes, rotating refresh tokens, revocation."""

from __future__ import annotations

import base64
import hashlib
from urllib.parse import parse_qs, urlsplit

import pytest

from shared.domain.clock import FixedClock
from shared.local.demo_oauth import DEMO_CLIENT_ID, DEMO_CLIENT_SECRET, DemoAuthServer, DemoOAuthError

VERIFIER = "v" * 50
CHALLENGE = base64.urlsafe_b64encode(hashlib.sha256(VERIFIER.encode()).digest()).rstrip(b"=").decode()
CLIENT = (DEMO_CLIENT_ID, DEMO_CLIENT_SECRET)
PARAMS = {
    "client_id": DEMO_CLIENT_ID,
    "redirect_uri": "http://127.0.0.1:8080/oauth/callback",
    "response_type": "code",
    "scope": "profile",
    "state": "st",
    "code_challenge": CHALLENGE,
    "code_challenge_method": "S256",
}


def _code(server: DemoAuthServer) -> str:
    query = parse_qs(urlsplit(server.approve(dict(PARAMS), "alice")).query)
    assert query["state"] == ["st"]
    return query["code"][0]


def _exchange(server: DemoAuthServer, code: str, verifier: str = VERIFIER) -> dict[str, object]:
    form = {"grant_type": "authorization_code", "code": code, "redirect_uri": PARAMS["redirect_uri"]}
    return server.token({**form, "code_verifier": verifier}, CLIENT)


def test_code_flow_issues_tokens_and_userinfo():
    server = DemoAuthServer(FixedClock())
    tokens = _exchange(server, _code(server))
    assert tokens["expires_in"] == 3600
    assert server.userinfo(str(tokens["access_token"]))["sub"] == "demo|alice"


def test_codes_are_single_use_and_pkce_is_checked():
    server = DemoAuthServer(FixedClock())
    with pytest.raises(DemoOAuthError, match="code_verifier"):
        _exchange(server, _code(server), verifier="w" * 50)
    code = _code(server)
    _exchange(server, code)
    with pytest.raises(DemoOAuthError) as replay:
        _exchange(server, code)
    assert replay.value.error == "invalid_grant"


def test_refresh_tokens_rotate_and_a_used_one_is_rejected():
    server = DemoAuthServer(FixedClock())
    first = _exchange(server, _code(server))
    second = server.token({"grant_type": "refresh_token", "refresh_token": str(first["refresh_token"])}, CLIENT)
    assert second["refresh_token"] != first["refresh_token"]
    with pytest.raises(DemoOAuthError, match="unknown, used or revoked"):
        server.token({"grant_type": "refresh_token", "refresh_token": str(first["refresh_token"])}, CLIENT)
    assert server.grants == {"authorization_code": 1, "refresh_token": 2}


def test_a_refresh_token_lifetime_is_stated_and_enforced():
    clock = FixedClock()
    server = DemoAuthServer(clock, refresh_token_lifetime=600)
    tokens = _exchange(server, _code(server))
    assert tokens["refresh_token_expires_in"] == 600
    clock.advance(seconds=600)
    with pytest.raises(DemoOAuthError, match="expired"):
        server.token({"grant_type": "refresh_token", "refresh_token": str(tokens["refresh_token"])}, CLIENT)


def test_bad_client_and_missing_pkce_are_refused():
    server = DemoAuthServer(FixedClock())
    with pytest.raises(DemoOAuthError) as bad_client:
        server.token({"grant_type": "refresh_token"}, (DEMO_CLIENT_ID, "wrong"))
    assert (bad_client.value.error, bad_client.value.status) == ("invalid_client", 401)
    with pytest.raises(DemoOAuthError, match="PKCE"):
        server.check_authorization({**PARAMS, "code_challenge_method": "plain"})


def test_access_tokens_expire_and_revocation_ends_the_grant():
    clock = FixedClock()
    server = DemoAuthServer(clock, token_lifetime=60)
    tokens = _exchange(server, _code(server))
    clock.advance(seconds=61)
    with pytest.raises(DemoOAuthError, match="expired"):
        server.userinfo(str(tokens["access_token"]))
    server.revoke(str(tokens["refresh_token"]))
    with pytest.raises(DemoOAuthError):
        server.token({"grant_type": "refresh_token", "refresh_token": str(tokens["refresh_token"])}, CLIENT)


def test_denial_redirects_with_access_denied():
    query = parse_qs(urlsplit(DemoAuthServer(FixedClock()).deny(dict(PARAMS))).query)
    assert query["error"] == ["access_denied"]
    assert query["state"] == ["st"]


def test_the_consent_page_refuses_a_login_its_pattern_refuses():
    """Item 6: Chromium compiles `pattern` with the `v` flag, where `[._-]` is not a valid class, so the browser
    dropped the check; the server must refuse such a login itself (it accepted `alice bob!`)."""
    import flask

    from shared.local.demo_routes import demo_blueprint

    app = flask.Flask("t")
    app.register_blueprint(demo_blueprint(DemoAuthServer(FixedClock())))
    client = app.test_client()
    form = {**PARAMS, "decision": "approve"}
    assert client.post("/demo/oauth/authorize", data={**form, "login": "alice bob!"}).status_code == 400
    assert client.post("/demo/oauth/authorize", data={**form, "login": "x" * 65}).status_code == 400
    assert client.post("/demo/oauth/authorize", data={**form, "login": "alice.b-o_b"}).status_code == 302
    page = client.get("/demo/oauth/authorize", query_string=PARAMS).get_data(as_text=True)
    assert 'pattern="[A-Za-z0-9._\\-]{1,64}"' in page  # valid under the `v` flag
