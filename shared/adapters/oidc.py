"""OIDC for providers: discovery fills a catalog entry's missing endpoints; ID tokens are verified (PyJWT)."""

from __future__ import annotations

import logging
import threading
from dataclasses import replace
from typing import Any
from urllib.parse import urlsplit

import jwt

from shared.adapters.http_oauth import HttpTokenEndpoint
from shared.adapters.jwks import SessionJwksClient
from shared.domain.hooks import expected_issuer
from shared.domain.urls import check_url
from shared.errors import ProviderError
from shared.providers.catalog import DISCOVERED, Provider

log = logging.getLogger("broker.oidc")
ALGORITHMS = ["RS256", "RS384", "RS512", "ES256", "ES384", "ES512", "PS256", "EdDSA"]


class OidcProviders:
    """Per-instance caches of discovery documents and JWKS clients, keyed by issuer / JWKS URL."""

    def __init__(self, http: HttpTokenEndpoint, timeout: float = 10.0) -> None:
        self._http = http
        self._timeout = timeout
        self._lock = threading.Lock()
        self._documents: dict[str, dict[str, Any]] = {}
        self._jwks: dict[str, jwt.PyJWKClient] = {}

    def resolve(self, provider: Provider) -> Provider:
        """The entry with endpoints it leaves out taken from its issuer's discovery document."""
        if not provider.needs_discovery:
            return provider
        assert provider.issuer is not None
        missing = [name for name in DISCOVERED if getattr(provider, name) is None]
        document = self._discovery(provider.issuer)
        found = {
            name: document[DISCOVERED[name]] for name in missing if isinstance(document.get(DISCOVERED[name]), str)
        }
        issuer_host = urlsplit(provider.issuer).hostname
        for name, url in found.items():
            if check_url(url) is not None:
                raise ProviderError(
                    f"discovery gave an unacceptable {name}", oauth_error="discovery_failed", transient=False
                )
            host = urlsplit(url).hostname
            if host != issuer_host and host not in provider.allowed_hosts:
                log.warning("discovery of %s names %s on host %s (allowed_hosts)", provider.id, name, host)
                raise ProviderError(
                    f"discovery gave a {name} on another host than the issuer's (see the entry's allowed_hosts)",
                    oauth_error="discovery_failed",
                    transient=True,  # the broker's rule: listing the host lets the next attempt through
                )
        return replace(provider, **found)

    def _discovery(self, issuer: str) -> dict[str, Any]:
        with self._lock:
            cached = self._documents.get(issuer)
        if cached is not None:
            return cached
        document = self._http.get_json(issuer.rstrip("/") + "/.well-known/openid-configuration", "OIDC discovery")
        if document.get("issuer") != issuer:
            raise ProviderError(
                "discovery document names another issuer", oauth_error="discovery_failed", transient=False
            )
        with self._lock:
            self._documents[issuer] = document
        return document

    def verify_id_token(self, provider: Provider, id_token: str, client_id: str) -> dict[str, Any]:
        """Signature against the issuer's keys, `iss`, `aud`, `exp`; ProviderError when it does not hold. `iss` is
        checked for every entry: the issuer, else `id_token_issuer`, else the entry's hook (Microsoft's tenant
        issuer); an entry with none of them accepts no ID token."""
        resolved = self.resolve(provider)
        if resolved.jwks_uri is None:
            raise ProviderError("no JWKS to verify the ID token with", oauth_error="invalid_id_token", transient=False)
        try:
            key = self._jwks_client(resolved.jwks_uri).get_signing_key_from_jwt(id_token)
            claims: dict[str, Any] = jwt.decode(
                id_token,
                key.key,
                algorithms=ALGORITHMS,
                audience=client_id,
                leeway=60,
                options={"require": ["exp", "iat", "sub", "iss"], "verify_iss": False},  # checked below
            )
        except jwt.PyJWKClientConnectionError:
            raise ProviderError(
                "the provider's JWKS is unreachable", oauth_error="jwks_unavailable", transient=True
            ) from None
        except jwt.PyJWTError as exc:
            raise ProviderError(
                f"the ID token failed verification: {type(exc).__name__}",
                oauth_error="invalid_id_token",
                transient=False,
            ) from None
        expected = expected_issuer(provider, claims)
        if expected is None or claims.get("iss") != expected:
            raise ProviderError(
                "the ID token failed verification: InvalidIssuerError", oauth_error="invalid_id_token", transient=False
            )
        return claims

    def _jwks_client(self, url: str) -> jwt.PyJWKClient:
        with self._lock:
            client = self._jwks.get(url)
            if client is None:
                client = SessionJwksClient(
                    url, self._http.session, cache_keys=True, lifespan=3600, timeout=int(max(1, self._timeout))
                )
                self._jwks[url] = client
        return client
