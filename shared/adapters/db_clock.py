"""The database's clock as a SQL expression, so leases mean the same instant on every instance.

Instances' clocks drift; a lease computed from one instance's clock and checked against another's can look lapsed
while its holder is still calling the provider. Leases are therefore set and checked with the database's time:
`clock_timestamp()` on PostgreSQL (the wall clock at the statement, not the transaction's start),
`strftime(..., 'now')` on SQLite, in the text format SQLAlchemy stores there, and `UTC_TIMESTAMP(6)` on MySQL (UTC
whatever the session's time zone, to the microsecond, as the broker's DATETIME(6) columns hold it).
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import Float, literal
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.expression import FunctionElement

from shared.adapters.sql_types import UTCDateTime


class db_now(FunctionElement[Any]):
    """The database's current time plus `seconds` (default 0)."""

    type = UTCDateTime()
    inherit_cache = True

    def __init__(self, seconds: float = 0.0) -> None:
        super().__init__(literal(float(seconds), Float()))  # a bound parameter: statements stay cacheable


@compiles(db_now, "postgresql")
def _postgresql(element: db_now, compiler: Any, **kw: Any) -> str:
    return f"(clock_timestamp() + make_interval(secs => {compiler.process(element.clauses, **kw)}))"


@compiles(db_now, "sqlite")
def _sqlite(element: db_now, compiler: Any, **kw: Any) -> str:
    # '%f' is seconds with milliseconds; three more zeros make the microseconds SQLAlchemy writes and reads.
    return f"strftime('%Y-%m-%d %H:%M:%f000', 'now', {compiler.process(element.clauses, **kw)} || ' seconds')"


@compiles(db_now, "mysql")
def _mysql(element: db_now, compiler: Any, **kw: Any) -> str:
    return f"TIMESTAMPADD(MICROSECOND, ROUND({compiler.process(element.clauses, **kw)} * 1000000), UTC_TIMESTAMP(6))"
