"""What the broker answers: an access token, or the static credentials of an API-key / basic integration."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from types import MappingProxyType
from typing import Any

from broker_client.errors import BrokerError


@dataclass(frozen=True)
class Token:
    integration_id: str
    access_token: str = field(repr=False)  # never in a log line or a traceback
    token_type: str
    expires_at: datetime | None  # None: the provider's tokens do not expire
    scopes: tuple[str, ...]

    def valid_for(self, seconds: float, now: float) -> bool:
        """Whether the token is still good `seconds` from `now` (a POSIX timestamp)."""
        return self.expires_at is None or self.expires_at.timestamp() - seconds > now


@dataclass(frozen=True)
class Credentials:
    integration_id: str
    credential_type: str  # "api_key" or "basic"
    credentials: Mapping[str, Any] = field(repr=False)


def unexpected(integration_id: str, what: str) -> BrokerError:
    return BrokerError(f"integration {integration_id}: {what}", code="unexpected_answer")


def parse_token(integration_id: str, body: Any) -> Token:
    if not isinstance(body, dict) or not isinstance(body.get("access_token"), str):
        if isinstance(body, dict) and "credentials" in body:
            raise unexpected(integration_id, "holds static credentials, not OAuth tokens: use credentials()")
        raise unexpected(integration_id, "the broker's answer has no access_token")
    raw_expiry = body.get("expires_at")
    try:
        expires_at = datetime.fromisoformat(raw_expiry) if raw_expiry is not None else None
    except (TypeError, ValueError):
        raise unexpected(integration_id, "the broker's expires_at is not an ISO 8601 time") from None
    if expires_at is not None and expires_at.tzinfo is None:
        raise unexpected(integration_id, "the broker's expires_at has no time zone")
    scopes = body.get("scopes") or []
    return Token(
        integration_id=str(body.get("integration_id", integration_id)),
        access_token=body["access_token"],
        token_type=str(body.get("token_type", "Bearer")),
        expires_at=expires_at,
        scopes=tuple(str(scope) for scope in scopes),
    )


def parse_credentials(integration_id: str, body: Any) -> Credentials:
    if not isinstance(body, dict) or not isinstance(body.get("credentials"), dict):
        if isinstance(body, dict) and "access_token" in body:
            raise unexpected(integration_id, "is an OAuth integration: use token() or auth()")
        raise unexpected(integration_id, "the broker's answer has no credentials")
    return Credentials(
        integration_id=str(body.get("integration_id", integration_id)),
        credential_type=str(body.get("credential_type", "")),
        credentials=MappingProxyType(dict(body["credentials"])),
    )
