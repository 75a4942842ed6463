"""Conditional writes that return the rows they changed, on every dialect: the seam where MySQL differs.

PostgreSQL and SQLite run one statement: `UPDATE … WHERE … RETURNING` (or `DELETE … RETURNING`), and a claim
updates the rows that a `SELECT … FOR UPDATE SKIP LOCKED` subquery picks. MySQL has no RETURNING (MariaDB has it
for DELETE, not for UPDATE), refuses a subquery on the table it updates (error 1093) and `LIMIT` inside `IN (…)`
(error 1235). There the same transaction first locks what the WHERE clause matches (`SELECT … FOR UPDATE`, or the
claim's own `FOR UPDATE SKIP LOCKED` select), then changes exactly those rows by primary key under the same
condition, and reads them back. The row locks, held to the commit, keep any other writer or claimer out in between,
so a lease is taken once, a fenced write lands only on the version it expected, and two claimers never share a row:
the guarantees the single statement gives. MySQL engines run in READ COMMITTED (shared/adapters/db.py), so a
locking read sees the latest committed row, as PostgreSQL's UPDATE re-checks it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from sqlalchemy import Connection, Row, delete, select, tuple_, update
from sqlalchemy.sql import ColumnElement, Select


def _primary_key(table: Any) -> list[Any]:
    return list(table.__clause_element__().primary_key.columns)


def _keyed(key: Sequence[Any], rows: Sequence[Any]) -> ColumnElement[bool]:
    if len(key) == 1:
        return key[0].in_([row[0] for row in rows])  # type: ignore[no-any-return]
    return tuple_(*key).in_([tuple(row) for row in rows])


def update_returning(
    conn: Connection, table: Any, where: Sequence[Any], values: Mapping[str, Any], columns: Sequence[Any] = ()
) -> list[Row[Any]]:
    """UPDATE `table` SET `values` WHERE all of `where`; the changed rows (`columns`, default the whole row)."""
    returned = list(columns) or [table]
    if conn.dialect.update_returning:
        return list(conn.execute(update(table).where(*where).values(**values).returning(*returned)))
    key = _primary_key(table)
    locked = conn.execute(select(*key).where(*where).with_for_update()).all()
    if not locked:
        return []
    mine = _keyed(key, locked)
    conn.execute(update(table).where(mine, *where).values(**values))
    return list(conn.execute(select(*returned).where(mine)))


def delete_returning(conn: Connection, table: Any, where: Sequence[Any]) -> list[Row[Any]]:
    """DELETE FROM `table` WHERE all of `where`; the deleted rows."""
    if conn.dialect.delete_returning and conn.dialect.name != "mysql":  # MariaDB's would go untested for MySQL
        return list(conn.execute(delete(table).where(*where).returning(table)))
    key = _primary_key(table)
    rows = conn.execute(select(table).where(*where).with_for_update()).all()
    if rows:
        conn.execute(delete(table).where(_keyed(key, [[getattr(r, c.key) for c in key] for r in rows])))
    return list(rows)


def claim_returning(
    conn: Connection, table: Any, chosen: Select[Any], where: Sequence[Any], values: Mapping[str, Any],
    columns: Sequence[Any] = (),
) -> list[Row[Any]]:  # fmt: skip
    """Update the rows that `chosen` (a `SELECT <primary key> … FOR UPDATE SKIP LOCKED`) picks, if `where` still
    holds for them; the changed rows."""
    key = _primary_key(table)
    if conn.dialect.update_returning:
        picked = key[0].in_(chosen.scalar_subquery()) if len(key) == 1 else tuple_(*key).in_(chosen)
        return update_returning(conn, table, [picked, *where], values, columns)
    rows = conn.execute(chosen).all()  # locks them, skipping what another claimer holds
    if not rows:
        return []
    return update_returning(conn, table, [_keyed(key, rows), *where], values, columns)
