"""Leases and fenced writes for refreshing (PostgreSQL, SQLite and MySQL: see sql_returning for the last).

A lease (`lease_owner`, `lease_until`) is taken with a conditional UPDATE, so one worker across all instances
refreshes an integration at a time. Lease times are the database's clock (`db_now`), never an instance's. Every
write of a refresh is fenced twice: on `credential_version` (a reconnect, a delete or another worker's refresh
landed meanwhile) and on `lease_owner` (another worker claimed the row after this one's lease lapsed).
"""

from __future__ import annotations

from dataclasses import asdict
from datetime import datetime, timedelta
from typing import Any
from uuid import UUID

from sqlalchemy import Engine, and_, case, func, insert, or_, select, update
from sqlalchemy.exc import SQLAlchemyError

from shared.adapters import pg_refresh
from shared.adapters.db_clock import db_now
from shared.adapters.orm import AuditEventRow
from shared.adapters.orm import IntegrationRow as R
from shared.adapters.sql_repositories import insert_outbox, load_integration, to_integration
from shared.adapters.sql_returning import claim_returning, update_returning
from shared.domain.events import expiring_soon, materialise
from shared.domain.models import AuditEvent, Integration, Status
from shared.domain.ports import KEEP_STATUS, REAUTH_IF_ACTIVE, Transitions, no_transitions
from shared.errors import DependencyUnavailable

# What pinning a settled version clears: the pending copy and the lease.
PENDING_CLEARED = dict.fromkeys(("pending_secret_ciphertext", "pending_secret_key_version"))
PINNED = {**PENDING_CLEARED, "lease_owner": None, "lease_until": None}
# Columns the fenced write sets itself (pg_refresh writes them from its arguments, not from `values`).
LEASE_AND_STATUS = frozenset({"lease_owner", "lease_until", "status"})


def _lease_free() -> Any:
    return or_(R.lease_until.is_(None), R.lease_until <= db_now())


def _due(horizon: timedelta, now: datetime) -> list[Any]:
    """What the refresh job claims (and a fan-out dispatch counts): active, expiring (or to keep alive) within
    `horizon`, with a refresh token, not leased, not backing off."""
    return [
        R.status == Status.ACTIVE.value,
        # an expiring access token, or an idle refresh-token window to keep open (keep_alive_at)
        or_(R.token_expires_at <= now + horizon, R.keep_alive_at <= now + horizon),
        R.secret_ref.is_not(None),
        _lease_free(),
        or_(R.next_attempt_after.is_(None), R.next_attempt_after <= now),
    ]


def _due_by(due_at: Any, horizon: timedelta, now: datetime, began: datetime, limit: int, provider: str | None) -> Any:
    """The ids claim_due takes by one of its two reasons (`due_at`: the token's expiry or the keep-alive time), in
    that column's order, on its partial index."""
    due = (
        select(R.id)
        .where(
            R.status == Status.ACTIVE.value,
            due_at.is_not(None),
            due_at <= now + horizon,
            R.secret_ref.is_not(None),
            _lease_free(),
            or_(R.next_attempt_after.is_(None), R.next_attempt_after <= now),
            or_(R.last_refreshed_at.is_(None), R.last_refreshed_at < began),
        )
        .order_by(due_at)
        .limit(limit)
        .with_for_update(skip_locked=True)
    )
    return due if provider is None else due.where(R.provider == provider)


def _events(conn: Any, events: list[AuditEvent], now: datetime) -> None:
    if events:
        conn.execute(insert(AuditEventRow), [{**asdict(e), "occurred_at": now} for e in events])


class SqlRefreshStore:
    def __init__(self, engine: Engine) -> None:
        self._engine = engine
        # PostgreSQL runs the claim, the fenced write and the pin as prepared SQL text (shared.adapters.pg_refresh)
        self._pg = engine.dialect.name == "postgresql"

    def claim(self, integration_id: UUID, owner: str, lease: timedelta, now: datetime) -> Integration | None:
        """Take the lease on one integration; None when another worker holds it."""
        leased = {"lease_owner": owner, "lease_until": db_now(lease.total_seconds())}
        with self._engine.begin() as conn:
            rows = update_returning(conn, R, [R.id == integration_id, _lease_free()], leased)
        return to_integration(rows[0]) if rows else None

    def claim_due(
        self,
        horizon: timedelta,
        limit: int,
        owner: str,
        lease: timedelta,
        now: datetime,
        began: datetime,
        provider: str | None = None,
    ) -> list[Integration]:
        """Lease up to `limit` active integrations whose token expires within `horizon`, soonest first, then (for
        what is left of `limit`) those whose refresh token must be kept alive within it (only `provider`'s when
        given: a fan-out shard, on the (provider, expiry) index).

        Two claims, each an index scan in its own order under its LIMIT, rather than one over `expiry OR
        keep-alive`: PostgreSQL can read an OR only as a bitmap of every due row, sorted (at 1M rows a claim of 100
        read 257,000 rows, 256 ms; `make bench-scale`). On PostgreSQL and MySQL rows another job is claiming are skipped
        (FOR UPDATE SKIP LOCKED), so two jobs at once never claim the same integration; SQLite runs one writer at a
        time.
        """
        claimed: list[Integration] = []
        for due_at in (R.token_expires_at, R.keep_alive_at):
            if len(claimed) < limit and self._pg:
                with self._engine.begin() as conn:
                    claimed += pg_refresh.claim_due_by(
                        conn, due_at.key, now + horizon, now, began, limit - len(claimed), owner,
                        lease.total_seconds(), provider,
                    )  # fmt: skip
            elif len(claimed) < limit:
                due = _due_by(due_at, horizon, now, began, limit - len(claimed), provider)
                claimed += self._claim_ids(due, owner, lease)
        return claimed

    def warn_expiring(self, warning: timedelta, limit: int, now: datetime) -> int:
        """Emit `integration.expiring_soon` for up to `limit` active integrations whose refresh token ends within
        `warning` and that were not warned for this end yet, recording the end warned for in the same transaction
        (once per window, also with jobs running at once); how many were warned."""
        due = (
            select(R.id)
            .where(
                R.status == Status.ACTIVE.value,
                R.refresh_token_expires_at <= now + warning,
                or_(R.expiry_warned_for.is_(None), R.expiry_warned_for != R.refresh_token_expires_at),
            )
            .order_by(R.refresh_token_expires_at)
            .limit(limit)
            .with_for_update(skip_locked=True)
        )
        warned_for = {"expiry_warned_for": R.refresh_token_expires_at}
        with self._engine.begin() as conn:
            rows = claim_returning(conn, R, due, [R.refresh_token_expires_at.is_not(None)], warned_for)
            warned = [to_integration(row) for row in rows]
            insert_outbox(conn, [materialise(expiring_soon(integration), integration, now) for integration in warned])
        return len(warned)

    def count_due(self, horizon: timedelta, now: datetime) -> dict[str, int]:
        """{provider: integrations claim_due would find now}: what a fan-out dispatch shards."""
        statement = select(R.provider, func.count()).where(*_due(horizon, now)).group_by(R.provider)
        with self._engine.connect() as conn:
            return {provider: int(count) for provider, count in conn.execute(statement)}

    def claim_pending(self, limit: int, owner: str, lease: timedelta) -> list[Integration]:
        """Lease up to `limit` integrations holding a rotated token the secret store has not taken yet (not those
        being deleted: their secret is going away)."""
        pending = (
            select(R.id)
            .where(R.pending_secret_ciphertext.is_not(None), R.status != Status.REVOKED.value, _lease_free())
            .order_by(R.updated_at)
            .limit(limit)
            .with_for_update(skip_locked=True)
        )
        return self._claim_ids(pending, owner, lease)

    def _claim_ids(self, ids: Any, owner: str, lease: timedelta) -> list[Integration]:
        leased = {"lease_owner": owner, "lease_until": db_now(lease.total_seconds())}
        with self._engine.begin() as conn:
            return [to_integration(row) for row in claim_returning(conn, R, ids, [_lease_free()], leased)]

    def get(self, integration_id: UUID) -> Integration | None:
        return load_integration(self._engine, integration_id)

    def write(
        self,
        integration_id: UUID,
        expected_version: int,
        owner: str,
        values: dict[str, Any],
        events: list[AuditEvent],
        now: datetime,
        *,
        bump: bool,
        extend: timedelta | None = None,
        status: str = KEEP_STATUS,
        transitions: Transitions = no_transitions,
    ) -> Integration | None:
        """Apply `values` if the fencing counter is still `expected_version` and `owner` still holds the lease
        (bumping the counter for new credentials); None when fenced out. The lease is released, or with `extend`
        renewed for that long from now (a slow step follows). `status` REAUTH_IF_ACTIVE moves an active row to
        reauth_required and leaves any other status (a user's `inactive`) alone; a refresh never sets one
        otherwise. Audit events, and the outbox events `transitions` finds in the row as written, land in the
        same transaction."""
        assignments: dict[str, Any] = {**values, "updated_at": now}
        if bump:
            assignments["credential_version"] = expected_version + 1
        if self._pg and len(events) <= 1 and not LEASE_AND_STATUS & assignments.keys():
            with self._engine.begin() as conn:
                stored = pg_refresh.fenced_update(
                    conn, integration_id, expected_version, owner, assignments, now=now,
                    extend_seconds=None if extend is None else extend.total_seconds(),
                    reauth_if_active=status == REAUTH_IF_ACTIVE, event=events[0] if events else None,
                )  # fmt: skip
                if stored is None:
                    self._release(conn, integration_id, owner)
                    return None
                insert_outbox(conn, [materialise(spec, stored, now) for spec in transitions(stored)])
            return stored
        if status == REAUTH_IF_ACTIVE:
            active = R.status == Status.ACTIVE.value
            assignments["status"] = case((active, Status.REAUTH_REQUIRED.value), else_=R.status)
        if extend is None:
            assignments |= {"lease_owner": None, "lease_until": None}
        else:
            assignments["lease_until"] = db_now(extend.total_seconds())
        fence = [R.id == integration_id, R.credential_version == expected_version, R.lease_owner == owner]
        with self._engine.begin() as conn:
            rows = update_returning(conn, R, fence, assignments)
            if not rows:
                self._release(conn, integration_id, owner)
                return None
            stored = to_integration(rows[0])
            _events(conn, events, now)
            insert_outbox(conn, [materialise(spec, stored, now) for spec in transitions(stored)])
        return stored

    def pin(
        self, integration: Integration, owner: str, version: int, events: list[AuditEvent], now: datetime
    ) -> Integration | None:
        """The pending token is in the secret store as `version`: point the row at it, clear the pending copy and
        release the lease, if nothing changed since `integration` was read; None when fenced out."""
        if self._pg and len(events) <= 1:
            assignments = {**PENDING_CLEARED, "secret_version": version, "updated_at": now}
            with self._engine.begin() as conn:
                pinned = pg_refresh.fenced_update(
                    conn, integration.id, integration.credential_version, owner, assignments, now=now,
                    extend_seconds=None, reauth_if_active=False, event=events[0] if events else None,
                    pending=integration.pending_secret_ciphertext, pinning=True,
                )  # fmt: skip
                if pinned is None:
                    self._release(conn, integration.id, owner)
            return pinned
        fence = [
            R.id == integration.id,
            R.credential_version == integration.credential_version,
            R.lease_owner == owner,
            R.pending_secret_ciphertext == integration.pending_secret_ciphertext,
        ]
        with self._engine.begin() as conn:
            rows = update_returning(conn, R, fence, {**PINNED, "secret_version": version, "updated_at": now})
            if not rows:
                self._release(conn, integration.id, owner)
                return None
            _events(conn, events, now)
        return to_integration(rows[0])

    def release(self, integration_id: UUID, owner: str) -> None:
        with self._engine.begin() as conn:
            self._release(conn, integration_id, owner)

    @staticmethod
    def _release(conn: Any, integration_id: UUID, owner: str) -> None:
        conn.execute(
            update(R)
            .where(and_(R.id == integration_id, R.lease_owner == owner))
            .values(lease_owner=None, lease_until=None)
        )

    def touch(self, integration: Integration, now: datetime, every: timedelta, event: AuditEvent) -> None:
        """Record a read: the audit event always; `last_used_at` at most once per `every`, judged first on the row
        just read (so the hot path usually makes one INSERT) and again in SQL (concurrent readers)."""
        stale = integration.last_used_at is None or integration.last_used_at < now - every
        try:
            with self._engine.begin() as conn:
                if stale:
                    conn.execute(
                        update(R)
                        .where(R.id == integration.id, or_(R.last_used_at.is_(None), R.last_used_at < now - every))
                        .values(last_used_at=now)
                    )
                _events(conn, [event], now)
        except SQLAlchemyError as exc:  # audit-or-refuse: the caller gets no token, and a 503 that says why
            raise DependencyUnavailable(
                f"the database refused or is unreachable ({type(exc).__name__})", code="database_unavailable"
            ) from None
