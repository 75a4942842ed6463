"""The OAuth test server (oidc-provider over real HTTP) behaves as the broker's tests rely on.

Plain `requests` against tests/oauth_server/server.mjs, started once for the module; the control API is reset
before each test.
"""

from __future__ import annotations

import base64
import hashlib
import json
import secrets
import time
from collections.abc import Iterator
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

import pytest
import requests
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from tests.support.oidc_provider import OidcProvider, running_oidc_provider

CALLBACK = "http://127.0.0.1:9/oauth/callback"  # never requested: follow_to_callback stops at it
BASIC = {"client_id": "basic-client", "client_secret": "basic-secret", "redirect_uris": [CALLBACK]}
POST = {
    "client_id": "post-client",
    "client_secret": "post-secret",
    "redirect_uris": [CALLBACK],
    "token_endpoint_auth_method": "client_secret_post",
}
ACCESS_TOKEN_TTL = 120
SCOPE = "openid email api:read"


@pytest.fixture(scope="module")
def server() -> Iterator[OidcProvider]:
    with running_oidc_provider([BASIC, POST], access_token_ttl=ACCESS_TOKEN_TTL) as running:
        yield running


@pytest.fixture
def op(server: OidcProvider) -> OidcProvider:
    server.reset()
    return server


def _pkce() -> tuple[str, str]:
    verifier = secrets.token_urlsafe(48)
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
    return verifier, challenge


def _authorization_url(op: OidcProvider, client: dict[str, Any], state: str, challenge: str | None) -> str:
    params = {
        "client_id": client["client_id"],
        "response_type": "code",
        "redirect_uri": CALLBACK,
        "scope": SCOPE,
        "state": state,
    }
    if challenge is not None:
        params |= {"code_challenge": challenge, "code_challenge_method": "S256"}
    return f"{op.authorization_endpoint}?{urlencode(params)}"


def _callback(
    op: OidcProvider, client: dict[str, Any] = BASIC, session: requests.Session | None = None
) -> tuple[dict[str, str], str]:
    """Run the authorization; the callback's query parameters (one value each) and the PKCE verifier."""
    verifier, challenge = _pkce()
    state = secrets.token_urlsafe(16)
    url = op.follow_to_callback(_authorization_url(op, client, state, challenge), CALLBACK, session)
    query = {key: values[0] for key, values in parse_qs(urlsplit(url).query).items()}
    assert query.pop("state") == state
    assert query.pop("iss") == op.issuer  # RFC 9207
    return query, verifier


def _token(op: OidcProvider, client: dict[str, Any], timeout: float = 10, **form: str) -> requests.Response:
    if client.get("token_endpoint_auth_method") == "client_secret_post":
        data = {**form, "client_id": client["client_id"], "client_secret": client["client_secret"]}
        return requests.post(op.token_endpoint, data=data, timeout=timeout)
    return requests.post(
        op.token_endpoint, data=form, auth=(client["client_id"], client["client_secret"]), timeout=timeout
    )


def _exchange(op: OidcProvider, client: dict[str, Any], code: str, verifier: str) -> requests.Response:
    return _token(op, client, grant_type="authorization_code", code=code, redirect_uri=CALLBACK, code_verifier=verifier)


def _refresh(op: OidcProvider, refresh_token: str, client: dict[str, Any] = BASIC, **kw: Any) -> requests.Response:
    return _token(op, client, grant_type="refresh_token", refresh_token=refresh_token, **kw)


def _tokens(op: OidcProvider, client: dict[str, Any] = BASIC) -> dict[str, Any]:
    query, verifier = _callback(op, client)
    response = _exchange(op, client, query["code"], verifier)
    assert response.status_code == 200, response.text
    tokens: dict[str, Any] = response.json()
    return tokens


def _b64(segment: str) -> bytes:
    return base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4))


def _verified_id_token(op: OidcProvider, id_token: str) -> dict[str, Any]:
    """The payload of an RS256 id_token whose signature checks out against the server's JWKS."""
    header_b64, payload_b64, signature_b64 = id_token.split(".")
    header = json.loads(_b64(header_b64))
    assert header["alg"] == "RS256"
    jwks = requests.get(op.jwks_uri, timeout=10).json()
    (jwk,) = [key for key in jwks["keys"] if key["kid"] == header["kid"]]
    public = rsa.RSAPublicNumbers(int.from_bytes(_b64(jwk["e"])), int.from_bytes(_b64(jwk["n"]))).public_key()
    signed = f"{header_b64}.{payload_b64}".encode()
    public.verify(_b64(signature_b64), signed, padding.PKCS1v15(), hashes.SHA256())  # raises when forged
    payload: dict[str, Any] = json.loads(_b64(payload_b64))
    return payload


def _userinfo(op: OidcProvider, access_token: str) -> requests.Response:
    return requests.get(op.userinfo_endpoint, headers={"Authorization": f"Bearer {access_token}"}, timeout=10)


@pytest.mark.parametrize("client", [BASIC, POST], ids=["client_secret_basic", "client_secret_post"])
def test_code_flow_with_pkce_issues_access_refresh_and_id_tokens(op: OidcProvider, client: dict[str, Any]) -> None:
    tokens = _tokens(op, client)

    assert tokens["token_type"] == "Bearer"
    assert tokens["expires_in"] == ACCESS_TOKEN_TTL
    assert tokens["refresh_token"]
    assert tokens["access_token"]
    assert "." not in tokens["access_token"], "opaque access tokens"
    assert tokens["scope"].split() == ["openid", "email", "api:read"], "custom scopes are granted and echoed"
    claims = _verified_id_token(op, tokens["id_token"])
    assert claims["iss"] == op.issuer
    assert claims["aud"] == client["client_id"]
    assert claims["sub"] == "alice"
    assert claims["email"] == "alice@example.test"
    info = _userinfo(op, tokens["access_token"])
    assert info.status_code == 200, info.text
    assert info.json()["sub"] == "alice"


def test_authorization_without_pkce_or_with_plain_pkce_is_refused(op: OidcProvider) -> None:
    url = op.follow_to_callback(_authorization_url(op, BASIC, "s1", None), CALLBACK)
    query = parse_qs(urlsplit(url).query)
    assert query["error"] == ["invalid_request"]
    assert "PKCE" in query["error_description"][0]
    assert "code" not in query

    plain = _authorization_url(op, BASIC, "s2", None) + "&code_challenge=" + "a" * 43 + "&code_challenge_method=plain"
    query = parse_qs(urlsplit(op.follow_to_callback(plain, CALLBACK)).query)
    assert query["error"] == ["invalid_request"]
    assert "code" not in query


def test_code_exchange_needs_the_matching_code_verifier(op: OidcProvider) -> None:
    query, verifier = _callback(op)
    response = _token(op, BASIC, grant_type="authorization_code", code=query["code"], redirect_uri=CALLBACK)
    assert response.status_code == 400
    assert response.json()["error"] == "invalid_grant"

    query, verifier = _callback(op)
    assert _exchange(op, BASIC, query["code"], verifier + "x").json()["error"] == "invalid_grant"


def test_refresh_rotates_and_a_used_refresh_token_is_rejected(op: OidcProvider) -> None:
    first = _tokens(op)

    refreshed = _refresh(op, first["refresh_token"])
    assert refreshed.status_code == 200, refreshed.text
    second = refreshed.json()
    assert second["refresh_token"] != first["refresh_token"], "rotated on every refresh"
    assert second["access_token"] != first["access_token"]
    assert second["expires_in"] == ACCESS_TOKEN_TTL

    third = _refresh(op, second["refresh_token"])
    assert third.status_code == 200, third.text

    replay = _refresh(op, first["refresh_token"])
    assert replay.status_code == 400
    assert replay.json()["error"] == "invalid_grant"
    # oidc-provider treats the replay as theft: the whole grant is revoked, the newest refresh token included
    assert _refresh(op, third.json()["refresh_token"]).json()["error"] == "invalid_grant"
    assert op.stats()["grants_revoked"] == 1


def test_wrong_client_secret_is_invalid_client(op: OidcProvider) -> None:
    tokens = _tokens(op)
    for client in (BASIC, POST):
        wrong = {**client, "client_secret": "not-the-secret"}
        response = _refresh(op, tokens["refresh_token"], wrong)
        assert response.status_code == 401, response.text
        assert response.json()["error"] == "invalid_client"
    assert _refresh(op, tokens["refresh_token"]).status_code == 200, "the grant survives a failed client auth"


def test_a_revoked_refresh_token_is_unusable(op: OidcProvider) -> None:
    tokens = _tokens(op)
    form = {"token": tokens["refresh_token"], "token_type_hint": "refresh_token"}
    revoked = requests.post(op.revocation_endpoint, data=form, auth=("basic-client", "basic-secret"), timeout=10)
    assert revoked.status_code == 200, revoked.text

    refreshed = _refresh(op, tokens["refresh_token"])
    assert refreshed.status_code == 400
    assert refreshed.json()["error"] == "invalid_grant"
    introspection = requests.post(
        op.introspection_endpoint,
        data={"token": tokens["access_token"]},
        auth=("basic-client", "basic-secret"),
        timeout=10,
    )
    assert introspection.json() == {"active": False}, "revoking the refresh token revokes its grant"
    stats = op.stats()
    assert stats["revocation"] == {"success": 1, "errors": {}, "revoked": {"RefreshToken": 1}}
    assert stats["grants_revoked"] == 1


def test_injected_500_fails_once_then_the_same_request_succeeds(op: OidcProvider) -> None:
    query, verifier = _callback(op)
    op.fail_token("500")

    failed = _exchange(op, BASIC, query["code"], verifier)
    assert failed.status_code == 500
    assert failed.json()["error"] == "server_error"
    retried = _exchange(op, BASIC, query["code"], verifier)
    assert retried.status_code == 200, "the injected failure never reached the provider: the code is unused"

    stats = op.stats()
    assert stats["token"] == {"authorization_code": {"success": 1, "errors": {"server_error": 1}}}
    assert stats["injected"]["500"] == 1


def test_injected_invalid_grant_and_timeouts(op: OidcProvider) -> None:
    tokens = _tokens(op)
    op.fail_token("invalid_grant", count=2)
    for _ in range(2):
        response = _refresh(op, tokens["refresh_token"])
        assert (response.status_code, response.json()["error"]) == (400, "invalid_grant")

    op.fail_token("timeout", delay_ms=300)
    started = time.monotonic()
    slow = _refresh(op, tokens["refresh_token"])
    assert slow.status_code == 200, slow.text
    assert time.monotonic() - started >= 0.3

    # processed, then answered late: the client gives up and never sees the rotated refresh token
    op.fail_token("timeout", delay_ms=300, after_processing=True)
    with pytest.raises(requests.Timeout):
        _refresh(op, slow.json()["refresh_token"], timeout=0.1)
    assert _refresh(op, slow.json()["refresh_token"]).json()["error"] == "invalid_grant"
    assert op.stats()["injected"] == {"500": 0, "timeout": 2, "invalid_grant": 2, "reply": 0}
    # The late answer is counted when it is sent: wait for it, or it lands in the next test's fresh counters.
    deadline = time.monotonic() + 10
    while op.stats()["token"]["refresh_token"]["success"] < 2 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert op.stats()["token"]["refresh_token"]["success"] == 2


def test_stats_count_token_requests_exactly(op: OidcProvider) -> None:
    query, verifier = _callback(op)
    tokens = _exchange(op, BASIC, query["code"], verifier).json()
    rotated = _refresh(op, tokens["refresh_token"]).json()
    assert _exchange(op, BASIC, query["code"], verifier).status_code == 400  # replayed code: revokes the grant
    assert _refresh(op, rotated["refresh_token"]).status_code == 400
    assert _refresh(op, rotated["refresh_token"], {**BASIC, "client_secret": "wrong"}).status_code == 401
    assert _token(op, BASIC, grant_type="client_credentials").status_code == 400

    stats = op.stats()
    assert stats["token"] == {
        "authorization_code": {"success": 1, "errors": {"invalid_grant": 1}},
        "refresh_token": {"success": 1, "errors": {"invalid_grant": 1, "invalid_client": 1}},
        "client_credentials": {"success": 0, "errors": {"unsupported_grant_type": 1}},
    }
    assert stats["token_requests"] == 6
    assert stats["grants_revoked"] == 1
    assert stats["authorization"] == {"success": 1, "errors": {}}

    op.reset_stats()
    assert op.stats()["token"] == {}
    assert op.stats()["token_requests"] == 0


def test_next_account_changes_the_subject_even_with_the_same_browser(op: OidcProvider) -> None:
    with requests.Session() as browser:
        query, verifier = _callback(op, BASIC, browser)
        alice = _exchange(op, BASIC, query["code"], verifier).json()
        op.next_account("bob")
        query, verifier = _callback(op, BASIC, browser)
        bob = _exchange(op, BASIC, query["code"], verifier).json()

    assert _verified_id_token(op, alice["id_token"])["sub"] == "alice"
    claims = _verified_id_token(op, bob["id_token"])
    assert (claims["sub"], claims["email"]) == ("bob", "bob@example.test")
    assert _userinfo(op, bob["access_token"]).json()["sub"] == "bob"
    assert _refresh(op, alice["refresh_token"]).status_code == 200, "alice's grant is untouched"


def test_deny_next_ends_once_in_access_denied_at_the_redirect_uri(op: OidcProvider) -> None:
    op.deny_next()
    url = op.follow_to_callback(_authorization_url(op, BASIC, "denied-state", _pkce()[1]), CALLBACK)
    assert url.startswith(CALLBACK + "?")
    query = parse_qs(urlsplit(url).query)
    assert query["error"] == ["access_denied"]
    assert query["state"] == ["denied-state"]
    assert "code" not in query

    assert "code" in _callback(op)[0], "only the next authorization is denied"
    assert op.stats()["authorization"] == {"success": 1, "errors": {"access_denied": 1}}
