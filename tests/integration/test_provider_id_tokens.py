"""ID tokens of catalog entries: `iss` is always checked, also for entries without discovery (a real JWKS served
on 127.0.0.1, PyJWT verifying)."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import pytest

from shared.adapters.http_oauth import HttpTokenEndpoint
from shared.adapters.oidc import OidcProviders
from shared.errors import ProviderError
from shared.providers.catalog import Provider
from tests.support.id_tokens import TestIssuer, running_issuer

CLIENT = "client-1"
EVIL = "https://evil.example/"


@pytest.fixture
def issuer() -> Iterator[TestIssuer]:
    with running_issuer() as running:
        yield running


def _entry(issuer: TestIssuer, **fields: Any) -> Provider:
    """An entry like Microsoft's or LinkedIn's: endpoints and keys listed, no issuer to discover them from."""
    return Provider(
        id="listed", display_name="Listed", auth_mode="oauth2", authorization_url="https://listed.example/authorize",
        token_url="https://listed.example/token", jwks_uri=issuer.jwks_url, **fields,
    )  # fmt: skip


def _verify(provider: Provider, token: str) -> dict[str, Any]:
    return OidcProviders(HttpTokenEndpoint(timeout=5)).verify_id_token(provider, token, CLIENT)


def test_an_entry_without_discovery_or_expected_issuer_accepts_no_id_token(issuer):
    with pytest.raises(ProviderError) as refused:
        _verify(_entry(issuer), issuer.mint("user-1", audience=CLIENT, issuer=EVIL))
    assert refused.value.oauth_error == "invalid_id_token"


def test_the_expected_issuer_of_an_entry_without_discovery_is_checked(issuer):
    provider = _entry(issuer, id_token_issuer="https://listed.example")
    with pytest.raises(ProviderError) as refused:
        _verify(provider, issuer.mint("user-1", audience=CLIENT, issuer=EVIL))
    assert refused.value.oauth_error == "invalid_id_token"
    claims = _verify(provider, issuer.mint("user-1", audience=CLIENT, issuer="https://listed.example"))
    assert claims["sub"] == "user-1"


def test_microsoft_multi_tenant_tokens_carry_their_tenant_issuer(issuer):
    provider = _entry(issuer, hooks=("microsoft_tenant_issuer",))
    tenant, other = str(uuid.uuid4()), str(uuid.uuid4())
    own = f"https://login.microsoftonline.com/{tenant}/v2.0"
    assert _verify(provider, issuer.mint("user-1", audience=CLIENT, issuer=own, tid=tenant))["tid"] == tenant
    for iss, tid in [
        (EVIL, tenant),  # not Microsoft's issuer at all
        (f"https://login.microsoftonline.com/{other}/v2.0", tenant),  # another tenant's issuer
        ("https://login.microsoftonline.com/{tenantid}/v2.0", "{tenantid}"),  # the discovery placeholder
        (own, None),  # no tid to check it against
    ]:
        claims = {"tid": tid} if tid is not None else {}
        with pytest.raises(ProviderError) as refused:
            _verify(provider, issuer.mint("user-1", audience=CLIENT, issuer=iss, **claims))
        assert refused.value.oauth_error == "invalid_id_token", iss
