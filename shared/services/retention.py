"""Retention: the refresh job deletes audit events, outbox events (with their deliveries and attempts) and handshake
states past their retention, in bounded batches.

`audit_events` grows by one row per token fetch; `oauth_states` keeps every started flow, spent or not. Each run
deletes at most `batch_size * max_batches` rows per table, oldest first, and starts no batch after `deadline`
(time.monotonic()), so a backlog is worked off over several runs and never stretches one.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from shared.domain.ports import Clock, HousekeepingStore


@dataclass(frozen=True)
class RetentionPolicy:
    audit_events: timedelta | None  # how long an audit event is kept; None: forever
    oauth_states: timedelta  # how long a handshake state is kept after it expired
    batch_size: int = 1000
    max_batches: int = 10  # per table and run


def purge_expired_rows(
    store: HousekeepingStore, clock: Clock, policy: RetentionPolicy, *, deadline: float
) -> dict[str, int]:
    """Delete what is past retention; answer how many rows went, per table."""
    now = clock.now()
    tables: list[tuple[str, Callable[[datetime, int], int], datetime]] = [
        ("oauth_states", store.purge_oauth_states, now - policy.oauth_states),
        ("connect_sessions", store.purge_connect_sessions, now - policy.oauth_states),  # as long as their flows
    ]
    if policy.audit_events is not None:
        tables.insert(0, ("audit_events", store.purge_audit_events, now - policy.audit_events))
        tables.append(("events", store.purge_events, now - policy.audit_events))  # the outbox keeps as long
    purged = {"audit_events": 0, "oauth_states": 0, "connect_sessions": 0, "events": 0}
    for table, purge, before in tables:
        for _ in range(policy.max_batches):
            if time.monotonic() >= deadline:
                break
            deleted = purge(before, policy.batch_size)
            purged[table] += deleted
            if deleted < policy.batch_size:
                break
    return purged
