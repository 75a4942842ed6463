"""The OAuth 2.0 protocol, sans I/O: build requests, parse responses, never touch the network.

oauthlib supplies PKCE and token-response parsing. Its URL builders are not used because their `http` check is
process-global (OAUTHLIB_INSECURE_TRANSPORT); the broker applies its own rule per URL instead (https, or http
for loopback hosts only: `domain.urls.check_url`, enforced on the catalog and on settings).
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
import secrets
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import parse_qsl

from shared.domain import hooks
from shared.domain.models import ClientCredentials
from shared.errors import ProviderError
from shared.providers.catalog import Provider

STATE_BYTES = 32  # 256 bits
VERIFIER_LENGTH = 64
TRANSIENT_OAUTH_ERRORS = frozenset({"server_error", "temporarily_unavailable", "slow_down"})


def new_secret_token() -> str:
    return secrets.token_urlsafe(STATE_BYTES)


def digest(value: str) -> str:
    """What the database keeps of a state or a browser binding: a SHA-256, never the value."""
    return hashlib.sha256(value.encode()).hexdigest()


def pkce_pair() -> tuple[str, str]:
    from oauthlib.oauth2 import WebApplicationClient  # here: ~60 modules only the flow's start needs

    client = WebApplicationClient(None)
    verifier = str(client.create_code_verifier(VERIFIER_LENGTH))
    return verifier, str(client.create_code_challenge(verifier, "S256"))


def join_scopes(provider: Provider, scopes: list[str]) -> str:
    return provider.scope_separator.join(scopes)


def split_scopes(provider: Provider, value: object) -> list[str]:
    if isinstance(value, list):
        value = " ".join(str(v) for v in value)
    if not isinstance(value, str):
        return []
    for separator in {provider.scope_separator, ",", " "}:
        value = value.replace(separator, " ")
    return [scope for scope in value.split(" ") if scope]


def authorization_url(
    provider: Provider, *, client_id: str, redirect_uri: str, scopes: list[str], state: str, code_challenge: str | None
) -> str:
    assert provider.authorization_url is not None
    params = [("response_type", "code"), ("client_id", client_id), ("redirect_uri", redirect_uri)]
    if scopes:
        params.append((provider.scope_param, join_scopes(provider, scopes)))
    params.append(("state", state))
    if code_challenge is not None:
        params += [("code_challenge", code_challenge), ("code_challenge_method", "S256")]
    params += list(provider.authorization_params.items())
    from oauthlib.common import add_params_to_uri

    return str(add_params_to_uri(provider.authorization_url, params))


@dataclass(frozen=True)
class TokenRequest:
    """An HTTP request to a token endpoint: the adapter sends it as is."""

    url: str
    data: dict[str, str]
    headers: dict[str, str]
    basic_auth: tuple[str, str] | None
    as_json: bool = False

    def __repr__(self) -> str:  # the body holds codes, verifiers, secrets and refresh tokens
        return f"TokenRequest(url={self.url!r}, grant_type={self.data.get('grant_type')!r})"


def client_authentication(
    provider: Provider, client: ClientCredentials, data: dict[str, str]
) -> tuple[dict[str, str], tuple[str, str] | None]:
    """RFC 6749 §2.3.1 as the catalog says: HTTP Basic (the default), or the pair in the body (`client_secret_post`).
    Used at the token and the revocation endpoints. Returns the body and the Basic pair, if any."""
    if provider.token_auth_method == "client_secret_basic" and client.client_secret is not None:
        return data, (client.client_id, client.client_secret)
    data = {**data, "client_id": client.client_id}
    if client.client_secret is not None:
        data["client_secret"] = client.client_secret
    return data, None


def token_request(provider: Provider, client: ClientCredentials, grant: dict[str, str]) -> TokenRequest:
    """The request for `grant` at the entry's token endpoint (a refresh at its `refresh_url`, where it has one)."""
    url = provider.refresh_url if grant.get("grant_type") == "refresh_token" and provider.refresh_url else None
    url = url or provider.token_url
    assert url is not None
    data, basic = client_authentication(provider, client, {**provider.token_params, **grant})
    headers = {"Accept": "application/json", **provider.request_headers}
    return TokenRequest(url, data, headers, basic, provider.token_request_encoding == "json")


def code_grant(code: str, redirect_uri: str, verifier: str | None) -> dict[str, str]:
    grant = {"grant_type": "authorization_code", "code": code, "redirect_uri": redirect_uri}
    return grant | ({"code_verifier": verifier} if verifier else {})


def refresh_grant(refresh_token: str) -> dict[str, str]:
    return {"grant_type": "refresh_token", "refresh_token": refresh_token}


@dataclass(frozen=True)
class TokenSet:
    access_token: str = field(repr=False)
    refresh_token: str | None = field(repr=False)
    expires_at: datetime | None
    scopes: list[str]
    id_token: str | None = field(default=None, repr=False)
    raw: dict[str, Any] = field(default_factory=dict, repr=False)
    refresh_token_expires_at: datetime | None = None  # the provider's `refresh_token_expires_in`, when it says it


_ERROR_CODE = re.compile(r"[A-Za-z0-9_.:-]+")


def parse_token_reply(
    provider: Provider, status: int, body: str, now: datetime, retry_after: float | None = None
) -> TokenSet:
    """Turn a token endpoint's answer into a TokenSet, or raise ProviderError saying whether it is transient."""
    if status == 429 or status >= 500:
        raise ProviderError(
            f"token endpoint answered HTTP {status}",
            oauth_error=f"http_{status}",
            transient=True,
            retry_after=retry_after,
        )
    if status >= 400:
        error = parse_body(body).get("error")
        if not isinstance(error, str) or not error:
            raise ProviderError(f"token endpoint answered HTTP {status}", oauth_error=f"http_{status}", transient=False)
        raise _refused(error)
    if provider.hooks:
        reply = parse_body(body)
        lifted = hooks.token_fields(provider, reply)
        body = json.dumps(lifted) if lifted is not reply else body
    from oauthlib.oauth2.rfc6749 import errors as oauth_errors
    from oauthlib.oauth2.rfc6749.parameters import parse_token_response

    try:
        params = dict(parse_token_response(body))
    except oauth_errors.OAuth2Error as exc:
        raise _refused(exc.error or "invalid_response") from None
    return TokenSet(
        access_token=str(params["access_token"]),
        refresh_token=params.get("refresh_token"),
        expires_at=_expiry(provider, params, now),
        scopes=split_scopes(provider, params.get("scope", "")),
        id_token=params.get("id_token"),
        raw={k: v for k, v in params.items() if k not in ("access_token", "refresh_token", "id_token")},
        refresh_token_expires_at=_seconds_from(now, params, REFRESH_TOKEN_EXPIRES_IN),
    )


def _refused(error: str) -> ProviderError:
    # The code is shown to users (last_refresh_error) and logged: keep it to RFC 6749's error alphabet.
    error = error[:64] if _ERROR_CODE.fullmatch(error[:64]) else "invalid_error_code"
    return ProviderError(
        f"token endpoint refused the request: {error}", oauth_error=error, transient=error in TRANSIENT_OAUTH_ERRORS
    )


def parse_body(body: str) -> dict[str, Any]:
    try:
        parsed = json.loads(body)
        return parsed if isinstance(parsed, dict) else {}
    except ValueError:
        return dict(parse_qsl(body))


# The refresh token's own lifetime: the common name (GitHub Apps, LinkedIn, Pinterest) and Intuit's.
REFRESH_TOKEN_EXPIRES_IN = ("refresh_token_expires_in", "x_refresh_token_expires_in")


def _seconds_from(now: datetime, params: dict[str, Any], names: tuple[str, ...]) -> datetime | None:
    for name in names:
        try:
            seconds = int(params[name])
        except (KeyError, TypeError, ValueError):
            continue
        if 0 < seconds <= 20 * 366 * 86400:  # past twenty years it says "never", not a date
            return now + timedelta(seconds=seconds)
    return None


def _expiry(provider: Provider, params: dict[str, Any], now: datetime) -> datetime | None:
    """expires_in, else the access token's own JWT `exp`, else the catalog's default lifetime (None: no expiry)."""
    expires_in = params.get("expires_in")
    if expires_in is not None:
        try:
            return now + timedelta(seconds=max(0, int(expires_in)))
        except (TypeError, ValueError):
            pass
    exp = jwt_expiry(str(params.get("access_token", "")))
    if exp is not None:
        return exp
    if provider.default_token_lifetime is None:
        return None
    return now + timedelta(seconds=provider.default_token_lifetime)


def jwt_expiry(token: str) -> datetime | None:
    """The `exp` claim of a JWT-shaped token, read without verifying it (only to schedule a refresh)."""
    parts = token.split(".")
    if len(parts) != 3:
        return None
    try:
        payload = json.loads(base64.urlsafe_b64decode(parts[1] + "=" * (-len(parts[1]) % 4)))
        return datetime.fromtimestamp(int(payload["exp"]), UTC)
    except (ValueError, KeyError, TypeError, OverflowError):
        return None
