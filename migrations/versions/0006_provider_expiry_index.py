"""The refresh fan-out's per-provider claim: an index on (provider, token_expires_at) over active rows, so a
shard's claim reads its batch and not every due row of other providers.

Revision ID: 0006
Revises: 0005
Create Date: 2027-01-15
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

EXPIRING = sa.text("status = 'active' AND token_expires_at IS NOT NULL")


def upgrade() -> None:
    # Partial where the dialect has partial indexes (PostgreSQL, SQLite); a plain index elsewhere (MySQL).
    op.create_index(
        "ix_entity_integrations_provider_expiring",
        "entity_integrations",
        ["provider", "token_expires_at"],
        postgresql_where=EXPIRING,
        sqlite_where=EXPIRING,
    )


def downgrade() -> None:
    op.drop_index("ix_entity_integrations_provider_expiring", table_name="entity_integrations")
