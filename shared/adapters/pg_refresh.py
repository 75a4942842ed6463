"""The refresh engine's hot statements on PostgreSQL, as prepared SQL text: the claim, the fenced write, the pin.

SqlRefreshStore builds these with SQLAlchemy Core on SQLite and MySQL. On PostgreSQL a rotating refresh runs
them several times, and building each statement (coercions, the cache key of a statement whose `values` vary)
cost more CPU than running it, so here each is SQL text made once per shape from constant column names, run on
the engine's connection (its pool and transaction) straight through the dialect's cursor, which prepares each
text once per connection (shared.adapters.pg8000_statements): SQLAlchemy's result objects cost as much again.
Errors are SQLAlchemy's, as from any statement (a lost connection is invalidated). A fenced write and its audit
row are one statement: a data-modifying CTE inserts the audit event only when the fenced UPDATE changed the row.
Rows are read as the token hot path reads them (pg_token_reads.row_to_integration). Fencing, the database's
clock for leases and `FOR UPDATE SKIP LOCKED` are those of SqlRefreshStore, statement for statement.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from datetime import datetime
from enum import Enum
from functools import lru_cache
from typing import Any
from uuid import UUID

from sqlalchemy import Connection
from sqlalchemy.exc import DBAPIError

from shared.adapters.pg_token_reads import COLUMNS, FIELDS, row_to_integration
from shared.domain.models import AuditEvent, Integration, Status

JSON_COLUMNS = frozenset({"granted_scopes", "config", "provider_metadata"})
LEASE_FREE = "(lease_until IS NULL OR lease_until <= clock_timestamp())"
AUDIT = "INSERT INTO audit_events (occurred_at, actor, action, outcome, entity_id, integration_id, provider, detail)"
REAUTH_IF_ACTIVE_SQL = (
    f"CASE WHEN status = '{Status.ACTIVE.value}' THEN '{Status.REAUTH_REQUIRED.value}' ELSE status END"
)
# Keys of `values` in the order they are bound; the SET list of one statement shape.
Shape = tuple[str, ...]


def _param(name: str, value: Any) -> Any:
    if name in JSON_COLUMNS:
        return json.dumps(value)  # pg8000 would send a list as an array, not as JSON
    if isinstance(value, Enum):
        return value.value
    if isinstance(value, datetime) and value.tzinfo is None:
        raise ValueError("naive datetime given; the broker stores timezone-aware UTC only")
    return value


@lru_cache(maxsize=64)
def _update_sql(shape: Shape, reauth_if_active: bool, extend: bool, audit: bool, pinning: bool) -> str:
    """UPDATE … SET <shape> WHERE id, credential_version, lease_owner RETURNING the row; with `audit`, the audit
    row is inserted by the same statement for the row it changed (none when fenced out)."""
    unknown = set(shape) - set(FIELDS)
    if unknown:
        raise ValueError(f"not columns of entity_integrations: {sorted(unknown)}")
    sets = [f"{name} = %s" for name in shape]
    if reauth_if_active:
        sets.append(f"status = {REAUTH_IF_ACTIVE_SQL}")
    sets.append("lease_until = clock_timestamp() + make_interval(secs => %s)" if extend else "lease_until = NULL")
    if not extend:
        sets.append("lease_owner = NULL")
    update = (
        f"UPDATE entity_integrations SET {', '.join(sets)} "  # noqa: S608 - column names from FIELDS, values bound
        "WHERE id = CAST(%s AS uuid) AND credential_version = %s AND lease_owner = %s"
    )
    pinned = " AND pending_secret_ciphertext IS NOT DISTINCT FROM %s" if pinning else ""
    if not audit:
        return f"{update}{pinned} RETURNING {COLUMNS}"
    return (
        f"WITH written AS ({update}{pinned} RETURNING {COLUMNS}), "  # noqa: S608 - as above
        f"audit AS ({AUDIT} SELECT CAST(%s AS timestamptz), %s, %s, %s, %s, CAST(%s AS uuid), %s, "
        "CAST(%s AS jsonb) FROM written) "
        f"SELECT {COLUMNS} FROM written"
    )


def _rows(conn: Connection, sql: str, params: Sequence[Any]) -> list[Any]:
    """Run one statement on the connection's DB-API cursor; its rows. A driver error is raised as SQLAlchemy
    raises it (parameters hidden), after invalidating the connection when the error says it is lost."""
    dialect = conn.dialect
    dbapi_connection = conn.connection.dbapi_connection
    cursor = dbapi_connection.cursor()  # type: ignore[union-attr]
    try:
        dialect.do_execute(cursor, sql, tuple(params))
        return list(cursor.fetchall()) if cursor.description else []
    except dialect.loaded_dbapi.Error as exc:
        if dialect.is_disconnect(exc, dbapi_connection, cursor):
            conn.invalidate(exc)
        raise DBAPIError.instance(
            sql, tuple(params), exc, dialect.loaded_dbapi.Error, hide_parameters=True, dialect=dialect
        ) from exc
    finally:
        cursor.close()


def _audit_params(event: AuditEvent, now: datetime) -> list[Any]:
    integration_id = None if event.integration_id is None else str(event.integration_id)
    return [
        now, event.actor, event.action, event.outcome, event.entity_id, integration_id, event.provider,
        json.dumps(event.detail),
    ]  # fmt: skip


def fenced_update(
    conn: Connection,
    integration_id: UUID,
    expected_version: int,
    owner: str,
    assignments: Mapping[str, Any],
    *,
    extend_seconds: float | None,
    reauth_if_active: bool,
    event: AuditEvent | None,
    now: datetime,
    pending: bytes | None = None,
    pinning: bool = False,
) -> Integration | None:
    """The fenced UPDATE (and, with `event`, its audit row) in one statement; the row as written, or None when
    fenced out. `pinning`: also fenced on the pending copy still being `pending`."""
    shape = tuple(assignments)
    params = [_param(name, assignments[name]) for name in shape]
    if extend_seconds is not None:
        params.append(float(extend_seconds))
    params += [str(integration_id), expected_version, owner]
    if pinning:
        params.append(pending)
    if event is not None:
        params += _audit_params(event, now)
    sql = _update_sql(shape, reauth_if_active, extend_seconds is not None, event is not None, pinning)
    rows = _rows(conn, sql, params)
    return row_to_integration(rows[0]) if rows else None


def insert_audit(conn: Connection, events: Sequence[AuditEvent], now: datetime) -> None:
    sql = f"{AUDIT} VALUES (CAST(%s AS timestamptz), %s, %s, %s, %s, CAST(%s AS uuid), %s, CAST(%s AS jsonb))"
    for event in events:
        _rows(conn, sql, _audit_params(event, now))


@lru_cache(maxsize=8)
def _claim_sql(due_at: str, by_provider: bool) -> str:
    assert due_at in ("token_expires_at", "keep_alive_at")
    provider = " AND provider = %s" if by_provider else ""
    chosen = (
        f"SELECT id FROM entity_integrations WHERE status = '{Status.ACTIVE.value}' AND {due_at} IS NOT NULL "  # noqa: S608
        f"AND {due_at} <= CAST(%s AS timestamptz) AND secret_ref IS NOT NULL AND {LEASE_FREE} "
        "AND (next_attempt_after IS NULL OR next_attempt_after <= CAST(%s AS timestamptz)) "
        f"AND (last_refreshed_at IS NULL OR last_refreshed_at < CAST(%s AS timestamptz)){provider} "
        f"ORDER BY {due_at} LIMIT %s FOR UPDATE SKIP LOCKED"
    )
    return (
        "UPDATE entity_integrations SET lease_owner = %s, "  # noqa: S608 - constants only; values are bound
        "lease_until = clock_timestamp() + make_interval(secs => %s) "
        f"WHERE id IN ({chosen}) AND {LEASE_FREE} RETURNING {COLUMNS}"
    )


def claim_due_by(
    conn: Connection, due_at: str, until: datetime, now: datetime, began: datetime, limit: int, owner: str,
    lease_seconds: float, provider: str | None,
) -> list[Integration]:  # fmt: skip
    """Lease up to `limit` integrations due by `due_at` (the column: token_expires_at or keep_alive_at) ≤ `until`,
    in that column's order, skipping rows another claimer holds: SqlRefreshStore._due_by as one statement."""
    params: list[Any] = [owner, float(lease_seconds), until, now, began]
    if provider is not None:
        params.append(provider)
    params.append(limit)
    return [row_to_integration(row) for row in _rows(conn, _claim_sql(due_at, provider is not None), params)]
