"""Pure OAuth helpers: token replies classified, expiry rules (the return-URL rule: test_return_urls.py)."""

from __future__ import annotations

import base64
import json
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from shared.domain.models import ClientCredentials
from shared.domain.oauth import code_grant, jwt_expiry, parse_token_reply, refresh_grant, token_request
from shared.errors import ProviderError
from shared.providers.catalog import load_catalog

NOW = datetime(2026, 1, 1, tzinfo=UTC)
CATALOG = load_catalog()
DEMO = CATALOG.get("demo").with_base_url("http://127.0.0.1:8080")


def _jwt(exp: int) -> str:
    def part(doc: dict[str, object]) -> str:
        return base64.urlsafe_b64encode(json.dumps(doc).encode()).rstrip(b"=").decode()

    return f"{part({'alg': 'none'})}.{part({'exp': exp})}.sig"


@pytest.mark.parametrize(
    ("status", "body", "oauth_error", "transient"),
    [
        (500, "oops", "http_500", True),
        (429, "", "http_429", True),
        (503, '{"error": "invalid_grant"}', "http_503", True),
        (400, '{"error": "invalid_grant", "error_description": "used"}', "invalid_grant", False),
        (401, '{"error": "invalid_client"}', "invalid_client", False),
        (400, '{"error": "temporarily_unavailable"}', "temporarily_unavailable", True),
        (200, '{"error": "bad_verification_code"}', "bad_verification_code", False),  # GitHub: errors with a 200
        (200, '{"token_type": "bearer"}', "missing_token", False),
        (404, "<html>not found</html>", "http_404", False),
    ],
)
def test_token_errors_are_classified(status, body, oauth_error, transient):
    with pytest.raises(ProviderError) as caught:
        parse_token_reply(DEMO, status, body, NOW)
    assert (caught.value.oauth_error, caught.value.transient) == (oauth_error, transient)


def test_expiry_prefers_expires_in_then_jwt_exp_then_the_catalog_default():
    body = {"access_token": "a", "token_type": "Bearer", "expires_in": 120, "scope": "profile email"}
    reply = parse_token_reply(DEMO, 200, json.dumps(body), NOW)
    assert reply.expires_at == NOW + timedelta(seconds=120)
    assert reply.scopes == ["profile", "email"]
    jwt_exp = int((NOW + timedelta(minutes=7)).timestamp())
    assert parse_token_reply(DEMO, 200, json.dumps({"access_token": _jwt(jwt_exp)}), NOW).expires_at == NOW + timedelta(
        minutes=7
    )
    assert parse_token_reply(DEMO, 200, '{"access_token": "opaque"}', NOW).expires_at == NOW + timedelta(hours=1)
    forever = replace(DEMO, default_token_lifetime=None)
    assert parse_token_reply(forever, 200, '{"access_token": "opaque"}', NOW).expires_at is None
    assert jwt_expiry("not.a.jwt") is None


def test_form_encoded_replies_and_comma_scopes_are_understood():
    slack = CATALOG.get("slack")
    reply = parse_token_reply(slack, 200, "access_token=a&scope=chat%3Awrite%2Cusers%3Aread&refresh_token=r", NOW)
    assert (reply.access_token, reply.refresh_token, reply.scopes) == ("a", "r", ["chat:write", "users:read"])


def test_client_authentication_follows_the_catalog():
    client = ClientCredentials("cid", "csecret")
    basic = token_request(DEMO, client, code_grant("c", "http://x/cb", "v"))
    assert basic.basic_auth == ("cid", "csecret")
    assert "client_secret" not in basic.data
    assert "csecret" not in repr(basic)
    post = token_request(CATALOG.get("github"), client, code_grant("c", "http://x/cb", None))
    assert (post.basic_auth, post.data["client_secret"], "code_verifier" in post.data) == (None, "csecret", False)


def test_a_refresh_goes_to_the_entry_s_refresh_url_and_a_code_exchange_to_its_token_url():
    client = ClientCredentials("cid", "csecret")
    figma = CATALOG.get("figma")  # Figma spends refresh tokens at an endpoint of its own
    assert token_request(figma, client, refresh_grant("rt")).url == "https://api.figma.com/v1/oauth/refresh"
    assert token_request(figma, client, code_grant("c", "http://x/cb", None)).url == figma.token_url
    github = CATALOG.get("github")
    assert token_request(github, client, refresh_grant("rt")).url == github.token_url


def test_a_relative_refresh_url_is_resolved_against_the_base_url_like_the_other_endpoints():
    entry = replace(CATALOG.get("demo"), refresh_url="/demo/oauth/refresh")
    assert entry.with_base_url("https://broker.example/p").refresh_url == "https://broker.example/p/demo/oauth/refresh"
