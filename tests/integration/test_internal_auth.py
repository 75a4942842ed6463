"""Callers of the internal functions: API keys, Google-signed service-account ID tokens, networks."""

from __future__ import annotations

import base64
import json
import time
from collections.abc import Iterator

import flask
import pytest
from werkzeug.test import EnvironBuilder

from shared.adapters.internal_auth import GoogleIdTokens, InternalCallers, SchedulerCaller
from shared.errors import Forbidden, Unauthenticated
from tests.support.id_tokens import TestIssuer, new_key, running_issuer

KEY = "an-internal-api-key-of-some-length"
AUDIENCE = "https://token-fetch.example.run.app"
BACKEND = "backend@proj.iam.gserviceaccount.com"


@pytest.fixture(scope="module")
def issuer() -> Iterator[TestIssuer]:
    with running_issuer() as running:
        yield running


@pytest.fixture
def google(issuer: TestIssuer) -> GoogleIdTokens:
    return GoogleIdTokens(jwks_url=issuer.jwks_url)


def request(headers: dict[str, str] | None = None, remote: str = "10.0.0.5") -> flask.Request:
    builder = EnvironBuilder(headers=list((headers or {}).items()), environ_base={"REMOTE_ADDR": remote})
    return flask.Request(builder.get_environ())


def callers(google: GoogleIdTokens, **kwargs: object) -> InternalCallers:
    options: dict[str, object] = {"invokers": [BACKEND], "audience": AUDIENCE, "cidrs": [], "google": google}
    return InternalCallers([KEY], **{**options, **kwargs})  # type: ignore[arg-type]


def sa_token(signer: TestIssuer, /, *, lifetime: int = 300, key: object = None, **changes: object) -> str:
    claims: dict[str, object] = {"issuer": "https://accounts.google.com", "audience": AUDIENCE, "email": BACKEND}
    claims.update({"email_verified": True, **changes})
    return signer.mint("1234567890", exp_in=lifetime, key=key, **claims)  # type: ignore[arg-type]


def test_api_key_and_service_account_tokens_are_accepted(google, issuer):
    internal = callers(google)
    assert internal.caller(request({"Authorization": f"Bearer {KEY}"})).startswith("apikey:")
    assert KEY not in internal.caller(request({"Authorization": f"Bearer {KEY}"}))
    token = sa_token(issuer)
    assert internal.caller(request({"Authorization": f"Bearer {token}"})) == f"sa:{BACKEND}"


@pytest.mark.parametrize(
    ("changes", "lifetime", "error"),
    [
        ({"audience": "https://other.example"}, 300, Unauthenticated),
        ({"issuer": "https://evil.example"}, 300, Unauthenticated),
        ({}, -120, Unauthenticated),
        ({"email": "intruder@proj.iam.gserviceaccount.com"}, 300, Forbidden),
        ({"email_verified": False}, 300, Forbidden),
    ],
)
def test_bad_identity_tokens_are_refused(google, issuer, changes, lifetime, error):
    token = sa_token(issuer, lifetime=lifetime, **changes)
    with pytest.raises(error):
        callers(google).caller(request({"Authorization": f"Bearer {token}"}))


def test_a_token_signed_by_another_key_is_refused(google, issuer):
    forged = sa_token(issuer, key=new_key())
    with pytest.raises(Unauthenticated, match="not valid"):
        callers(google).caller(request({"Authorization": f"Bearer {forged}"}))


@pytest.mark.parametrize(
    "header",
    [None, "Basic abc", "Bearer ", "Bearer wrong-key", f"Bearer  {KEY}", f"Bearer {KEY} ", f"Bearer\t{KEY}",
     f" Bearer {KEY}", f"Bearer {KEY}\u00a0", f"Bearer {KEY[:10]} {KEY[10:]}", f"Bearer {KEY},{KEY}"],
)  # fmt: skip
def test_missing_or_wrong_credentials(google, header):
    with pytest.raises(Unauthenticated):
        callers(google).caller(request({"Authorization": header} if header else {}))


def test_the_scheme_is_case_insensitive_but_the_key_is_exact(google):
    assert callers(google).caller(request({"Authorization": f"bearer {KEY}"})).startswith("apikey:")


def test_networks_are_checked_on_the_address_cloud_run_reports(google):
    internal = callers(google, cidrs=["10.8.0.0/16"])
    ok = {"Authorization": f"Bearer {KEY}", "X-Forwarded-For": "203.0.113.9, 10.8.1.2"}
    assert internal.caller(request(ok)).startswith("apikey:")
    spoofed = {"Authorization": f"Bearer {KEY}", "X-Forwarded-For": "10.8.1.2, 203.0.113.9"}
    with pytest.raises(Forbidden):
        internal.caller(request(spoofed))
    with pytest.raises(Forbidden):
        internal.caller(request({"Authorization": f"Bearer {KEY}"}, remote="192.0.2.1"))


def test_development_without_keys_is_open_but_production_style_config_is_not(google):
    assert (
        InternalCallers([], invokers=[], audience=None, cidrs=[], open_when_unconfigured=True).caller(request())
        == "dev:unauthenticated"
    )
    with pytest.raises(Unauthenticated):
        InternalCallers([], invokers=[], audience=None, cidrs=[], open_when_unconfigured=False).caller(request())


def test_the_refresh_endpoint_accepts_only_the_scheduler(google, issuer):
    scheduler = "scheduler@proj.iam.gserviceaccount.com"
    only = SchedulerCaller(scheduler, AUDIENCE, google)
    token = sa_token(issuer, email=scheduler)
    assert only.caller(request({"Authorization": f"Bearer {token}"})) == f"sa:{scheduler}"
    with pytest.raises(Forbidden):
        only.caller(request({"Authorization": f"Bearer {sa_token(issuer)}"}))
    with pytest.raises(Unauthenticated):
        only.caller(request({"Authorization": f"Bearer {KEY}"}))


def _stripped(token: str) -> str:
    """What the service sees behind Cloud Run IAM: the platform verified the token and removed its signature."""
    header, payload, _signature = token.split(".")
    return f"{header}.{payload}.SIGNATURE_REMOVED_BY_GOOGLE"


def test_tokens_cloud_run_already_verified_are_accepted_on_their_claims(google, issuer):
    internal = callers(google)
    assert internal.caller(request({"Authorization": f"Bearer {_stripped(sa_token(issuer))}"})) == f"sa:{BACKEND}"
    wrong_audience = _stripped(sa_token(issuer, audience="https://other.example"))
    with pytest.raises(Unauthenticated):
        internal.caller(request({"Authorization": f"Bearer {wrong_audience}"}))
    stranger = _stripped(sa_token(issuer, email="intruder@proj.iam.gserviceaccount.com"))
    with pytest.raises(Forbidden):
        internal.caller(request({"Authorization": f"Bearer {stranger}"}))


def _hand_made(**claims: object) -> str:
    """A token nobody signed, shaped like one Cloud Run verified: what an attacker can write without any key."""

    def part(document: dict[str, object]) -> str:
        return base64.urlsafe_b64encode(json.dumps(document).encode()).rstrip(b"=").decode()

    now = int(time.time())
    payload = {"iss": "https://accounts.google.com", "aud": AUDIENCE, "iat": now, "exp": now + 300,
               "email": BACKEND, "email_verified": True, "sub": "1234567890", **claims}  # fmt: skip
    return f"{part({'alg': 'RS256', 'kid': 'k', 'typ': 'JWT'})}.{part(payload)}.SIGNATURE_REMOVED_BY_GOOGLE"


INTRUDER = "intruder@proj.iam.gserviceaccount.com"  # may invoke the service (Cloud Run IAM) but is not allowed here


def test_with_x_serverless_authorization_a_stripped_token_in_authorization_is_not_trusted(google, issuer):
    """Cloud Run IAM verified X-Serverless-Authorization and passed Authorization through untouched: a hand-made
    signature-stripped token there proves nothing, so the identity is the verified header's alone."""
    verified = _stripped(sa_token(issuer, email=INTRUDER))
    forged = {"X-Serverless-Authorization": f"Bearer {verified}", "Authorization": f"Bearer {_hand_made()}"}
    with pytest.raises(Forbidden):
        callers(google).caller(request(forged))
    scheduler = SchedulerCaller(BACKEND, AUDIENCE, google)
    with pytest.raises(Forbidden):
        scheduler.caller(request(forged))


def test_the_identity_cloud_run_verified_in_x_serverless_authorization_is_the_caller(google, issuer):
    internal = callers(google)
    verified = f"Bearer {_stripped(sa_token(issuer))}"
    assert internal.caller(request({"X-Serverless-Authorization": verified})) == f"sa:{BACKEND}"
    with_key = {"X-Serverless-Authorization": f"Bearer {_stripped(sa_token(issuer, email=INTRUDER))}",
                "Authorization": f"Bearer {KEY}"}  # fmt: skip
    assert internal.caller(request(with_key)).startswith("apikey:")
    scheduler = SchedulerCaller(BACKEND, AUDIENCE, google)
    assert scheduler.caller(request({"X-Serverless-Authorization": verified})) == f"sa:{BACKEND}"
    with pytest.raises(Unauthenticated):
        internal.caller(request({"X-Serverless-Authorization": "Basic abc"}))


def test_a_hand_made_stripped_token_is_refused_on_its_claims_when_they_do_not_hold(google):
    """Without X-Serverless-Authorization the stripped token is the one Cloud Run verified; its claims still count."""
    internal = callers(google)
    assert internal.caller(request({"Authorization": f"Bearer {_hand_made()}"})) == f"sa:{BACKEND}"
    with pytest.raises(Unauthenticated):
        internal.caller(request({"Authorization": f"Bearer {_hand_made(aud='https://other.example')}"}))
