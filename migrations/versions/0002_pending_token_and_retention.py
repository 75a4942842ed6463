"""A rotated refresh token kept in the row until the secret store takes it; a count of definitive refusals;
an index for audit retention.

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

PENDING = sa.text("pending_secret_ciphertext IS NOT NULL")


def upgrade() -> None:
    with op.batch_alter_table("entity_integrations") as batch:
        batch.add_column(sa.Column("pending_secret_ciphertext", sa.LargeBinary()))
        batch.add_column(sa.Column("pending_secret_key_version", sa.Integer()))
        batch.add_column(sa.Column("consecutive_refusals", sa.Integer(), server_default=sa.text("0"), nullable=False))
    op.create_index(
        "ix_entity_integrations_pending",
        "entity_integrations",
        ["updated_at"],
        postgresql_where=PENDING,
        sqlite_where=PENDING,
    )
    op.create_index("ix_audit_events_occurred_at", "audit_events", ["occurred_at"])


def downgrade() -> None:
    op.drop_index("ix_audit_events_occurred_at", table_name="audit_events")
    op.drop_index("ix_entity_integrations_pending", table_name="entity_integrations")
    with op.batch_alter_table("entity_integrations") as batch:
        batch.drop_column("consecutive_refusals")
        batch.drop_column("pending_secret_key_version")
        batch.drop_column("pending_secret_ciphertext")
