"""An authenticated OpenBao (or Vault) client for the secret store and the Transit data keys.

Three ways in (settings: OPENBAO_TOKEN, OPENBAO_ROLE_ID + OPENBAO_SECRET_ID, OPENBAO_AUTH=gcp + OPENBAO_ROLE):
a token as given; AppRole, logged in on first use and again when the token is refused (it expired); the GCP auth
method's `iam` login, a JWT for the role signed by the instance's service account through the IAM Credentials
API (`signJwt`), so Cloud Run needs no stored credential at all.

Whatever hvac or requests raise becomes SecretStoreUnavailable (503) with the exception's class only, except
InvalidPath (404), which each caller reads as "absent". A sealed server (503, VaultDown), one that cannot be
reached, or a refused token are all the same to a caller: the store is unavailable right now, nothing is lost.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

import hvac
import requests
from hvac import exceptions as bao_errors

from shared.errors import SecretStoreUnavailable

DEFAULT_TIMEOUT = 10.0
JWT_LIFETIME = 600  # seconds; the gcp auth method accepts at most 15 minutes by default
T = TypeVar("T")
Signer = Callable[[dict[str, Any]], str]  # claims -> a JWT signed by the service account


def unavailable(exc: Exception) -> SecretStoreUnavailable:
    return SecretStoreUnavailable(f"openbao unavailable: {type(exc).__name__}")


@dataclass(frozen=True)
class OpenBaoAuth:
    """How to log in: `token`, `approle` (role_id, secret_id) or `gcp` (role, signer)."""

    method: str
    token: str | None = None
    role_id: str | None = None
    secret_id: str | None = None
    role: str | None = None
    signer: Signer | None = None

    def __repr__(self) -> str:  # never print a token or a secret id
        return f"OpenBaoAuth(method={self.method!r}, role={self.role!r})"


class OpenBaoClient:
    """One hvac client per instance, logged in lazily; `call(fn)` runs `fn(client)` with the errors translated."""

    def __init__(
        self, addr: str, auth: OpenBaoAuth, *, timeout: float = DEFAULT_TIMEOUT, session: requests.Session | None = None
    ) -> None:
        self._auth = auth
        self._client = hvac.Client(url=addr, timeout=int(max(1, timeout)), session=session)
        self._lock = threading.Lock()
        self._logged_in = False
        if auth.method == "token":
            self._client.token = auth.token or ""
            self._logged_in = True

    def call(
        self, fn: Callable[[hvac.Client], T], passthrough: tuple[type[Exception], ...] = (bao_errors.InvalidPath,)
    ) -> T:
        """`fn(client)`; the `passthrough` errors reach the caller (by default InvalidPath: "absent"), everything
        else is SecretStoreUnavailable."""
        try:
            self._ensure_login()
            try:
                return fn(self._client)
            except bao_errors.Forbidden:
                if self._auth.method == "token":
                    raise
                self._login()  # the login's token expired or was revoked: once more with a fresh one
                return fn(self._client)
        except passthrough:
            raise
        except (bao_errors.VaultError, requests.RequestException, ValueError, KeyError, TypeError) as exc:
            raise unavailable(exc) from None

    def _ensure_login(self) -> None:
        if not self._logged_in:
            self._login()

    def _login(self) -> None:
        with self._lock:
            auth = self._auth
            if auth.method == "approle":
                self._client.auth.approle.login(role_id=auth.role_id, secret_id=auth.secret_id)
            elif auth.method == "gcp":
                assert auth.role is not None
                assert auth.signer is not None
                now = int(time.time())
                jwt = auth.signer({"aud": f"vault/{auth.role}", "iat": now, "exp": now + JWT_LIFETIME})
                self._client.auth.gcp.login(role=auth.role, jwt=jwt)
            self._logged_in = True


def iam_signer() -> Signer:
    """Signs with the instance's service account through IAM Credentials' signJwt (the account needs
    `iam.serviceAccounts.signJwt` on itself: roles/iam.serviceAccountTokenCreator). Not exercised by the tests:
    it needs Google Cloud; the tests inject a signer instead."""
    import google.auth
    from google.auth.exceptions import GoogleAuthError
    from google.auth.transport.requests import AuthorizedSession, Request

    credentials, _ = google.auth.default(scopes=["https://www.googleapis.com/auth/cloud-platform"])
    session = AuthorizedSession(credentials)  # type: ignore[no-untyped-call]

    def sign(claims: dict[str, Any]) -> str:
        try:
            if not credentials.valid:
                credentials.refresh(Request())  # type: ignore[no-untyped-call] # on Cloud Run this also resolves the account's email from "default"
            email = getattr(credentials, "service_account_email", None)
            url = f"https://iamcredentials.googleapis.com/v1/projects/-/serviceAccounts/{email}:signJwt"
            payload = {"payload": json.dumps({"sub": email, **claims})}
            response = session.post(url, json=payload, timeout=DEFAULT_TIMEOUT)
        except (GoogleAuthError, requests.RequestException) as exc:
            raise unavailable(exc) from None
        if response.status_code != 200:
            raise SecretStoreUnavailable(f"openbao gcp login: signJwt answered {response.status_code}")
        return str(response.json()["signedJwt"])

    return sign
