"""Caller authentication settings: AUTH_MODE=oidc needs its issuer and audience; known issuers get their JWKS."""

from __future__ import annotations

import pytest

from shared.adapters.caller_auth import FIREBASE_JWKS, GOOGLE_JWKS, default_jwks_url
from shared.bootstrap import Container
from shared.config import load_settings
from shared.errors import ConfigurationError


def test_oidc_mode_needs_issuer_and_audience():
    with pytest.raises(ConfigurationError) as caught:
        load_settings(auth_mode="oidc")
    assert "AUTH_ISSUER and AUTH_AUDIENCE" in caught.value.message
    with pytest.raises(ConfigurationError):
        load_settings(auth_mode="oidc", auth_issuer="https://accounts.google.com")
    settings = load_settings(auth_mode="oidc", auth_issuer="https://accounts.google.com", auth_audience="a,b")
    assert settings.auth_audience == ["a", "b"]


@pytest.mark.parametrize(
    ("name", "value"),
    [("auth_issuer", "http://issuer.example"), ("auth_jwks_url", "ftp://x"), ("auth_entity_claim", "has space")],
)
def test_bad_auth_values_are_refused_by_name(name, value):
    with pytest.raises(ConfigurationError) as caught:
        load_settings(**{name: value})
    assert name.upper() in caught.value.message


def test_an_empty_jwks_url_means_the_default():
    settings = load_settings(auth_mode="oidc", auth_issuer="https://accounts.google.com", auth_audience="a",
                             auth_jwks_url="")  # fmt: skip
    assert settings.auth_jwks_url is None


def test_production_refuses_dev_auth():
    with pytest.raises(ConfigurationError) as caught:
        load_settings(environment="production")
    assert "AUTH_MODE: 'dev' is refused" in caught.value.message


def test_known_issuers_use_googles_published_keys_and_others_discover_them():
    assert default_jwks_url("https://securetoken.google.com/my-project") == FIREBASE_JWKS
    assert default_jwks_url("https://accounts.google.com") == GOOGLE_JWKS
    assert default_jwks_url("https://tenant.eu.auth0.com/") is None


def test_the_container_picks_the_authenticator_by_mode():
    dev = Container(load_settings())
    assert type(dev.authenticator.inner).__name__ == "DevHeaderAuthenticator"  # behind connect sessions
    oidc = Container(load_settings(auth_mode="oidc", auth_issuer="https://securetoken.google.com/p", auth_audience="p"))
    assert type(oidc.authenticator.inner).__name__ == "OidcAuthenticator"
