"""Token revocation requests, sans I/O: RFC 7009 by default, named hooks for providers that differ."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

from shared.domain.models import ClientCredentials
from shared.domain.oauth import client_authentication
from shared.providers.catalog import Provider

TokenHint = Literal["refresh_token", "access_token"]
ACCESS: TokenHint = "access_token"


@dataclass(frozen=True)
class RevocationRequest:
    """An HTTP request to a revocation endpoint: the adapter sends it as is."""

    method: str
    url: str
    headers: dict[str, str]
    basic_auth: tuple[str, str] | None = None
    form: dict[str, str] | None = None
    json_body: dict[str, Any] | None = None
    token_type_hint: TokenHint = "refresh_token"

    def __repr__(self) -> str:  # bodies and headers hold the token and the client secret
        return f"RevocationRequest(method={self.method!r}, url={self.url!r}, hint={self.token_type_hint!r})"


@dataclass(frozen=True)
class Tokens:
    refresh_token: str | None
    access_token: str | None

    def __repr__(self) -> str:
        return f"Tokens(refresh={self.refresh_token is not None}, access={self.access_token is not None})"


def revocation_request(provider: Provider, client: ClientCredentials, tokens: Tokens) -> RevocationRequest | None:
    """The request that revokes this grant, or None when the catalog gives no revocation endpoint or no token."""
    if provider.revocation_url is None:
        return None
    for hook, build in HOOKS.items():
        if provider.has_hook(hook):
            return build(provider, client, tokens)
    return rfc7009(provider, client, tokens)


def rfc7009(provider: Provider, client: ClientCredentials, tokens: Tokens) -> RevocationRequest | None:
    """RFC 7009: POST `token` + `token_type_hint`, client authentication as at the token endpoint. The refresh
    token is preferred: revoking it ends the grant (and, at most providers, its access tokens)."""
    assert provider.revocation_url is not None
    prefer_refresh = provider.revocation_token == "refresh_token" or tokens.access_token is None
    hint: TokenHint = "refresh_token" if tokens.refresh_token and prefer_refresh else "access_token"
    token = tokens.refresh_token if hint == "refresh_token" else tokens.access_token
    if token is None:
        return None
    data, basic = client_authentication(provider, client, {"token": token, "token_type_hint": hint})
    headers = {"Accept": "application/json", **provider.request_headers}
    if provider.token_request_encoding == "json":
        return RevocationRequest("POST", provider.revocation_url, headers, basic, json_body=data, token_type_hint=hint)
    return RevocationRequest("POST", provider.revocation_url, headers, basic, form=data, token_type_hint=hint)


def _github(provider: Provider, client: ClientCredentials, tokens: Tokens) -> RevocationRequest | None:
    """GitHub: DELETE /applications/{client_id}/token, the app's credentials as Basic, the access token in JSON."""
    assert provider.revocation_url is not None
    if tokens.access_token is None or client.client_secret is None:
        return None
    url = provider.revocation_url.replace("{client_id}", client.client_id)
    headers = {"Accept": "application/vnd.github+json", **provider.request_headers}
    basic = (client.client_id, client.client_secret)
    body = {"access_token": tokens.access_token}
    return RevocationRequest("DELETE", url, headers, basic, json_body=body, token_type_hint=ACCESS)


def _dropbox(provider: Provider, client: ClientCredentials, tokens: Tokens) -> RevocationRequest | None:
    """Dropbox: POST with the access token as Bearer and no body; it disables the refresh token too."""
    assert provider.revocation_url is not None
    if tokens.access_token is None:
        return None
    headers = {**provider.request_headers, "Authorization": f"Bearer {tokens.access_token}"}
    return RevocationRequest("POST", provider.revocation_url, headers, token_type_hint=ACCESS)


HOOKS: dict[str, Callable[[Provider, ClientCredentials, Tokens], RevocationRequest | None]] = {
    "github_token_revocation": _github,
    "dropbox_bearer_revocation": _dropbox,
}
