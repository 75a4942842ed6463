"""A small in-memory OAuth 2.0 authorization server for the `demo` provider, so the flow works offline.

Authorization code with PKCE (S256 required), rotating refresh tokens (a used one is rejected), userinfo and
RFC 7009 revocation. Written by hand on purpose: oauthlib's server needs a 28-method validator that would be
larger than this whole module, and this is a local stand-in, never deployed.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
import threading
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from oauthlib.common import add_params_to_uri

from shared.domain.ports import Clock

DEMO_CLIENT_ID = "demo-client"
DEMO_CLIENT_SECRET = "demo-local-client-secret"


class DemoOAuthError(Exception):
    def __init__(self, error: str, description: str, status: int = 400) -> None:
        super().__init__(description)
        self.error, self.description, self.status = error, description, status

    def body(self) -> dict[str, str]:
        return {"error": self.error, "error_description": self.description}


@dataclass
class _Code:
    client_id: str
    redirect_uri: str
    scope: str
    challenge: str
    user: str
    expires_at: datetime


@dataclass
class _Tokens:
    user: str
    scope: str
    access_expires_at: datetime
    refresh_token: str
    refresh_expires_at: datetime | None = None


@dataclass
class DemoAuthServer:
    clock: Clock
    client_id: str = DEMO_CLIENT_ID
    client_secret: str = DEMO_CLIENT_SECRET
    token_lifetime: int = 3600
    # When set, each refresh token lives this long and the token response says so (`refresh_token_expires_in`, or
    # the name in `refresh_token_expires_field`: Intuit's is `x_refresh_token_expires_in`), as GitHub Apps do.
    refresh_token_lifetime: int | None = None
    refresh_token_expires_field: str = "refresh_token_expires_in"
    codes: dict[str, _Code] = field(default_factory=dict)
    access: dict[str, _Tokens] = field(default_factory=dict)
    refresh: dict[str, _Tokens] = field(default_factory=dict)
    grants: dict[str, int] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def check_authorization(self, params: dict[str, str]) -> None:
        """Errors here are shown on the page: the redirect URI is not trusted until the client is known."""
        if params.get("client_id") != self.client_id:
            raise DemoOAuthError("invalid_client", "unknown client_id")
        if not params.get("redirect_uri", "").startswith(("http://", "https://")):
            raise DemoOAuthError("invalid_request", "redirect_uri must be an absolute URL")
        if params.get("response_type") != "code":
            raise DemoOAuthError("unsupported_response_type", "only response_type=code is supported")
        if params.get("code_challenge_method") != "S256" or not params.get("code_challenge"):
            raise DemoOAuthError("invalid_request", "PKCE with code_challenge_method=S256 is required")

    def approve(self, params: dict[str, str], user: str) -> str:
        self.check_authorization(params)
        code = secrets.token_urlsafe(32)
        self.codes[code] = _Code(
            params["client_id"],
            params["redirect_uri"],
            params.get("scope", ""),
            params["code_challenge"],
            user,
            self.clock.now() + timedelta(minutes=1),
        )
        return str(add_params_to_uri(params["redirect_uri"], [("code", code), ("state", params.get("state", ""))]))

    def deny(self, params: dict[str, str]) -> str:
        self.check_authorization(params)
        reply = [("error", "access_denied"), ("error_description", "the user denied access")]
        return str(add_params_to_uri(params["redirect_uri"], [*reply, ("state", params.get("state", ""))]))

    def token(self, form: dict[str, str], basic: tuple[str, str] | None) -> dict[str, Any]:
        with self._lock:  # served by a threaded server: a used refresh token must be rejected, exactly once
            return self._token(form, basic)

    def _token(self, form: dict[str, str], basic: tuple[str, str] | None) -> dict[str, Any]:
        client_id, secret = basic or (form.get("client_id", ""), form.get("client_secret", ""))
        if client_id != self.client_id or not hmac.compare_digest(secret.encode(), self.client_secret.encode()):
            raise DemoOAuthError("invalid_client", "client authentication failed", 401)
        grant_type = form.get("grant_type")
        self.grants[str(grant_type)] = self.grants.get(str(grant_type), 0) + 1
        if grant_type == "authorization_code":
            return self._exchange(form)
        if grant_type == "refresh_token":
            return self._refresh(form)
        raise DemoOAuthError("unsupported_grant_type", "use authorization_code or refresh_token")

    def _exchange(self, form: dict[str, str]) -> dict[str, Any]:
        code = self.codes.pop(form.get("code", ""), None)  # single use
        if code is None or code.expires_at < self.clock.now():
            raise DemoOAuthError("invalid_grant", "the code is unknown, used or expired")
        if form.get("redirect_uri") != code.redirect_uri:
            raise DemoOAuthError("invalid_grant", "redirect_uri does not match the authorization request")
        verifier = form.get("code_verifier", "")
        digest = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
        if not hmac.compare_digest(digest, code.challenge):
            raise DemoOAuthError("invalid_grant", "code_verifier does not match the code_challenge")
        return self._issue(code.user, code.scope)

    def _refresh(self, form: dict[str, str]) -> dict[str, Any]:
        tokens = self.refresh.pop(form.get("refresh_token", ""), None)  # rotation: a used token is dead
        if tokens is None:
            raise DemoOAuthError("invalid_grant", "the refresh token is unknown, used or revoked")
        if tokens.refresh_expires_at is not None and tokens.refresh_expires_at <= self.clock.now():
            raise DemoOAuthError("invalid_grant", "the refresh token expired")
        return self._issue(tokens.user, tokens.scope)

    def _issue(self, user: str, scope: str) -> dict[str, Any]:
        access, refresh = secrets.token_urlsafe(32), secrets.token_urlsafe(32)
        now = self.clock.now()
        ends = None if self.refresh_token_lifetime is None else now + timedelta(seconds=self.refresh_token_lifetime)
        tokens = _Tokens(user, scope, now + timedelta(seconds=self.token_lifetime), refresh, ends)
        self.access[access] = tokens
        self.refresh[refresh] = tokens
        body: dict[str, Any] = {"access_token": access, "token_type": "Bearer", "expires_in": self.token_lifetime}
        if self.refresh_token_lifetime is not None:
            body[self.refresh_token_expires_field] = self.refresh_token_lifetime
        return {**body, "refresh_token": refresh, "scope": scope}

    def userinfo(self, bearer: str | None) -> dict[str, Any]:
        tokens = self.access.get(bearer or "")
        if tokens is None or tokens.access_expires_at <= self.clock.now():
            raise DemoOAuthError("invalid_token", "the access token is unknown, expired or revoked", 401)
        return {"sub": f"demo|{tokens.user}", "email": f"{tokens.user}@demo.invalid", "name": tokens.user}

    def revoke(self, token: str) -> None:
        """RFC 7009: revoking a refresh token ends its grant; an unknown token is not an error."""
        tokens = self.refresh.pop(token, None) or self.access.pop(token, None)
        if tokens is not None:
            self.refresh.pop(tokens.refresh_token, None)
            for access, held in list(self.access.items()):
                if held is tokens:
                    del self.access[access]
