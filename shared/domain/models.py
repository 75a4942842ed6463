"""Domain records: plain dataclasses, no ORM."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any
from uuid import UUID


@dataclass(frozen=True)
class ClientCredentials:
    client_id: str
    client_secret: str | None

    def __repr__(self) -> str:  # never print the secret
        return f"ClientCredentials(client_id={self.client_id!r}, client_secret=***)"


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
    secret_backend: str | None = None  # where the master secret lives (a SECRET_BACKEND name); None: the configured
    token_expires_at: datetime | None = None
    access_token_ciphertext: bytes | None = None
    access_token_key_version: int | None = None
    pending_secret_ciphertext: bytes | None = None
    pending_secret_key_version: int | None = None
    credential_version: int = 0
    last_refreshed_at: datetime | None = None
    last_refresh_error: str | None = None
    consecutive_failures: int = 0
    consecutive_refusals: int = 0  # definitive-looking refusals in a row (a 4xx without a transient marker)
    next_attempt_after: datetime | None = None
    lease_owner: str | None = None
    lease_until: datetime | None = None
    last_sync_at: datetime | None = None
    last_used_at: datetime | None = None
    config: dict[str, Any] = field(default_factory=dict)
    refresh_token_expires_at: datetime | None = None  # when the refresh token ends if nothing is done
    keep_alive_at: datetime | None = None  # when the refresh job refreshes to keep an idle window open
    expiry_warned_for: datetime | None = None  # the end an `integration.expiring_soon` event was emitted for
    scopes_known: bool = True  # false: the provider did not report the granted scopes (granted_scopes is empty)
    provider_metadata: dict[str, Any] = field(default_factory=dict)  # kept by hooks (Salesforce's instance_url)


def secret_id_for(prefix: str, integration_id: UUID) -> str:
    """The one naming rule for an integration's master secret (Secret Manager ids: [A-Za-z0-9_-], ≤ 255)."""
    return f"{prefix}-{integration_id}"


@dataclass(frozen=True)
class Account:
    """Who the connected third-party account is, as the provider says."""

    subject: str | None
    email: str | None = None
    login: str | None = None


@dataclass
class OAuthState:
    """A single-use handshake row. Only digests of the state and the browser binding are kept."""

    id: UUID
    state_hash: str
    entity_id: str
    provider: str
    created_at: datetime
    expires_at: datetime
    return_to: str
    requested_scopes: list[str] = field(default_factory=list)
    integration_id: UUID | None = None
    code_verifier_ciphertext: bytes | None = None
    key_version: int | None = None
    browser_binding_hash: str | None = None
    label: str | None = None
    consumed_at: datetime | None = None
    # The connect experience: the session that started the flow, where the popup's result message goes (None: the
    # flow ends in a redirect to return_to), and the flow's outcome once the callback has run.
    session_id: UUID | None = None
    message_origin: str | None = None
    outcome: str | None = None  # connected | failed; None while pending
    outcome_integration_id: UUID | None = None
    outcome_error: str | None = None


@dataclass(frozen=True)
class ConnectSession:
    """A short-lived credential the product's backend mints for one entity (POST /connect/sessions): the hosted
    Connect page and the JS SDK use it instead of an ID token. Only the SHA-256 of its token is stored."""

    id: UUID
    token_hash: str
    entity_id: str
    allowed_origin: str
    created_at: datetime
    expires_at: datetime
    allowed_providers: list[str] | None = None  # None: every configured provider
    integration_id: UUID | None = None  # a reconnect session: only this integration
    label: str | None = None
    created_by: str = ""

    def permits(self, provider: str) -> bool:
        return self.allowed_providers is None or provider in self.allowed_providers


@dataclass(frozen=True)
class AuditEvent:
    actor: str
    action: str
    outcome: str
    entity_id: str | None = None
    integration_id: UUID | None = None
    provider: str | None = None
    detail: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class AuditRecord:
    """An audit event as stored: its id (ascending with time) and when it was written."""

    id: int
    occurred_at: datetime
    event: AuditEvent


@dataclass(frozen=True)
class AuditQuery:
    """Filters of the audit trail (`broker audit`, GET /audit): all optional, newest first, `before_id` pages on."""

    integration_id: UUID | None = None
    entity_id: str | None = None
    action: str | None = None
    since: datetime | None = None
    before_id: int | None = None
    limit: int = 100


@dataclass(frozen=True)
class IntegrationSearch:
    """Operators' listing across entities (`broker integrations list`), in creation order."""

    entity_id: str | None = None
    provider: str | None = None
    status: str | None = None
    expiring_before: datetime | None = None
    limit: int = 1000
