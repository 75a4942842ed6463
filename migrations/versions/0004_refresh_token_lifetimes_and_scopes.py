"""Refresh-token lifetimes and what is known of the granted scopes.

`refresh_token_expires_at`: when the refresh token ends if nothing is done (the provider's
`refresh_token_expires_in`, the catalog's absolute lifetime, or the end of its idle window). `keep_alive_at`: when
the refresh job refreshes to keep an idle window open. `expiry_warned_for`: the end an `integration.expiring_soon`
event was emitted for (once per window). `scopes_known`: false when the provider did not report the granted
scopes (rows written before this revision keep what they had: true). `provider_metadata`: facts a hook keeps from
token responses (Salesforce's `instance_url`).

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-03
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import mysql, postgresql

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

JSON_DOC = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")
KEEP_ALIVE = sa.text("status = 'active' AND keep_alive_at IS NOT NULL")
ENDING = sa.text("status = 'active' AND refresh_token_expires_at IS NOT NULL")
TIMESTAMP = sa.DateTime(timezone=True).with_variant(mysql.DATETIME(fsp=6), "mysql")  # MySQL: UTC, microseconds


def empty_json_default() -> sa.TextClause:
    """MySQL 8 takes a JSON column's default only as an expression, in parentheses (MariaDB takes either)."""
    return sa.text("('{}')") if op.get_bind().dialect.name == "mysql" else sa.text("'{}'")


def upgrade() -> None:
    with op.batch_alter_table("entity_integrations") as batch:
        batch.add_column(sa.Column("refresh_token_expires_at", TIMESTAMP))
        batch.add_column(sa.Column("keep_alive_at", TIMESTAMP))
        batch.add_column(sa.Column("expiry_warned_for", TIMESTAMP))
        batch.add_column(sa.Column("scopes_known", sa.Boolean(), server_default=sa.true(), nullable=False))
        batch.add_column(sa.Column("provider_metadata", JSON_DOC, server_default=empty_json_default(), nullable=False))
    op.create_index(
        "ix_entity_integrations_keep_alive", "entity_integrations", ["keep_alive_at"],
        postgresql_where=KEEP_ALIVE, sqlite_where=KEEP_ALIVE,
    )  # fmt: skip
    op.create_index(
        "ix_entity_integrations_refresh_token_end", "entity_integrations", ["refresh_token_expires_at"],
        postgresql_where=ENDING, sqlite_where=ENDING,
    )  # fmt: skip


def downgrade() -> None:
    op.drop_index("ix_entity_integrations_refresh_token_end", table_name="entity_integrations")
    op.drop_index("ix_entity_integrations_keep_alive", table_name="entity_integrations")
    with op.batch_alter_table("entity_integrations") as batch:
        batch.drop_column("provider_metadata")
        batch.drop_column("scopes_known")
        batch.drop_column("expiry_warned_for")
        batch.drop_column("keep_alive_at")
        batch.drop_column("refresh_token_expires_at")
