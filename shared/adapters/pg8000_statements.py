"""Fewer round trips and less parsing for SQLAlchemy's statements on pg8000.

pg8000's DB-API cursor sends every statement as Parse, Describe and Execute, three round trips, COMMIT included, and
rewrites its `%s` placeholders by scanning the text character by character each time. SQLAlchemy sends the same
few statement texts over and over, so the dialect here prepares each text once per connection (one round trip per
statement after that), sends COMMIT and ROLLBACK as simple queries (one each), and memoises the placeholder
rewrite. Registered in place of SQLAlchemy's `postgresql+pg8000` dialect by the engine factory (`install`).
"""

from __future__ import annotations

import threading
from functools import lru_cache
from typing import Any

from sqlalchemy.dialects import registry
from sqlalchemy.dialects.postgresql.pg8000 import PGDialect_pg8000

MAX_PREPARED = 256  # statements kept per connection (IN-lists of many lengths must not grow it without bound)
_installed = threading.Lock()


@lru_cache(maxsize=1024)
def _rewritten(query: str) -> str:
    from pg8000.dbapi import convert_paramstyle

    return str(convert_paramstyle("format", query, ())[0])


class PreparingPg8000(PGDialect_pg8000):
    supports_statement_cache = True

    def on_connect(self) -> Any:
        """pg8000's own setup, then timestamptz read with fromisoformat (pg_pool.parse_timestamptz): strptime costs
        ~17 µs a column, and a refresh reads rows of seven timestamps, several times."""
        from shared.adapters.pg_pool import TIMESTAMPTZ, parse_timestamptz

        inherited = super().on_connect()  # type: ignore[no-untyped-call]

        def connect(conn: Any) -> None:
            if inherited is not None:
                inherited(conn)
            conn.register_in_adapter(TIMESTAMPTZ, parse_timestamptz)  # before any statement is prepared

        return connect

    def do_execute(self, cursor: Any, statement: str, parameters: Any, context: Any = None) -> None:
        if not parameters:
            cursor.execute(statement, parameters)  # no parameters: pg8000 sends one simple query already
            return
        conn = cursor._c
        prepared = conn.__dict__.setdefault("_broker_prepared", {})
        named = prepared.get(statement)
        try:
            if not conn._in_transaction and not conn.autocommit:
                conn.execute_simple("begin transaction")
            if named is None:
                if len(prepared) >= MAX_PREPARED:
                    cursor.execute(statement, parameters)
                    return
                pg_statement = _rewritten(statement)
                named = (*conn.prepare_statement(pg_statement, ()), pg_statement)
                prepared[statement] = named
            from pg8000.core import make_params

            name, columns, input_funcs, pg_statement = named
            context_ = conn.execute_named(name, make_params(conn.py_types, parameters), columns, input_funcs,
                                          pg_statement)  # fmt: skip
        except AttributeError:  # pg8000 lost its socket
            if conn._sock is None:
                raise _interface_error("connection is closed") from None
            raise
        except Exception as exc:
            if _sqlstate(exc) == "0A000":  # "cached plan must not change result type": the schema changed
                prepared.pop(statement, None)
            translated = _as_dbapi_error(exc)
            if translated is exc:
                raise
            raise translated from exc
        cursor._context = context_
        cursor._row_iter = iter([] if context_.rows is None else context_.rows)
        cursor._input_oids = ()

    def do_commit(self, dbapi_connection: Any) -> None:
        dbapi_connection.execute_simple("commit")

    def do_rollback(self, dbapi_connection: Any) -> None:
        if dbapi_connection._in_transaction:
            dbapi_connection.execute_simple("rollback")


def _sqlstate(exc: BaseException) -> str | None:
    message = exc.args[0] if exc.args else None
    return str(message.get("C")) if isinstance(message, dict) else None


def _interface_error(message: str) -> Exception:
    from pg8000.exceptions import InterfaceError

    error: Exception = InterfaceError(message)
    return error


def _as_dbapi_error(exc: Exception) -> Exception:
    """As pg8000's cursor classifies a server error (SQLAlchemy maps these classes to its own)."""
    from pg8000.dbapi import IntegrityError, InterfaceError, ProgrammingError
    from pg8000.exceptions import DatabaseError

    if not isinstance(exc, DatabaseError) or isinstance(exc, IntegrityError | ProgrammingError):
        return exc
    cls = {"28000": InterfaceError, "23505": IntegrityError}.get(_sqlstate(exc) or "", ProgrammingError)
    error: Exception = cls(exc.args[0] if exc.args else "")
    return error


def install() -> None:
    with _installed:
        registry.register("postgresql.pg8000", __name__, "PreparingPg8000")
