"""Connect sessions (a hash of each token, the entity, the allowed origin and providers) and the connect flow's
status on its handshake row (the session, the popup's message origin, the outcome).

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-01
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import mysql, postgresql

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None

JSON_DOC = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")
UUID = sa.Uuid().with_variant(sa.Uuid(native_uuid=False), "mysql")  # MySQL: CHAR(32) hex, as in 0001
TIMESTAMP = sa.DateTime(timezone=True).with_variant(mysql.DATETIME(fsp=6), "mysql")  # MySQL: UTC, microseconds


def mysql_options() -> dict[str, Any]:
    """On MySQL, text compares byte for byte, trailing spaces included (as in 0001). Nothing elsewhere."""
    bind = op.get_bind()
    if bind.dialect.name != "mysql":
        return {}
    collation = "utf8mb4_nopad_bin" if getattr(bind.dialect, "is_mariadb", False) else "utf8mb4_0900_bin"
    return {"mysql_charset": "utf8mb4", "mysql_collate": collation}


def flow_columns() -> list[sa.Column[object]]:
    return [
        sa.Column("session_id", UUID),
        sa.Column("message_origin", sa.String(2048)),
        sa.Column("outcome", sa.String(16)),
        sa.Column("outcome_integration_id", UUID),
        sa.Column("outcome_error", sa.String(64)),
    ]


def upgrade() -> None:
    op.create_table(
        "connect_sessions",
        sa.Column("id", UUID, nullable=False),
        sa.Column("token_hash", sa.String(64), nullable=False),
        sa.Column("entity_id", sa.String(255), nullable=False),
        sa.Column("allowed_origin", sa.String(2048), nullable=False),
        sa.Column("allowed_providers", JSON_DOC),
        sa.Column("integration_id", UUID),
        sa.Column("label", sa.String(200)),
        sa.Column("created_by", sa.String(255), nullable=False),
        sa.Column("created_at", TIMESTAMP, nullable=False),
        sa.Column("expires_at", TIMESTAMP, nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_connect_sessions")),
        sa.UniqueConstraint("token_hash", name=op.f("uq_connect_sessions_token_hash")),
        **mysql_options(),
    )
    op.create_index("ix_connect_sessions_expires_at", "connect_sessions", ["expires_at"])
    with op.batch_alter_table("oauth_states") as batch:  # batch: SQLite cannot ALTER most things in place
        for column in flow_columns():
            batch.add_column(column)


def downgrade() -> None:
    with op.batch_alter_table("oauth_states") as batch:
        for column in reversed(flow_columns()):
            batch.drop_column(column.name)
    op.drop_index("ix_connect_sessions_expires_at", table_name="connect_sessions")
    op.drop_table("connect_sessions")
