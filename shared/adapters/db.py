"""Engine factory: Cloud SQL connector (IAM auth) | DATABASE_URL | embedded SQLite file, in that order."""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

import tenacity
from sqlalchemy import Engine, create_engine, event, text
from sqlalchemy.exc import InterfaceError, OperationalError
from sqlalchemy.pool import ConnectionPoolEntry

from shared.config import Settings

ConnectorFactory = Callable[..., Any]

log = logging.getLogger("broker.db")

# What a database that is not reachable yet raises (refused, timed out, no route): retried. A refused login or a
# missing database is not: waiting would not change it.
NOT_REACHABLE_YET = (OperationalError, InterfaceError, OSError)


def sqlite_url(data_dir: str) -> str:
    path = Path(data_dir).resolve()
    path.mkdir(parents=True, exist_ok=True)
    return f"sqlite:///{path / 'broker.db'}"


def database_url(settings: Settings) -> str:
    return settings.database_url or sqlite_url(settings.local_data_dir)


def build_engine(settings: Settings, *, connector_factory: ConnectorFactory | None = None) -> Engine:
    if settings.instance_connection_name:
        return _cloud_sql_engine(settings, connector_factory)
    return engine_for_url(
        database_url(settings), pool_size=settings.db_pool_size, max_overflow=settings.db_max_overflow
    )


def engine_for_url(url: str, *, pool_size: int = 5, max_overflow: int = 2) -> Engine:
    # hide_parameters: SQL errors and logs never show bound values (ciphertexts, digests, identities).
    if url.startswith("sqlite"):
        engine = create_engine(url, connect_args={"check_same_thread": False, "timeout": 30}, hide_parameters=True)
        event.listen(engine, "connect", _sqlite_pragmas)
        return engine
    return create_engine(
        url, pool_size=pool_size, max_overflow=max_overflow, pool_pre_ping=True, pool_recycle=1800,
        hide_parameters=True,
    )  # fmt: skip


def _sqlite_pragmas(dbapi_connection: Any, _record: ConnectionPoolEntry) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.close()


def _cloud_sql_engine(settings: Settings, connector_factory: ConnectorFactory | None) -> Engine:
    if connector_factory is None:
        # Imported only here: the connector costs ~0.5 s of import time that local runs should not pay.
        from google.cloud.sql.connector import Connector, IPTypes

        ip_type = IPTypes.PRIVATE if settings.db_private_ip else IPTypes.PUBLIC
        connector = Connector(refresh_strategy="LAZY", ip_type=ip_type, enable_iam_auth=True)
    else:
        connector = connector_factory()

    instance = settings.instance_connection_name or ""

    def connect() -> Any:
        return connector.connect(instance, "pg8000", user=settings.db_user, db=settings.db_name)

    return create_engine(
        "postgresql+pg8000://",
        creator=connect,
        pool_size=settings.db_pool_size,
        max_overflow=settings.db_max_overflow,
        pool_pre_ping=True,
        pool_recycle=1800,
        hide_parameters=True,
    )


def wait_for_database(engine: Engine, timeout: float) -> None:
    """Connect once, retrying with exponential backoff (0.5 s up to 10 s) until `timeout` seconds have passed; then
    the last error is raised. On Cloud Run, Direct VPC egress may carry a new instance's first connection only after
    up to a minute."""

    def note(state: tenacity.RetryCallState) -> None:
        error = state.outcome.exception() if state.outcome else None
        log.warning("database not reachable yet (%s); retrying", type(error).__name__)

    for attempt in tenacity.Retrying(
        retry=tenacity.retry_if_exception_type(NOT_REACHABLE_YET),
        wait=tenacity.wait_exponential(multiplier=0.5, max=10),
        stop=tenacity.stop_after_delay(timeout),
        before_sleep=note,
        reraise=True,
    ):
        with attempt, engine.connect() as conn:
            conn.execute(text("SELECT 1"))
