"""A rotated refresh token kept in the row until the secret store takes it; an index for audit retention.

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


def upgrade() -> None:
    with op.batch_alter_table("entity_integrations") as batch:
        batch.add_column(sa.Column("pending_secret_ciphertext", sa.LargeBinary()))
        batch.add_column(sa.Column("pending_secret_key_version", sa.Integer()))
    op.create_index("ix_audit_events_occurred_at", "audit_events", ["occurred_at"])


def downgrade() -> None:
    op.drop_index("ix_audit_events_occurred_at", table_name="audit_events")
    with op.batch_alter_table("entity_integrations") as batch:
        batch.drop_column("pending_secret_key_version")
        batch.drop_column("pending_secret_ciphertext")
