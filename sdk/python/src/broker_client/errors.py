"""The errors a backend handles, mapped from the broker's answers (`{"error": {"code", "message"}}`).

No message holds a token, a key or a credential: only the broker's code and message, or the HTTP status.
"""

from __future__ import annotations

import email.utils
import time
from datetime import UTC

import httpx

# 409 codes: the integration cannot give a token until its user connects the account again
REAUTH_CODES = frozenset(
    {"reauth_required", "integration_inactive", "integration_revoked", "token_expired", "integration_error",
     "integration_pending"}
)  # fmt: skip


class BrokerError(Exception):
    """Any failure to get a token or credentials from the broker. `code` is the broker's stable error code (or
    `http_<status>` when the answer was not the broker's JSON), `status` the HTTP status (None: no answer)."""

    def __init__(self, message: str, *, code: str, status: int | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.code = code
        self.status = status

    def __str__(self) -> str:
        return f"{self.code}: {self.message}" if self.status is None else f"{self.code} ({self.status}): {self.message}"


class ReauthRequired(BrokerError):
    """The integration's grant is gone, or it is inactive or revoked: ask the user to connect the account again
    (`code` says which: reauth_required, token_expired, integration_inactive, integration_revoked, …)."""


class IntegrationNotFound(BrokerError):
    """No such integration (never connected, or deleted)."""


class Unauthorized(BrokerError):
    """The broker refused this client's credentials (401) or this caller (403): a configuration problem."""


class TemporarilyUnavailable(BrokerError):
    """The broker (or the provider behind it) cannot answer now; `retry_after` is when to try again, in seconds
    (None when it did not say). Raised after the client's own bounded retries."""

    def __init__(self, message: str, *, code: str, status: int | None = None, retry_after: float | None = None):
        super().__init__(message, code=code, status=status)
        self.retry_after = retry_after


def retry_after(response: httpx.Response, now: float | None = None) -> float | None:
    """`Retry-After` in seconds (delta-seconds or an HTTP date), None when absent or unreadable."""
    value = response.headers.get("Retry-After", "").strip()
    if not value:
        return None
    if value.isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, when.timestamp() - (time.time() if now is None else now))


def error_for(response: httpx.Response) -> BrokerError:
    """The typed error for a broker answer that is not a success."""
    status = response.status_code
    code, message = f"http_{status}", f"the broker answered HTTP {status}"
    try:
        body = response.json()
    except ValueError:
        body = None
    error = body.get("error") if isinstance(body, dict) else None
    if isinstance(error, dict) and isinstance(error.get("code"), str):
        code, message = error["code"], str(error.get("message", message))[:500]
    if status == 409 and code in REAUTH_CODES:
        return ReauthRequired(message, code=code, status=status)
    if status == 404 and code == "integration_not_found":
        return IntegrationNotFound(message, code=code, status=status)
    if status in (401, 403):
        return Unauthorized(message, code=code, status=status)
    if status == 503:
        return TemporarilyUnavailable(message, code=code, status=status, retry_after=retry_after(response))
    return BrokerError(message, code=code, status=status)
