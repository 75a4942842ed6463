"""Engine factory: Cloud SQL connector (IAM auth) | DATABASE_URL | embedded SQLite file, in that order.

MySQL (PyMySQL) engines run in READ COMMITTED, PostgreSQL's default, so a statement sees what committed before it
and a locking read takes no gap locks (InnoDB's REPEATABLE READ default would block claims on neighbouring rows),
and ping a connection at checkout (SQLAlchemy's pre-ping: a round trip, as PyMySQL gives no socket to poll).

PostgreSQL pools do not ping a connection before each use (a round trip per checkout). A connection the server
has closed (a restart, `pg_terminate_backend`, an idle timeout) has the server's goodbye or EOF waiting on its
socket, where a live idle one has nothing to read: a zero-timeout poll at checkout sees it, and the pool connects
anew. A connection that dies between that check and its first statement fails that statement; SQLAlchemy then
invalidates the pool, so the next checkout connects afresh.
"""

from __future__ import annotations

import logging
import select
from collections.abc import Callable
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine, event, text
from sqlalchemy.exc import DisconnectionError, InterfaceError, OperationalError
from sqlalchemy.pool import ConnectionPoolEntry, PoolProxiedConnection

from shared.adapters import pg8000_statements
from shared.adapters.pg_pool import Connect, cloud_sql_connect
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


def build_engine(
    settings: Settings, *, connector_factory: ConnectorFactory | None = None, connect: Connect | None = None
) -> Engine:
    """`connect`: the instance's Cloud SQL connect function when it already has one (one connector per process)."""
    if settings.instance_connection_name:
        return _cloud_sql_engine(settings, connect or cloud_sql_connect(settings, connector_factory))
    return engine_for_url(
        database_url(settings), pool_size=settings.db_pool_size, max_overflow=settings.db_max_overflow
    )


def engine_for_url(url: str, *, pool_size: int = 5, max_overflow: int = 2) -> Engine:
    # hide_parameters: SQL errors and logs never show bound values (ciphertexts, digests, identities).
    if url.startswith("sqlite"):
        engine = create_engine(url, connect_args={"check_same_thread": False, "timeout": 30}, hide_parameters=True)
        event.listen(engine, "connect", _sqlite_pragmas)
        return engine
    if url.startswith("mysql"):
        return create_engine(url, **_mysql_options(), pool_size=pool_size, max_overflow=max_overflow)
    pg8000_statements.install()
    engine = create_engine(url, pool_size=pool_size, max_overflow=max_overflow, pool_recycle=1800, hide_parameters=True)
    event.listen(engine, "checkout", _discard_if_closed)
    return engine


def _mysql_options() -> dict[str, Any]:
    return {"isolation_level": "READ COMMITTED", "pool_pre_ping": True, "pool_recycle": 1800, "hide_parameters": True}


def _discard_if_closed(dbapi_connection: Any, _record: ConnectionPoolEntry, _proxy: PoolProxiedConnection) -> None:
    sock = getattr(dbapi_connection, "_usock", None)  # pg8000's socket (an SSLSocket through the connector)
    if sock is None:
        return
    try:
        waiting = bool(select.select([sock], [], [], 0)[0]) or bool(getattr(sock, "pending", lambda: 0)())
    except (OSError, ValueError):  # closed already
        waiting = True
    if waiting:
        raise DisconnectionError("the server closed this connection")  # the pool replaces it


def _sqlite_pragmas(dbapi_connection: Any, _record: ConnectionPoolEntry) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.close()


def _cloud_sql_engine(settings: Settings, connect: Connect) -> Engine:
    if settings.dialect == "mysql":
        return create_engine(
            "mysql+pymysql://", creator=connect, pool_size=settings.db_pool_size,
            max_overflow=settings.db_max_overflow, **_mysql_options(),
        )  # fmt: skip
    pg8000_statements.install()
    engine = create_engine(
        "postgresql+pg8000://",
        creator=connect,
        pool_size=settings.db_pool_size,
        max_overflow=settings.db_max_overflow,
        pool_recycle=1800,
        hide_parameters=True,
    )
    event.listen(engine, "checkout", _discard_if_closed)
    return engine


def wait_for_database(engine: Engine, timeout: float) -> None:
    """Connect once, retrying with exponential backoff (0.5 s up to 10 s) until `timeout` seconds have passed; then
    the last error is raised. On Cloud Run, Direct VPC egress may carry a new instance's first connection only after
    up to a minute."""
    import tenacity  # only `broker migrate` waits: the functions' cold starts do not import it

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
