"""Who calls the internal functions (token fetch, refresh): API keys, Google-signed ID tokens, networks.

API keys are kept only as SHA-256 digests and compared in constant time. Google ID tokens (service accounts
calling with `Authorization: Bearer <id token>`, or `X-Serverless-Authorization`) are verified against Google's keys
with PyJWT: signature, issuer, audience, expiry, and the service-account email against an allowlist.

Which header holds the identity: Cloud Run IAM checks `X-Serverless-Authorization` when a request has it, and then
passes `Authorization` through untouched; otherwise it checks `Authorization`. Only the header it checked may carry a
token whose signature Cloud Run removed, so that header alone is read for the caller's identity; `Authorization`
then counts only as an API key.
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
from typing import TYPE_CHECKING, Any

import flask

from shared.errors import Forbidden, Unauthenticated
from shared.http import bearer_credential

if TYPE_CHECKING:  # PyJWT and requests only where service accounts call: API-key callers (the hot path) never load them
    from requests import Session

GOOGLE_ISSUERS = ("https://accounts.google.com", "accounts.google.com")
GOOGLE_JWKS = "https://www.googleapis.com/oauth2/v3/certs"
STRIPPED = "SIGNATURE_REMOVED_BY_GOOGLE"


def _digest(key: str) -> bytes:
    return hashlib.sha256(key.encode()).digest()


SERVERLESS_HEADER = "X-Serverless-Authorization"
MISSING = "send Authorization: Bearer <API key or ID token> (one space, nothing around the key)"


def _bearer_value(request: flask.Request, header: str) -> str | None:
    return bearer_credential(request.headers.get(header, ""))


def verified_identity_token(request: flask.Request) -> str | None:
    """The ID token from the header Cloud Run IAM verified: X-Serverless-Authorization when the request has one
    (Authorization is then the caller's own, unchecked), else Authorization. None when it holds no bearer token."""
    if SERVERLESS_HEADER in request.headers:
        return _bearer_value(request, SERVERLESS_HEADER)
    return _bearer_value(request, "Authorization")


def client_address(request: flask.Request) -> str:
    """The client as Cloud Run reports it: the last X-Forwarded-For hop (added by Google's front end)."""
    forwarded = request.headers.get("X-Forwarded-For", "")
    hops = [hop.strip() for hop in forwarded.split(",") if hop.strip()]
    return hops[-1] if hops else (request.remote_addr or "")


class GoogleIdTokens:
    """Verifies Google-signed ID tokens of service accounts (Cloud Scheduler, backends on Cloud Run)."""

    def __init__(
        self, jwks_url: str = GOOGLE_JWKS, issuers: tuple[str, ...] = GOOGLE_ISSUERS, session: Session | None = None
    ) -> None:
        # Through the instance's checked session (egress rules in production), like every other outbound call.
        from requests import Session

        from shared.adapters.jwks import SessionJwksClient

        self._jwks = SessionJwksClient(jwks_url, session or Session(), cache_keys=True, lifespan=3600, timeout=5)
        self._issuers = issuers

    def email(self, token: str, audience: str, allowed: list[str]) -> str:
        """The verified, allowed service-account email of `token`; 401/403 otherwise.

        Behind Cloud Run IAM (`roles/run.invoker`) Cloud Run has already verified the token and replaced its
        signature with `SIGNATURE_REMOVED_BY_GOOGLE`: such a token is taken on the platform's word (only requests
        that passed IAM reach the service), and its claims (issuer, audience, expiry, email) are still checked.
        Callers pass only the token of the header Cloud Run verified (`verified_identity_token`).
        """
        import jwt

        checks = {"issuer": list(self._issuers), "audience": audience, "leeway": 30}
        required = ["exp", "iat", "iss", "aud"]
        try:
            if token.endswith("." + STRIPPED):
                claims: dict[str, Any] = jwt.decode(
                    token, options={"verify_signature": False, "verify_aud": True, "verify_iss": True,
                                    "verify_exp": True, "verify_iat": True, "require": required},
                    **checks,  # type: ignore[arg-type]
                )  # fmt: skip
            else:
                key = self._jwks.get_signing_key_from_jwt(token)
                claims = jwt.decode(token, key.key, algorithms=["RS256"], options={"require": required}, **checks)  # type: ignore[arg-type]
        except jwt.PyJWKClientConnectionError:
            raise Unauthenticated("the identity token could not be checked right now") from None
        except jwt.PyJWTError as exc:
            raise Unauthenticated(f"the identity token is not valid: {type(exc).__name__}") from None
        email = claims.get("email")
        if not claims.get("email_verified") or email not in allowed:
            raise Forbidden("this identity may not call this endpoint", code="caller_not_allowed")
        return str(email)


class InternalCallers:
    def __init__(
        self,
        api_keys: list[str],
        *,
        invokers: list[str],
        audience: str | None,
        cidrs: list[str],
        google: GoogleIdTokens | None = None,
        open_when_unconfigured: bool = False,
    ) -> None:
        self._digests = [_digest(key) for key in api_keys]
        self._invokers = invokers
        self._audience = audience
        self._networks = [ipaddress.ip_network(c, strict=False) for c in cidrs]
        self._google = google
        self._open = open_when_unconfigured and not api_keys and not invokers

    def check_network(self, request: flask.Request) -> None:
        if not self._networks:
            return
        try:
            address = ipaddress.ip_address(client_address(request))
        except ValueError:
            raise Forbidden("the caller's address is not allowed", code="network_not_allowed") from None
        if not any(address in network for network in self._networks):
            raise Forbidden("the caller's address is not allowed", code="network_not_allowed")

    def caller(self, request: flask.Request) -> str:
        """An audit name for the caller (never the key itself); 401/403 when it may not call."""
        self.check_network(request)
        if self._open:
            return "dev:unauthenticated"
        key = _bearer_value(request, "Authorization")
        identity = verified_identity_token(request)
        if key is None and identity is None:
            raise Unauthenticated(MISSING)
        if key is not None:
            digest = _digest(key)
            for known in self._digests:
                if hmac.compare_digest(digest, known):
                    return f"apikey:{known.hex()[:8]}"
        if self._invokers and self._audience and self._google and identity and identity.count(".") == 2:
            return f"sa:{self._google.email(identity, self._audience, self._invokers)}"
        raise Unauthenticated("the bearer credential is not accepted")


class SchedulerCaller:
    """POST /refresh: in production only the scheduler's service account (Cloud Run IAM is the first gate).

    No network check: Cloud Scheduler calls from Google's network, never from the VPC, so ALLOWED_CIDRS (meant for
    token_fetch's callers) would stop every run.
    """

    def __init__(self, account: str | None, audience: str | None, google: GoogleIdTokens | None):
        self._account, self._audience, self._google = account, audience, google

    def caller(self, request: flask.Request) -> str:
        if self._account is None or self._audience is None or self._google is None:
            return "dev:scheduler"
        token = verified_identity_token(request)
        if token is None:
            raise Unauthenticated("send Authorization: Bearer <the scheduler's OIDC token>")
        return f"sa:{self._google.email(token, self._audience, [self._account])}"
