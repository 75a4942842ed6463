"""SQL for the refresh job's housekeeping: retention deletes and the orphan sweeper's existence check.

A purge deletes the ids chosen by `SELECT id … WHERE <time> < :cutoff ORDER BY <time> LIMIT :n`, which walks the
time column's index from its oldest end (`ix_audit_events_occurred_at`, `ix_oauth_states_expires_at`) and stops
after `n` rows, so a batch costs the same however large the table is (neither dialect has `DELETE … LIMIT`). On
PostgreSQL the ids go in as `id = ANY(ARRAY(…))`, evaluated once and looked up by primary key: with a plain
`id IN (…)` the planner hashes the subquery and scans the whole table to join it (tests/integration/
test_retention.py checks the plan). SQLite takes the `IN (…)` form and looks the ids up by primary key. MySQL
refuses `LIMIT` inside `IN (…)` (error 1235), so there the same transaction selects the ids first and deletes
them by primary key.
"""

from __future__ import annotations

from collections.abc import Collection
from datetime import datetime
from uuid import UUID

from sqlalchemy import Delete, Engine, any_, delete, func, select

from shared.adapters.orm import AuditEventRow, ConnectSessionRow, EventRow, IntegrationRow, OAuthStateRow

# table -> (its primary key, the time a row's retention counts from)
PURGEABLE = {
    "audit_events": (AuditEventRow.id, AuditEventRow.occurred_at),
    "oauth_states": (OAuthStateRow.id, OAuthStateRow.expires_at),
    "connect_sessions": (ConnectSessionRow.id, ConnectSessionRow.expires_at),
    "events": (EventRow.seq, EventRow.occurred_at),  # their deliveries and attempts go with them (ON DELETE CASCADE)
}
ID_CHUNK = 500  # ids per IN (…) of the existence check


def purge_statement(table: str, before: datetime, limit: int, dialect: str = "postgresql") -> Delete:
    """Delete up to `limit` rows of `table` whose retention time is before `before`, oldest first."""
    key, when = PURGEABLE[table]
    oldest = select(key).where(when < before).order_by(when).limit(limit)
    if dialect == "postgresql":
        return delete(key.table).where(key == any_(func.array(oldest.scalar_subquery())))
    return delete(key.table).where(key.in_(oldest))


class SqlHousekeepingStore:
    def __init__(self, engine: Engine) -> None:
        self._engine = engine

    def _purge(self, table: str, before: datetime, limit: int) -> int:
        with self._engine.begin() as conn:
            if conn.dialect.name == "mysql":
                key, when = PURGEABLE[table]
                ids = list(conn.execute(select(key).where(when < before).order_by(when).limit(limit)).scalars())
                return int(conn.execute(delete(key.table).where(key.in_(ids))).rowcount) if ids else 0
            return int(conn.execute(purge_statement(table, before, limit, conn.dialect.name)).rowcount)

    def purge_audit_events(self, occurred_before: datetime, limit: int) -> int:
        return self._purge("audit_events", occurred_before, limit)

    def purge_events(self, occurred_before: datetime, limit: int) -> int:
        return self._purge("events", occurred_before, limit)

    def purge_oauth_states(self, expired_before: datetime, limit: int) -> int:
        return self._purge("oauth_states", expired_before, limit)

    def purge_connect_sessions(self, expired_before: datetime, limit: int) -> int:
        return self._purge("connect_sessions", expired_before, limit)

    def existing_integrations(self, ids: Collection[UUID]) -> set[UUID]:
        wanted = list(ids)
        found: set[UUID] = set()
        with self._engine.connect() as conn:
            for start in range(0, len(wanted), ID_CHUNK):
                chunk = wanted[start : start + ID_CHUNK]
                found.update(conn.execute(select(IntegrationRow.id).where(IntegrationRow.id.in_(chunk))).scalars())
        return found
