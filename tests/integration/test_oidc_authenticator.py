"""OidcAuthenticator against a test issuer whose JWKS and discovery document are served over HTTP."""

from __future__ import annotations

from collections.abc import Iterator

import flask
import jwt
import pytest

from shared.adapters import caller_auth
from shared.adapters.caller_auth import OidcAuthenticator
from shared.errors import BrokerError, DependencyUnavailable
from tests.support.id_tokens import AUDIENCE, TestIssuer, new_key, running_issuer


@pytest.fixture
def issuer() -> Iterator[TestIssuer]:
    with running_issuer() as running:
        yield running


def request_with(header: str | None) -> flask.Request:
    app = flask.Flask("test")
    headers = {"Authorization": header} if header is not None else {}
    with app.test_request_context("/integrations", headers=headers):
        return flask.request._get_current_object()  # type: ignore[attr-defined,no-any-return]


def entity(auth: OidcAuthenticator, token: str) -> str:
    return auth.entity_id(request_with(f"Bearer {token}"))


def refused(auth: OidcAuthenticator, header: str | None) -> BrokerError:
    with pytest.raises(BrokerError) as caught:
        auth.entity_id(request_with(header))
    assert caught.value.http_status == 401
    return caught.value


def test_a_valid_id_token_names_the_entity(issuer):
    auth = OidcAuthenticator(issuer.url, [AUDIENCE], jwks_url=issuer.jwks_url)
    assert entity(auth, issuer.mint("user-42")) == "user-42"
    assert entity(auth, issuer.mint("user-43")) == "user-43"
    assert issuer.jwks_requests == 1, "the key set is cached"


def test_the_jwks_is_found_by_discovery_when_not_configured(issuer):
    auth = OidcAuthenticator(issuer.url, [AUDIENCE])
    assert entity(auth, issuer.mint("user-1")) == "user-1"
    assert (issuer.discovery_requests, issuer.jwks_requests) == (1, 1)


def test_the_entity_comes_from_the_configured_claim(issuer):
    auth = OidcAuthenticator(issuer.url, [AUDIENCE], jwks_url=issuer.jwks_url, entity_claim="tenant")
    assert entity(auth, issuer.mint("user-1", tenant="acme")) == "acme"
    assert refused(auth, f"Bearer {issuer.mint('user-1')}").code == "invalid_token"
    assert refused(auth, f"Bearer {issuer.mint('user-1', tenant='has space')}").code == "invalid_token"


def test_missing_or_malformed_headers_are_unauthenticated(issuer):
    auth = OidcAuthenticator(issuer.url, [AUDIENCE], jwks_url=issuer.jwks_url)
    for header in (None, "", "Basic dXNlcjpwYXNz", "Bearer", "Bearer " + "a" * 9000):
        error = refused(auth, header)
        assert error.code in ("unauthenticated", "invalid_token")
    assert refused(auth, "Bearer not-a-jwt").code == "invalid_token"


@pytest.mark.parametrize("subject", ["alice\n", "alice\r\n", "alice\t", "alice\u0085", "\u202ealice", "alice "])
def test_an_entity_claim_with_control_characters_or_spaces_is_refused(issuer, subject):
    auth = OidcAuthenticator(issuer.url, [AUDIENCE], jwks_url=issuer.jwks_url)
    assert entity(auth, issuer.mint("alice")) == "alice"
    assert refused(auth, f"Bearer {issuer.mint(subject)}").code == "invalid_token"


def test_a_bearer_header_with_extra_whitespace_is_refused(issuer):
    auth = OidcAuthenticator(issuer.url, [AUDIENCE], jwks_url=issuer.jwks_url)
    token = issuer.mint("alice")
    for header in (f"Bearer  {token}", f"Bearer\t{token}", f"Bearer {token} "):
        assert refused(auth, header).code == "unauthenticated"


@pytest.mark.parametrize(
    "claims",
    [
        {"exp_in": -120},
        {"audience": "someone-else"},
        {"issuer": "https://accounts.google.com"},
        {"iat": 9999999999},
    ],
)
def test_tokens_that_fail_a_check_are_refused(issuer, claims):
    auth = OidcAuthenticator(issuer.url, [AUDIENCE], jwks_url=issuer.jwks_url)
    error = refused(auth, f"Bearer {issuer.mint('user-1', **claims)}")
    assert error.code == "invalid_token"
    assert error.details["challenge"] == 'Bearer error="invalid_token"'


def test_a_token_signed_by_another_key_is_refused(issuer):
    auth = OidcAuthenticator(issuer.url, [AUDIENCE], jwks_url=issuer.jwks_url)
    forged = issuer.mint("user-1", key=new_key())  # the issuer's kid, someone else's key
    assert refused(auth, f"Bearer {forged}").code == "invalid_token"


def test_symmetric_and_unsigned_tokens_are_refused(issuer):
    auth = OidcAuthenticator(issuer.url, [AUDIENCE], jwks_url=issuer.jwks_url)
    claims = {"iss": issuer.url, "aud": AUDIENCE, "sub": "u", "iat": 0, "exp": 9999999999}
    hs256 = jwt.encode(claims, "a-shared-secret-of-32-bytes-long!", algorithm="HS256", headers={"kid": issuer.kid})
    unsigned = jwt.encode(claims, "", algorithm="none")
    for token in (hs256, unsigned):
        assert refused(auth, f"Bearer {token}").code == "invalid_token"


def test_a_rotated_key_is_picked_up_and_unknown_kids_refetch_at_most_once_a_minute(issuer, monkeypatch):
    auth = OidcAuthenticator(issuer.url, [AUDIENCE], jwks_url=issuer.jwks_url)
    assert entity(auth, issuer.mint("user-1")) == "user-1"
    issuer.rotate()
    assert entity(auth, issuer.mint("user-1")) == "user-1", "the new kid triggers one refetch"
    assert issuer.jwks_requests == 2
    for n in range(5):
        refused(auth, f"Bearer {issuer.mint('user-1', kid=f'forged-{n}')}")
    assert issuer.jwks_requests == 2, "forged kids do not make the broker hammer the issuer"
    monkeypatch.setattr(caller_auth, "REFETCH_INTERVAL", 0.0)
    refused(auth, f"Bearer {issuer.mint('user-1', kid='forged-late')}")
    assert issuer.jwks_requests == 3


def test_an_unreachable_issuer_is_a_503_not_a_401(issuer):
    auth = OidcAuthenticator(issuer.url, [AUDIENCE], jwks_url="http://127.0.0.1:9/jwks", timeout=1)
    with pytest.raises(DependencyUnavailable):
        entity(auth, issuer.mint("user-1"))
