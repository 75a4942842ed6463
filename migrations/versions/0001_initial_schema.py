"""Initial schema: entity_integrations, oauth_states, audit_events, vault_secret_versions.

Revision ID: 0001
Revises:
Create Date: 2026-11-23
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import mysql, postgresql

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

JSON_DOC = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")
EXPIRING = sa.text("status = 'active' AND token_expires_at IS NOT NULL")


# MySQL: CHAR(32) hex, as MySQL has no UUID type (not MariaDB's own UUID, which sorts differently from the bytes).
UUID = sa.Uuid().with_variant(sa.Uuid(native_uuid=False), "mysql")
TIMESTAMP = sa.DateTime(timezone=True).with_variant(mysql.DATETIME(fsp=6), "mysql")  # MySQL: UTC, microseconds


def ts(name: str, nullable: bool = True) -> sa.Column[object]:
    return sa.Column(name, TIMESTAMP, nullable=nullable)


def mysql_options() -> dict[str, Any]:
    """On MySQL, text compares byte for byte, trailing spaces included (its default collations ignore case and
    pad with spaces, which would make `Alice`, `alice` and `alice ` one entity). Nothing elsewhere."""
    bind = op.get_bind()
    if bind.dialect.name != "mysql":
        return {}
    collation = "utf8mb4_nopad_bin" if getattr(bind.dialect, "is_mariadb", False) else "utf8mb4_0900_bin"
    return {"mysql_charset": "utf8mb4", "mysql_collate": collation}


def upgrade() -> None:
    options = mysql_options()
    op.create_table(
        "entity_integrations",
        sa.Column("id", UUID, nullable=False),
        sa.Column("entity_id", sa.String(255), nullable=False),
        sa.Column("provider", sa.String(64), nullable=False),
        sa.Column("credential_type", sa.String(16), nullable=False),
        sa.Column("status", sa.String(24), nullable=False),
        sa.Column("label", sa.String(200)),
        sa.Column("account_subject", sa.String(255)),
        sa.Column("account_email", sa.String(320)),
        sa.Column("account_login", sa.String(255)),
        sa.Column("granted_scopes", JSON_DOC, nullable=False),
        sa.Column("secret_ref", sa.String(255)),
        sa.Column("secret_version", sa.Integer()),
        ts("token_expires_at"),
        sa.Column("access_token_ciphertext", sa.LargeBinary()),
        sa.Column("access_token_key_version", sa.Integer()),
        sa.Column("credential_version", sa.BigInteger(), server_default=sa.text("0"), nullable=False),
        ts("last_refreshed_at"),
        sa.Column("last_refresh_error", sa.String(500)),
        sa.Column("consecutive_failures", sa.Integer(), server_default=sa.text("0"), nullable=False),
        ts("next_attempt_after"),
        sa.Column("lease_owner", sa.String(128)),
        ts("lease_until"),
        ts("last_sync_at"),
        ts("last_used_at"),
        sa.Column("config", JSON_DOC, nullable=False),
        ts("created_at", nullable=False),
        ts("updated_at", nullable=False),
        sa.CheckConstraint(
            "credential_type IN ('oauth2', 'api_key', 'basic')",
            name=op.f("ck_entity_integrations_credential_type"),
        ),
        sa.CheckConstraint(
            "status IN ('pending', 'active', 'inactive', 'expired', 'reauth_required', 'error', 'revoked')",
            name=op.f("ck_entity_integrations_status"),
        ),
        sa.CheckConstraint("credential_version >= 0", name=op.f("ck_entity_integrations_credential_version")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_entity_integrations")),
        sa.UniqueConstraint("entity_id", "provider", "account_subject", name="uq_entity_integrations_account"),
        **options,
    )
    op.create_index("ix_entity_integrations_entity_list", "entity_integrations", ["entity_id", "created_at", "id"])
    op.create_index(
        "ix_entity_integrations_expiring",
        "entity_integrations",
        ["token_expires_at"],
        postgresql_where=EXPIRING,
        sqlite_where=EXPIRING,
    )

    op.create_table(
        "oauth_states",
        sa.Column("id", UUID, nullable=False),
        sa.Column("state_hash", sa.String(64), nullable=False),
        sa.Column("entity_id", sa.String(255), nullable=False),
        sa.Column("provider", sa.String(64), nullable=False),
        sa.Column("integration_id", UUID),
        sa.Column("code_verifier_ciphertext", sa.LargeBinary()),
        sa.Column("key_version", sa.Integer()),
        sa.Column("browser_binding_hash", sa.String(64)),
        sa.Column("return_to", sa.String(2048)),
        sa.Column("requested_scopes", JSON_DOC, nullable=False),
        sa.Column("label", sa.String(200)),
        ts("created_at", nullable=False),
        ts("expires_at", nullable=False),
        ts("consumed_at"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_oauth_states")),
        sa.UniqueConstraint("state_hash", name=op.f("uq_oauth_states_state_hash")),
        **options,
    )
    op.create_index(op.f("ix_oauth_states_expires_at"), "oauth_states", ["expires_at"])

    op.create_table(
        "audit_events",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), autoincrement=True, nullable=False),
        ts("occurred_at", nullable=False),
        sa.Column("actor", sa.String(255), nullable=False),
        sa.Column("action", sa.String(64), nullable=False),
        sa.Column("outcome", sa.String(32), nullable=False),
        sa.Column("entity_id", sa.String(255)),
        sa.Column("integration_id", UUID),
        sa.Column("provider", sa.String(64)),
        sa.Column("request_id", sa.String(64)),
        sa.Column("detail", JSON_DOC, nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_audit_events")),
        **options,
    )
    op.create_index("ix_audit_events_entity", "audit_events", ["entity_id", "occurred_at"])
    op.create_index("ix_audit_events_integration", "audit_events", ["integration_id", "occurred_at"])

    op.create_table(
        "vault_secret_versions",
        sa.Column("secret_id", sa.String(255), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("ciphertext", sa.LargeBinary()),
        sa.Column("key_version", sa.Integer()),
        sa.Column("labels", JSON_DOC, nullable=False),
        ts("created_at", nullable=False),
        ts("destroyed_at"),
        sa.CheckConstraint("version >= 1", name=op.f("ck_vault_secret_versions_version")),
        sa.PrimaryKeyConstraint("secret_id", "version", name=op.f("pk_vault_secret_versions")),
        **options,
    )


def downgrade() -> None:
    op.drop_table("vault_secret_versions")
    op.drop_index("ix_audit_events_integration", table_name="audit_events")
    op.drop_index("ix_audit_events_entity", table_name="audit_events")
    op.drop_table("audit_events")
    op.drop_index(op.f("ix_oauth_states_expires_at"), table_name="oauth_states")
    op.drop_table("oauth_states")
    op.drop_index("ix_entity_integrations_expiring", table_name="entity_integrations")
    op.drop_index("ix_entity_integrations_entity_list", table_name="entity_integrations")
    op.drop_table("entity_integrations")
