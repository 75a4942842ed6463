"""SQLAlchemy tables. Alembic migrations in `migrations/` create exactly these (a test compares them).

Core tables, not ORM classes: nothing here needs the ORM, whose import and mapping cost every function's cold start
about a fifth of a second. Each table is wrapped so that its columns read as attributes (`IntegrationRow.id`), and
the wrapper stands for the table in `select`, `insert`, `update`, `delete` and `returning`.
"""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    Column,
    Index,
    Integer,
    LargeBinary,
    String,
    Table,
    Text,
    UniqueConstraint,
    text,
    true,
)

from shared.adapters.orm_events import EventAttemptRow, EventDeliveryRow, EventDestinationRow, EventRow
from shared.adapters.sql_types import AutoId, JsonDoc, PortableUuid
from shared.adapters.table_base import Base, Rows, metadata
from shared.adapters.table_base import ts as _ts
from shared.domain.models import CredentialType, Status

# Every table is registered on `metadata` once this module is imported (the event tables live in orm_events).
__all__ = [
    "AuditEventRow", "Base", "ConnectSessionRow", "EventAttemptRow", "EventDeliveryRow", "EventDestinationRow",
    "EventRow", "IntegrationRow", "OAuthStateRow", "VaultSecretVersionRow", "WrappedDataKeyRow", "metadata",
]  # fmt: skip


def _one_of(column: str, values: type[CredentialType] | type[Status]) -> str:
    return f"{column} IN ({', '.join(repr(v.value) for v in values)})"


class IntegrationRow(Rows):
    __table__ = Table(
        "entity_integrations",
        metadata,
        Column("id", PortableUuid, primary_key=True),
        Column("entity_id", String(255), nullable=False),
        Column("provider", String(64), nullable=False),
        Column("credential_type", String(16), nullable=False),
        Column("status", String(24), nullable=False),
        Column("label", String(200)),
        Column("account_subject", String(255)),
        Column("account_email", String(320)),
        Column("account_login", String(255)),
        Column("granted_scopes", JsonDoc, nullable=False, default=list),
        Column("secret_ref", String(255)),
        Column("secret_version", Integer),
        Column("secret_backend", String(16)),  # the SECRET_BACKEND holding the master secret; NULL: the configured one
        _ts("token_expires_at"),
        Column("access_token_ciphertext", LargeBinary),
        Column("access_token_key_version", Integer),
        # A rotated refresh token the secret store has not taken yet (sealed under the data key, bound to the row).
        Column("pending_secret_ciphertext", LargeBinary),
        Column("pending_secret_key_version", Integer),
        Column("credential_version", BigInteger, nullable=False, default=0, server_default=text("0")),
        _ts("last_refreshed_at"),
        Column("last_refresh_error", String(500)),
        Column("consecutive_failures", Integer, nullable=False, default=0, server_default=text("0")),
        Column("consecutive_refusals", Integer, nullable=False, default=0, server_default=text("0")),
        _ts("next_attempt_after"),
        Column("lease_owner", String(128)),
        _ts("lease_until"),
        _ts("last_sync_at"),
        _ts("last_used_at"),
        Column("config", JsonDoc, nullable=False, default=dict),
        _ts("created_at", nullable=False),
        _ts("updated_at", nullable=False),
        # Refresh-token lifetimes (0004): its end, when the job keeps an idle window open, the end warned about.
        _ts("refresh_token_expires_at"),
        _ts("keep_alive_at"),
        _ts("expiry_warned_for"),
        Column("scopes_known", Boolean, nullable=False, default=True, server_default=true()),
        Column("provider_metadata", JsonDoc, nullable=False, default=dict, server_default=text("'{}'")),
        UniqueConstraint("entity_id", "provider", "account_subject", name="uq_entity_integrations_account"),
        CheckConstraint(_one_of("credential_type", CredentialType), name="credential_type"),
        CheckConstraint(_one_of("status", Status), name="status"),
        CheckConstraint("credential_version >= 0", name="credential_version"),
        Index("ix_entity_integrations_entity_list", "entity_id", "created_at", "id"),
        Index(
            "ix_entity_integrations_expiring",
            "token_expires_at",
            postgresql_where=text("status = 'active' AND token_expires_at IS NOT NULL"),
            sqlite_where=text("status = 'active' AND token_expires_at IS NOT NULL"),
        ),
        Index(  # the refresh job keeps idle refresh-token windows open
            "ix_entity_integrations_keep_alive",
            "keep_alive_at",
            postgresql_where=text("status = 'active' AND keep_alive_at IS NOT NULL"),
            sqlite_where=text("status = 'active' AND keep_alive_at IS NOT NULL"),
        ),
        Index(  # ... and warns before a refresh token ends
            "ix_entity_integrations_refresh_token_end",
            "refresh_token_expires_at",
            postgresql_where=text("status = 'active' AND refresh_token_expires_at IS NOT NULL"),
            sqlite_where=text("status = 'active' AND refresh_token_expires_at IS NOT NULL"),
        ),
        Index(  # a fan-out shard claims one provider's due rows (migration 0006)
            "ix_entity_integrations_provider_expiring",
            "provider",
            "token_expires_at",
            postgresql_where=text("status = 'active' AND token_expires_at IS NOT NULL"),
            sqlite_where=text("status = 'active' AND token_expires_at IS NOT NULL"),
        ),
        Index(  # the refresh job finds rotated tokens still waiting for the secret store
            "ix_entity_integrations_pending",
            "updated_at",
            postgresql_where=text("pending_secret_ciphertext IS NOT NULL"),
            sqlite_where=text("pending_secret_ciphertext IS NOT NULL"),
        ),
    )


class OAuthStateRow(Rows):
    __table__ = Table(
        "oauth_states",
        metadata,
        Column("id", PortableUuid, primary_key=True),
        Column("state_hash", String(64), nullable=False, unique=True),
        Column("entity_id", String(255), nullable=False),
        Column("provider", String(64), nullable=False),
        Column("integration_id", PortableUuid),
        Column("code_verifier_ciphertext", LargeBinary),
        Column("key_version", Integer),
        Column("browser_binding_hash", String(64)),
        Column("return_to", String(2048)),
        Column("requested_scopes", JsonDoc, nullable=False, default=list),
        Column("label", String(200)),
        _ts("created_at", nullable=False),
        _ts("expires_at", nullable=False, index=True),
        _ts("consumed_at"),
        # The connect experience (migration 0007): the session that started the flow, the popup's message origin
        # and the outcome GET /connect/flows/{id} reports.
        Column("session_id", PortableUuid),
        Column("message_origin", String(2048)),
        Column("outcome", String(16)),
        Column("outcome_integration_id", PortableUuid),
        Column("outcome_error", String(64)),
    )


class ConnectSessionRow(Rows):
    """POST /connect/sessions: only the SHA-256 of the bearer token is kept."""

    __table__ = Table(
        "connect_sessions",
        metadata,
        Column("id", PortableUuid, primary_key=True),
        Column("token_hash", String(64), nullable=False, unique=True),
        Column("entity_id", String(255), nullable=False),
        Column("allowed_origin", String(2048), nullable=False),
        Column("allowed_providers", JsonDoc),
        Column("integration_id", PortableUuid),
        Column("label", String(200)),
        Column("created_by", String(255), nullable=False),
        _ts("created_at", nullable=False),
        _ts("expires_at", nullable=False, index=True),
    )


class AuditEventRow(Rows):
    __table__ = Table(
        "audit_events",
        metadata,
        Column("id", AutoId, primary_key=True, autoincrement=True),
        _ts("occurred_at", nullable=False),
        Column("actor", String(255), nullable=False),
        Column("action", String(64), nullable=False),
        Column("outcome", String(32), nullable=False),
        Column("entity_id", String(255)),
        Column("integration_id", PortableUuid),
        Column("provider", String(64)),
        Column("request_id", String(64)),
        Column("detail", JsonDoc, nullable=False, default=dict),
        Index("ix_audit_events_integration", "integration_id", "occurred_at"),
        Index("ix_audit_events_entity", "entity_id", "occurred_at"),
        Index("ix_audit_events_occurred_at", "occurred_at"),  # retention deletes by age
    )


class VaultSecretVersionRow(Rows):
    """The embedded vault (SECRET_BACKEND=database): one row per secret version, payload AES-256-GCM sealed."""

    __table__ = Table(
        "vault_secret_versions",
        metadata,
        Column("secret_id", String(255), primary_key=True),
        Column("version", Integer, primary_key=True),
        Column("ciphertext", LargeBinary),
        Column("key_version", Integer),
        Column("labels", JsonDoc, nullable=False, default=dict),
        _ts("created_at", nullable=False),
        _ts("destroyed_at"),
        CheckConstraint("version >= 1", name="version"),
    )


class WrappedDataKeyRow(Rows):
    """Data keys generated by OpenBao Transit, kept wrapped: one per Transit key version (DATA_KEY_TRANSIT)."""

    __table__ = Table(
        "wrapped_data_keys",
        metadata,
        Column("source", String(255), primary_key=True),  # the DATA_KEY_TRANSIT value: <mount>/<key name>
        Column("version", Integer, primary_key=True),
        Column("ciphertext", Text, nullable=False),  # vault:v<version>:…
        _ts("created_at", nullable=False),
        CheckConstraint("version >= 1", name="version"),
    )
