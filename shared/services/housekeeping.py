"""Housekeeping after each refresh job run: retention deletes, then the orphan-secret sweep (revoke, delete).

Both are bounded per run (rows per table, orphans) and by a time budget of their own, and neither can fail the
run: a failure is logged and reported in the answer (`"error": "<code>"`), the next run tries again. Nothing
starts once the process is draining (SIGTERM, shared.lifecycle). With `defer_first_sweep` (as deployed), an
instance's first run leaves the sweep to its next run (`"deferred": true`): a cold start then builds no secret
store client (Secret Manager's is a gRPC stack, about a hello-world function's whole start-up) for a sweep that
almost always finds nothing, and the events schedule (every minute) keeps the instance for the next run.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta

from shared.config import Settings
from shared.domain.ports import AuditLog, Clock, HousekeepingStore, ProviderDirectory, SecretStore, TokenRevoker
from shared.errors import BrokerError
from shared.providers.catalog import Catalog
from shared.services.maintenance import SweepReport, sweep_orphan_secrets
from shared.services.retention import RetentionPolicy, purge_expired_rows

log = logging.getLogger("broker.housekeeping")

BUDGET = 20.0  # seconds after the refresh loop; Cloud Run's timeout (300 s) leaves room above REFRESH_DEADLINE
ORPHAN_MIN_AGE = timedelta(hours=1)  # a connect writes its row within seconds of its secret


@dataclass
class Housekeeping:
    store: HousekeepingStore
    secrets: SecretStore
    audit: AuditLog
    clock: Clock
    catalog: Catalog
    settings: Settings
    directory: ProviderDirectory
    revoker: TokenRevoker
    budget: float = BUDGET
    stopping: Callable[[], bool] = lambda: False  # the process is shutting down: start nothing
    defer_first_sweep: bool = False
    runs: int = 0  # this instance's runs so far

    @property
    def retention(self) -> RetentionPolicy:
        s = self.settings
        return RetentionPolicy(
            audit_events=timedelta(days=s.audit_retention_days) if s.audit_retention_days else None,
            oauth_states=timedelta(seconds=s.oauth_state_retention),
            batch_size=s.retention_batch_size, max_batches=s.retention_max_batches,
        )  # fmt: skip

    def run(self) -> dict[str, dict[str, int | str]]:
        """`{"purged": {"audit_events", "oauth_states", "connect_sessions", "events"},
        "swept": {"orphans", "revoked", "deleted", "kept"[, "deferred"]}}`."""
        deadline = time.monotonic() + (0.0 if self.stopping() else self.budget)
        purged: dict[str, int | str] = {"audit_events": 0, "oauth_states": 0, "connect_sessions": 0, "events": 0}
        try:
            purged.update(purge_expired_rows(self.store, self.clock, self.retention, deadline=deadline))
        except Exception as exc:  # noqa: BLE001 - housekeeping never fails the refresh run
            purged["error"] = _failed("retention", exc)
        swept: dict[str, int | str] = dict(SweepReport().counts())
        self.runs += 1
        if self.defer_first_sweep and self.runs == 1:
            swept["deferred"] = True
        elif self.settings.sweep_max_secrets > 0 and not self.stopping():
            try:
                hours = self.settings.sweep_window_hours
                window = timedelta(hours=hours) if hours else None
                swept.update(
                    self.sweep(limit=self.settings.sweep_max_secrets, deadline=deadline, window=window).counts()
                )
            except Exception as exc:  # noqa: BLE001 - e.g. the secret store is down: the next run sweeps
                swept["error"] = _failed("orphan sweep", exc)
        return {"purged": purged, "swept": swept}

    def sweep(
        self, *, limit: int | None, deadline: float | None = None, min_age: timedelta = ORPHAN_MIN_AGE,
        dry_run: bool = False, window: timedelta | None = None,
    ) -> SweepReport:  # fmt: skip
        """Revoke and delete up to `limit` (None: all) orphan secrets older than `min_age`, created within `window`
        before that (None: whenever)."""
        return sweep_orphan_secrets(
            self.secrets, self.store, self.clock, self.audit, self, prefix=self.settings.secret_prefix,
            min_age=min_age, dry_run=dry_run, limit=limit, deadline=deadline, stopping=self.stopping, window=window,
        )  # fmt: skip


def _failed(what: str, exc: Exception) -> str:
    code = exc.code if isinstance(exc, BrokerError) else "internal_error"
    log.error("housekeeping: %s failed: %s (%s)", what, code, type(exc).__name__)
    return code
