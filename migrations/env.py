"""Alembic environment. The connection comes from the broker's own settings (see shared.adapters.schema)."""

from __future__ import annotations

from alembic import context
from sqlalchemy import Connection

from shared.adapters.orm import Base


def run(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=Base.metadata,
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()


def main() -> None:
    connection = context.config.attributes.get("connection")
    if connection is not None:
        run(connection)
        return
    # Plain `alembic` CLI use: build the engine from settings like the service does.
    from shared.adapters.db import build_engine
    from shared.config import get_settings

    with build_engine(get_settings()).begin() as conn:
        run(conn)


main()
