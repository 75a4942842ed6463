"""Who is calling a browser-facing function: the entity id, from a verified ID token or (dev) a header."""

from __future__ import annotations

import threading
import time
from collections.abc import Sequence
from typing import Any
from urllib.parse import urlsplit

import flask
import jwt
import requests

from shared.adapters.dev_auth import ENTITY_ID_RE, DevHeaderAuthenticator
from shared.adapters.jwks import SessionJwksClient
from shared.domain.urls import check_url
from shared.errors import DependencyUnavailable, Unauthenticated
from shared.http import bearer_credential

GOOGLE_ISSUER = "https://accounts.google.com"
GOOGLE_JWKS = "https://www.googleapis.com/oauth2/v3/certs"
FIREBASE_ISSUER_PREFIX = "https://securetoken.google.com/"
FIREBASE_JWKS = "https://www.googleapis.com/service_accounts/v1/jwk/securetoken@system.gserviceaccount.com"
ALGORITHMS = frozenset({"RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512", "EdDSA"})
REFETCH_INTERVAL = 60.0  # an unknown `kid` refetches the JWKS at most this often (no amplification by forged kids)
MAX_TOKEN_LENGTH = 8192


__all__ = ["DevHeaderAuthenticator", "InvalidToken", "OidcAuthenticator"]  # the dev one lives in dev_auth


class InvalidToken(Unauthenticated):
    code = "invalid_token"

    def __init__(self, message: str) -> None:
        super().__init__(message, details={"challenge": 'Bearer error="invalid_token"'})


def default_jwks_url(issuer: str) -> str | None:
    """Google's published key sets for its two issuers; None: read `jwks_uri` from the issuer's discovery."""
    if issuer.startswith(FIREBASE_ISSUER_PREFIX):
        return FIREBASE_JWKS
    if issuer.rstrip("/") == GOOGLE_ISSUER:
        return GOOGLE_JWKS
    return None


class OidcAuthenticator:
    """AUTH_MODE=oidc: `Authorization: Bearer <ID token>`, verified against the issuer's JWKS (signature, `iss`,
    `aud`, `exp`, `iat`); the entity id is the `entity_claim` claim. Works for any OIDC issuer: Firebase /
    Identity Platform, Google, Auth0, Keycloak…"""

    def __init__(
        self,
        issuer: str,
        audiences: Sequence[str],
        *,
        entity_claim: str = "sub",
        jwks_url: str | None = None,
        timeout: float = 10.0,
        session: requests.Session | None = None,
    ) -> None:
        self._issuer = issuer
        # Google ID tokens carry either spelling of its issuer.
        self._issuers = [issuer, "accounts.google.com"] if issuer.rstrip("/") == GOOGLE_ISSUER else [issuer]
        self._audiences = list(audiences)
        self._claim = entity_claim
        self._jwks_url = jwks_url or default_jwks_url(issuer)
        self._timeout = timeout
        self._session = session or requests.Session()  # production: checked by the egress rules (bootstrap)
        self._lock = threading.Lock()
        self._client: jwt.PyJWKClient | None = None
        self._last_refetch = 0.0

    def entity_id(self, request: flask.Request) -> str:
        claims = self.verify(_bearer(request.headers.get("Authorization", "")))
        value = claims.get(self._claim)
        if isinstance(value, int) and not isinstance(value, bool):
            value = str(value)
        if not isinstance(value, str) or not ENTITY_ID_RE.fullmatch(value):
            raise InvalidToken(f"the ID token has no usable {self._claim!r} claim (1-255 printable characters)")
        return value

    def verify(self, token: str) -> dict[str, Any]:
        try:
            header = jwt.get_unverified_header(token)
        except jwt.PyJWTError:
            raise InvalidToken("the bearer token is not a JWT") from None
        algorithm = header.get("alg")
        if algorithm not in ALGORITHMS:
            raise InvalidToken("the ID token is not signed with an accepted asymmetric algorithm")
        key = self._signing_key(header.get("kid"))
        try:
            claims: dict[str, Any] = jwt.decode(
                token,
                key.key,
                algorithms=[str(algorithm)],
                audience=self._audiences,
                issuer=self._issuers,
                leeway=30,
                options={"require": ["exp", "iat", "iss", "aud"]},
            )
        except jwt.PyJWTError as exc:
            raise InvalidToken(f"the ID token failed verification ({type(exc).__name__})") from None
        return claims

    def _signing_key(self, kid: object) -> jwt.PyJWK:
        client = self._jwks_client()
        try:
            key = _pick(client.get_signing_keys(), kid)
            if key is None and self._may_refetch():
                key = _pick(client.get_signing_keys(refresh=True), kid)
        except jwt.PyJWKClientConnectionError:
            raise DependencyUnavailable("the ID token issuer's keys (JWKS) are unreachable") from None
        except jwt.PyJWKClientError:
            raise DependencyUnavailable("the ID token issuer's JWKS holds no usable signing key") from None
        if key is None:
            raise InvalidToken("the ID token is signed with a key the issuer does not publish")
        return key

    def _may_refetch(self) -> bool:
        with self._lock:
            now = time.monotonic()
            if now - self._last_refetch < REFETCH_INTERVAL:
                return False
            self._last_refetch = now
            return True

    def _jwks_client(self) -> jwt.PyJWKClient:
        with self._lock:
            if self._client is not None:
                return self._client
        url = self._jwks_url or self._discover_jwks()
        client = SessionJwksClient(
            url, self._session, cache_jwk_set=True, lifespan=3600, timeout=int(max(1, self._timeout))
        )
        with self._lock:
            self._client = self._client or client
            return self._client

    def _discover_jwks(self) -> str:
        url = self._issuer.rstrip("/") + "/.well-known/openid-configuration"
        try:
            response = self._session.get(url, timeout=self._timeout, allow_redirects=False)
            document = response.json() if response.status_code == 200 else None
        except (requests.RequestException, ValueError):
            document = None
        if not isinstance(document, dict) or document.get("issuer") != self._issuer:
            raise DependencyUnavailable("the ID token issuer's discovery document is unavailable or names another")
        jwks_uri = document.get("jwks_uri")
        if not isinstance(jwks_uri, str) or check_url(jwks_uri) is not None:
            raise DependencyUnavailable("the ID token issuer's discovery document has no acceptable jwks_uri")
        if urlsplit(jwks_uri).hostname != urlsplit(self._issuer).hostname:
            raise DependencyUnavailable(
                "the ID token issuer's discovery names keys on another host than the issuer's (set AUTH_JWKS_URL)"
            )
        return jwks_uri


def _bearer(header: str) -> str:
    token = bearer_credential(header)
    if token is None:
        raise Unauthenticated("send the caller's ID token as `Authorization: Bearer <token>`")
    if len(token) > MAX_TOKEN_LENGTH:
        raise InvalidToken("the bearer token is too long")
    return token


def _pick(keys: list[jwt.PyJWK], kid: object) -> jwt.PyJWK | None:
    if kid is None:
        return keys[0] if len(keys) == 1 else None  # a token without `kid` only when the issuer has one key
    return next((key for key in keys if key.key_id == kid), None)
