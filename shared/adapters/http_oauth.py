"""HttpTokenEndpoint: sends the domain's token requests and userinfo calls with `requests` (the transport seam)."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

import requests

from shared.adapters.egress import EgressRefused
from shared.domain.oauth import TokenRequest, TokenSet, parse_body, parse_token_reply
from shared.domain.revocation import RevocationRequest
from shared.errors import ProviderError
from shared.providers.catalog import Provider


def _retry_after(response: requests.Response) -> float | None:
    try:
        return float(response.headers["Retry-After"])
    except (KeyError, ValueError):
        return None


class HttpTokenEndpoint:
    def __init__(self, session: requests.Session | None = None, timeout: float = 10.0) -> None:
        self.session = session or requests.Session()  # production: checked by the egress rules (bootstrap)
        self._timeout = timeout

    def _send(self, method: str, url: str, what: str, **kwargs: Any) -> requests.Response:
        try:
            return self.session.request(method, url, timeout=self._timeout, allow_redirects=False, **kwargs)
        except EgressRefused:
            # The broker's own rule, not the provider's answer: transient, so it never counts towards ending a
            # grant (fixing EGRESS_ALLOWED_NETWORKS or the provider's DNS lets the next attempt through).
            raise ProviderError(
                f"{what} refused by the egress rules", oauth_error="egress_refused", transient=True
            ) from None
        except requests.Timeout:
            raise ProviderError(f"{what} timed out", oauth_error="timeout", transient=True) from None
        except requests.RequestException as exc:
            raise ProviderError(
                f"{what} unreachable: {type(exc).__name__}", oauth_error="unreachable", transient=True
            ) from None

    def exchange(self, request: TokenRequest, provider: Provider, now: datetime) -> TokenSet:
        body: dict[str, Any] = {"json": request.data} if request.as_json else {"data": request.data}
        response = self._send(
            "POST", request.url, "token endpoint", headers=request.headers, auth=request.basic_auth, **body
        )
        return parse_token_reply(provider, response.status_code, response.text, now, _retry_after(response))

    def userinfo(self, provider: Provider, access_token: str) -> dict[str, Any]:
        assert provider.userinfo_url is not None
        headers = {"Accept": "application/json", **provider.request_headers, "Authorization": f"Bearer {access_token}"}
        response = self._send("GET", provider.userinfo_url, "userinfo endpoint", headers=headers)
        if response.status_code == 429 or response.status_code >= 500:
            raise ProviderError(
                f"userinfo endpoint answered HTTP {response.status_code}",
                oauth_error="userinfo_unavailable",
                transient=True,
            )
        if response.status_code != 200:
            raise ProviderError(
                f"userinfo endpoint answered HTTP {response.status_code}",
                oauth_error="userinfo_refused",
                transient=False,
            )
        try:
            document = response.json()
        except json.JSONDecodeError:
            document = None
        if not isinstance(document, dict):
            raise ProviderError(
                "userinfo endpoint did not answer a JSON object", oauth_error="userinfo_invalid", transient=False
            )
        return document

    def get_json(self, url: str, what: str) -> dict[str, Any]:
        response = self._send("GET", url, what, headers={"Accept": "application/json"})
        if response.status_code != 200:
            transient = response.status_code == 429 or response.status_code >= 500
            raise ProviderError(
                f"{what} answered HTTP {response.status_code}", oauth_error="discovery_failed", transient=transient
            )
        document = response.json()
        if not isinstance(document, dict):
            raise ProviderError(f"{what} did not answer a JSON object", oauth_error="discovery_failed", transient=False)
        return document

    def revoke(self, request: RevocationRequest) -> None:
        """Send a revocation request; ProviderError (transient or not) unless the provider answers 2xx.

        RFC 7009 answers 200 for a token that is already invalid too, so a repeated revocation succeeds."""
        response = self._send(
            request.method, request.url, "revocation endpoint", headers=request.headers, auth=request.basic_auth,
            data=request.form, json=request.json_body,
        )  # fmt: skip
        if 200 <= response.status_code < 300:
            return
        transient = response.status_code == 429 or response.status_code >= 500
        error = parse_body(response.text).get("error")
        code = error[:64] if isinstance(error, str) and error.isascii() and error.isprintable() else None
        raise ProviderError(
            f"revocation endpoint answered HTTP {response.status_code}" + (f" ({code})" if code else ""),
            oauth_error=code or f"http_{response.status_code}",
            transient=transient,
            retry_after=_retry_after(response),
        )
