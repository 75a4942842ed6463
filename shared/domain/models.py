"""Domain records: plain dataclasses, no ORM."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any
from uuid import UUID


class CredentialType(StrEnum):
    OAUTH2 = "oauth2"
    API_KEY = "api_key"
    BASIC = "basic"


class Status(StrEnum):
    PENDING = "pending"
    ACTIVE = "active"
    INACTIVE = "inactive"
    EXPIRED = "expired"
    REAUTH_REQUIRED = "reauth_required"
    ERROR = "error"
    REVOKED = "revoked"


@dataclass
class Integration:
    id: UUID
    entity_id: str
    provider: str
    credential_type: CredentialType
    status: Status
    created_at: datetime
    updated_at: datetime
    label: str | None = None
    account_subject: str | None = None
    account_email: str | None = None
    account_login: str | None = None
    granted_scopes: list[str] = field(default_factory=list)
    secret_ref: str | None = None
    secret_version: int | None = None
    token_expires_at: datetime | None = None
    access_token_ciphertext: bytes | None = None
    access_token_key_version: int | None = None
    credential_version: int = 0
    last_refreshed_at: datetime | None = None
    last_refresh_error: str | None = None
    consecutive_failures: int = 0
    next_attempt_after: datetime | None = None
    lease_owner: str | None = None
    lease_until: datetime | None = None
    last_sync_at: datetime | None = None
    last_used_at: datetime | None = None
    config: dict[str, Any] = field(default_factory=dict)


def secret_id_for(prefix: str, integration_id: UUID) -> str:
    """The one naming rule for an integration's master secret (Secret Manager ids: [A-Za-z0-9_-], ≤ 255)."""
    return f"{prefix}-{integration_id}"
