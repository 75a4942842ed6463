"""The scheduled refresh job: claim what expires soon in batches, refresh with bounded concurrency, stop in time."""

from __future__ import annotations

import logging
import time
from collections import Counter
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass
from datetime import timedelta

from shared.domain.models import Integration
from shared.domain.ports import Clock, RefreshStore
from shared.services.refresh import Refresher, RefreshResult

log = logging.getLogger("broker.refresh_job")

COUNTED = {
    "refreshed": "refreshed",
    "transient": "failed_transient",
    "reauth_required": "reauth_required",
}


@dataclass(frozen=True)
class JobSettings:
    horizon: timedelta = timedelta(minutes=15)  # refresh what expires within this (≥ the scheduler's period)
    batch_size: int = 50  # at most this many per claim; a claim never exceeds the free workers
    concurrency: int = 8
    deadline: float = 240.0  # seconds; Cloud Scheduler and Cloud Run time out later than this
    safety: float = 15.0  # stop claiming this long before the deadline: a claimed batch must finish


def _refresh(refresher: Refresher, integration: Integration, owner: str) -> RefreshResult:
    """One refresh that cannot take the job down. An error that escaped even the failure bookkeeping (the database
    went away) keeps the lease until it lapses, so this run does not claim the integration again."""
    try:
        return refresher.refresh_claimed(integration, owner)
    except Exception as exc:  # noqa: BLE001 - one broken integration must not stop the others
        log.error("refresh of %s failed unexpectedly: %s", integration.id, type(exc).__name__)
        return RefreshResult("transient", None, type(exc).__name__)


def run_refresh_job(store: RefreshStore, refresher: Refresher, clock: Clock, settings: JobSettings) -> dict[str, int]:
    """Refresh every integration that expires within the horizon; answer counts by outcome."""
    started = time.monotonic()
    owner = refresher.new_owner("job")
    began = clock.now()  # what this run refreshed is not claimed again by it, however short its new lifetime
    counts: Counter[str] = Counter()
    # Claim only what free workers start at once: a claimed integration never waits in a queue while its lease
    # runs out. Claim again when a quarter of the workers are free (fewer claim queries, no idle pool).
    refill = max(1, settings.concurrency // 4)
    pending: set[Future[RefreshResult]] = set()
    exhausted = False
    with ThreadPoolExecutor(max_workers=settings.concurrency, thread_name_prefix="refresh") as pool:
        while True:
            in_time = time.monotonic() - started < settings.deadline - settings.safety
            free = min(settings.batch_size, settings.concurrency - len(pending))
            if in_time and not exhausted and (free >= refill or not pending):
                batch = store.claim_due(settings.horizon, free, owner, refresher.lease, clock.now(), began)
                exhausted = not batch
                counts["claimed"] += len(batch)
                pending |= {pool.submit(_refresh, refresher, integration, owner) for integration in batch}
            if not pending:
                break
            done, pending = wait(pending, return_when=FIRST_COMPLETED)
            for future in done:
                counts[COUNTED.get(future.result().outcome, "skipped")] += 1
    summary = {key: counts[key] for key in ("claimed", "refreshed", "failed_transient", "reauth_required", "skipped")}
    summary["duration_ms"] = int((time.monotonic() - started) * 1000)
    return summary
