"""Raw pg8000 connections for the token hot path: one prepared statement per connection, one round trip per call.

Hand-written rather than SQLAlchemy's pool because the hot path needs very little (a bounded LIFO of idle
connections, statements prepared once per connection) and must not pay for SQLAlchemy: its import (~0.2 s of the
token function's cold start) or its per-statement work (pg8000's DB-API layer re-parses the SQL text on every
execute). No connection is pinged before use: a statement that finds its connection dead (the server restarted,
`pg_terminate_backend`, an idle timeout) is retried once on a new one, and the other idle connections, likely
dead too, are closed. Statements run in autocommit (each is its own transaction).
"""

from __future__ import annotations

import contextlib
import logging
import queue
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from urllib.parse import parse_qsl, unquote, urlsplit

from shared.config import Settings
from shared.errors import DependencyUnavailable

log = logging.getLogger("broker.db")

Connect = Callable[[], Any]
RECYCLE = 1800.0  # seconds: as the SQLAlchemy engines' pool_recycle
# SQLSTATE classes that mean the session is gone: 08 connection exception, 57P operator intervention (shutdown,
# pg_terminate_backend).
DEAD_SESSION = ("08", "57P")


def url_connect(url: str) -> Connect:
    """A connect function for a `postgresql+pg8000://` URL (query parameters go to pg8000, as SQLAlchemy passes
    them)."""
    import pg8000.dbapi

    parts = urlsplit(url)
    kwargs: dict[str, Any] = {
        "user": unquote(parts.username or ""), "host": parts.hostname or "localhost", "port": parts.port or 5432,
        "database": unquote(parts.path.lstrip("/")) or None, **dict(parse_qsl(parts.query)),
    }  # fmt: skip
    if parts.password is not None:
        kwargs["password"] = unquote(parts.password)
    return lambda: pg8000.dbapi.connect(**kwargs)


def cloud_sql_connect(settings: Settings, connector_factory: Callable[[], Any] | None = None) -> Connect:
    """A connect function through the Cloud SQL Python Connector (IAM database auth, lazy refresh): its pg8000
    driver, or pymysql for a Cloud SQL for MySQL instance (DB_DIALECT=mysql)."""
    if connector_factory is None:
        # Imported only here: the connector costs ~0.5 s of import time that local runs should not pay.
        from google.cloud.sql.connector import Connector, IPTypes

        ip_type = IPTypes.PRIVATE if settings.db_private_ip else IPTypes.PUBLIC
        connector = Connector(refresh_strategy="LAZY", ip_type=ip_type, enable_iam_auth=True)
    else:
        connector = connector_factory()
    instance = settings.instance_connection_name or ""
    if settings.dialect == "mysql":
        from pymysql.constants import CLIENT

        # rowcount counts the rows matched, not only those changed, as on SQLAlchemy's own PyMySQL connections.
        flags = {"client_flag": CLIENT.FOUND_ROWS}
        return lambda: connector.connect(instance, "pymysql", user=settings.db_user, db=settings.db_name, **flags)
    return lambda: connector.connect(instance, "pg8000", user=settings.db_user, db=settings.db_name)


def is_dead_session(exc: BaseException) -> bool:
    import pg8000.exceptions

    if isinstance(exc, pg8000.exceptions.InterfaceError | OSError):
        return True
    if isinstance(exc, pg8000.exceptions.DatabaseError) and exc.args and isinstance(exc.args[0], dict):
        return str(exc.args[0].get("C", "")).startswith(DEAD_SESSION)
    return False


TIMESTAMPTZ = 1184  # the type's oid


def parse_timestamptz(text: str) -> datetime:
    """pg8000 parses timestamptz with strptime (~17 µs each; the hot path's row holds five); fromisoformat reads
        PostgreSQL's output format in well under 1 µs. Anything else (infinity, BC) goes to pg8000's parser. The
    engines' dialect (shared.adapters.pg8000_statements) reads with it too."""
    try:
        return datetime.fromisoformat(text)
    except ValueError:
        from pg8000.converters import timestamptz_in

        return timestamptz_in(text)  # type: ignore[no-any-return]


@dataclass
class _Pooled:
    conn: Any
    born: float = field(default_factory=time.monotonic)
    statements: dict[str, Any] = field(default_factory=dict)

    def run(self, sql: str, params: Mapping[str, Any]) -> tuple[Any, ...]:
        from pg8000.native import PreparedStatement

        statement = self.statements.get(sql)
        if statement is None:
            statement = self.statements[sql] = PreparedStatement(self.conn, sql)
        return tuple(statement.run(**params) or ())

    def close(self) -> None:
        with contextlib.suppress(Exception):  # a dead connection may fail to say goodbye; it is dropped anyway
            self.conn.close()


class PgConnections:
    def __init__(self, connect: Connect, size: int, *, wait: float = 30.0) -> None:
        self._connect = connect
        self._idle: queue.LifoQueue[_Pooled] = queue.LifoQueue()
        self._slots = threading.BoundedSemaphore(size)
        self._wait = wait

    def run(self, sql: str, params: Mapping[str, Any]) -> tuple[Any, ...]:
        """Rows of one prepared statement. DependencyUnavailable when the database cannot be reached or refuses
        (the error's own text, which may quote values, is never shown)."""
        import pg8000.exceptions

        if not self._slots.acquire(timeout=self._wait):
            raise DependencyUnavailable("no database connection became free in time", code="database_unavailable")
        try:
            for attempt in (1, 2):
                pooled = self._take(fresh=attempt == 2)
                try:
                    rows = pooled.run(sql, params)
                except Exception as exc:
                    if not isinstance(exc, pg8000.exceptions.Error | OSError):
                        pooled.close()
                        raise
                    if is_dead_session(exc) and attempt == 1:
                        log.warning("database connection found dead (%s); retrying on a new one", type(exc).__name__)
                        pooled.close()
                        self._close_idle()
                        continue
                    self._give_back(pooled, healthy=not is_dead_session(exc))
                    raise DependencyUnavailable(
                        f"the database refused or is unreachable ({_sqlstate(exc)})", code="database_unavailable"
                    ) from None
                self._give_back(pooled, healthy=True)
                return rows
            raise AssertionError("unreachable")
        finally:
            self._slots.release()

    def _take(self, *, fresh: bool) -> _Pooled:
        while not fresh:
            try:
                pooled = self._idle.get_nowait()
            except queue.Empty:
                break
            if time.monotonic() - pooled.born < RECYCLE:
                return pooled
            pooled.close()
        try:
            conn = self._connect()
            conn.register_in_adapter(TIMESTAMPTZ, parse_timestamptz)  # before any statement is prepared
            return _Pooled(conn)
        except Exception as exc:  # noqa: BLE001 - any failure to connect is the same to the caller
            raise DependencyUnavailable(
                f"cannot connect to the database ({type(exc).__name__})", code="database_unavailable"
            ) from None

    def _give_back(self, pooled: _Pooled, *, healthy: bool) -> None:
        if healthy:
            self._idle.put(pooled)
        else:
            pooled.close()

    def _close_idle(self) -> None:
        while True:
            try:
                self._idle.get_nowait().close()
            except queue.Empty:
                return

    def close(self) -> None:
        self._close_idle()


def _sqlstate(exc: BaseException) -> str:
    if exc.args and isinstance(exc.args[0], dict):
        return f"SQLSTATE {exc.args[0].get('C', '?')}"
    return type(exc).__name__
