"""The events outbox: events, their deliveries and attempts, and each destination's health.

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-02
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import mysql, postgresql

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

JSON_DOC = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")
AUTO_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
UNDISPATCHED = sa.text("dispatched_at IS NULL")
PENDING = sa.text("status = 'pending'")


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
        "events",
        sa.Column("seq", AUTO_ID, primary_key=True, autoincrement=True),
        sa.Column("id", UUID, nullable=False),
        sa.Column("type", sa.String(64), nullable=False),
        sa.Column("integration_id", UUID, nullable=False),
        sa.Column("entity_id", sa.String(255), nullable=False),
        sa.Column("provider", sa.String(64), nullable=False),
        ts("occurred_at", nullable=False),
        sa.Column("data", JSON_DOC, nullable=False),
        ts("dispatched_at"),
        sa.PrimaryKeyConstraint("seq", name=op.f("pk_events")),
        sa.UniqueConstraint("id", name=op.f("uq_events_id")),
        **options,
    )
    op.create_index("ix_events_integration", "events", ["integration_id", "seq"])
    op.create_index("ix_events_entity", "events", ["entity_id", "seq"])
    op.create_index("ix_events_occurred_at", "events", ["occurred_at"])
    op.create_index(
        "ix_events_undispatched", "events", ["seq"], postgresql_where=UNDISPATCHED, sqlite_where=UNDISPATCHED
    )
    op.create_table(
        "event_deliveries",
        sa.Column("event_seq", sa.BigInteger(), nullable=False),
        sa.Column("destination", sa.String(80), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("attempts", sa.Integer(), server_default=sa.text("0"), nullable=False),
        ts("next_attempt_at", nullable=False),
        ts("give_up_at", nullable=False),
        sa.Column("lease_owner", sa.String(128)),
        ts("lease_until"),
        sa.Column("last_error", sa.String(200)),
        ts("delivered_at"),
        ts("updated_at", nullable=False),
        sa.PrimaryKeyConstraint("event_seq", "destination", name=op.f("pk_event_deliveries")),
        sa.ForeignKeyConstraint(
            ["event_seq"], ["events.seq"], name=op.f("fk_event_deliveries_event_seq"), ondelete="CASCADE"
        ),
        sa.CheckConstraint("status IN ('pending', 'delivered', 'dead')", name=op.f("ck_event_deliveries_status")),
        **options,
    )
    op.create_index(
        "ix_event_deliveries_due", "event_deliveries", ["destination", "next_attempt_at"],
        postgresql_where=PENDING, sqlite_where=PENDING,
    )  # fmt: skip
    op.create_table(
        "event_attempts",
        sa.Column("id", AUTO_ID, primary_key=True, autoincrement=True),
        sa.Column("event_seq", sa.BigInteger(), nullable=False),
        sa.Column("destination", sa.String(80), nullable=False),
        ts("attempted_at", nullable=False),
        sa.Column("outcome", sa.String(16), nullable=False),
        sa.Column("http_status", sa.Integer()),
        sa.Column("error", sa.String(200)),
        sa.Column("duration_ms", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_event_attempts")),
        sa.ForeignKeyConstraint(
            ["event_seq"], ["events.seq"], name=op.f("fk_event_attempts_event_seq"), ondelete="CASCADE"
        ),
        **options,
    )
    op.create_index("ix_event_attempts_event", "event_attempts", ["event_seq", "id"])
    op.create_table(
        "event_destinations",
        sa.Column("id", sa.String(80), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("target", sa.String(2048), nullable=False),
        sa.Column("consecutive_failures", sa.Integer(), server_default=sa.text("0"), nullable=False),
        ts("open_until"),
        ts("last_success_at"),
        ts("last_failure_at"),
        sa.Column("last_error", sa.String(200)),
        sa.Column("lease_owner", sa.String(128)),
        ts("lease_until"),
        ts("updated_at", nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_event_destinations")),
        **options,
    )


def downgrade() -> None:
    op.drop_table("event_destinations")
    if op.get_bind().dialect.name != "mysql":  # there it serves the foreign key: it goes with the table
        op.drop_index("ix_event_attempts_event", table_name="event_attempts")
    op.drop_table("event_attempts")
    op.drop_index("ix_event_deliveries_due", table_name="event_deliveries")
    op.drop_table("event_deliveries")
    for index in ("ix_events_undispatched", "ix_events_occurred_at", "ix_events_entity", "ix_events_integration"):
        op.drop_index(index, table_name="events")
    op.drop_table("events")
