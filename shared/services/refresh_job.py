"""The scheduled refresh job: claim what expires soon in batches, refresh with bounded concurrency, stop in time.

Each run first moves rotated refresh tokens that are still pending in their rows (the secret store refused them
earlier) into the secret store, then refreshes what expires within the horizon.
"""

from __future__ import annotations

import logging
import time
from collections import Counter
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass
from datetime import timedelta

from shared.domain.models import Integration
from shared.domain.ports import Clock, RefreshStore
from shared.domain.refresh import EXPIRY_WARNING
from shared.logs import fields
from shared.services.refresh import Lease, Refresher
from shared.services.refresh_failures import RefreshResult

log = logging.getLogger("broker.refresh_job")

COUNTED = {
    "refreshed": "refreshed",
    "transient": "failed_transient",
    "reauth_required": "reauth_required",
}
SETTLE_COUNTED = {"settled": "secrets_settled", "transient": "secrets_pending"}
SUMMARY = (
    "claimed", "refreshed", "failed_transient", "reauth_required", "skipped", "secrets_settled", "secrets_pending",
    "expiring_soon",
)  # fmt: skip


@dataclass(frozen=True)
class JobSettings:
    horizon: timedelta = timedelta(minutes=15)  # refresh what expires within this (≥ the scheduler's period)
    batch_size: int = 50  # at most this many per claim; a claim never exceeds the free workers
    concurrency: int = 8
    deadline: float = 240.0  # seconds; Cloud Scheduler and Cloud Run time out later than this
    safety: float = 15.0  # stop claiming this long before the deadline: a claimed batch must finish
    provider: str | None = None  # a fan-out shard: only this provider's integrations
    limit: int | None = None  # a fan-out shard: claim at most this many in all


def _refresh(refresher: Refresher, integration: Integration, lease: Lease) -> RefreshResult:
    """One refresh that cannot take the job down. An error that escaped even the failure bookkeeping (the database
    went away) keeps the lease until it lapses, so this run does not claim the integration again."""
    try:
        return refresher.refresh_claimed(integration, lease)
    except Exception as exc:  # noqa: BLE001 - one broken integration must not stop the others
        log.error("refresh of %s failed unexpectedly: %s", integration.id, type(exc).__name__)
        return RefreshResult("transient", None, type(exc).__name__)


def _settle(refresher: Refresher, integration: Integration, lease: Lease) -> RefreshResult:
    try:
        return refresher.settle_claimed(integration, lease)
    except Exception as exc:  # noqa: BLE001 - as above: the token stays pending in its row
        log.error("settling %s failed unexpectedly: %s", integration.id, type(exc).__name__)
        return RefreshResult("transient", None, type(exc).__name__)


def settle_pending(store: RefreshStore, refresher: Refresher, settings: JobSettings, stop_at: float) -> Counter[str]:
    """Move pending rotated tokens into the secret store, batch by batch, until none is left, one comes back (the
    store still refuses: the next run tries again), or `stop_at` (monotonic) passes."""
    counts: Counter[str] = Counter()
    seen: set[object] = set()
    owner = refresher.new_owner("settle")
    with ThreadPoolExecutor(max_workers=settings.concurrency, thread_name_prefix="settle") as pool:
        while time.monotonic() < stop_at and not refresher.stopping():
            sent = time.monotonic()
            batch = store.claim_pending(min(settings.batch_size, settings.concurrency), owner, refresher.lease)
            again = [i for i in batch if i.id in seen]
            for integration in again:
                store.release(integration.id, owner)
            fresh = [i for i in batch if i.id not in seen]
            seen |= {i.id for i in fresh}
            leases = [refresher.lease_from(owner, sent)] * len(fresh)
            for result in pool.map(_settle, [refresher] * len(fresh), fresh, leases):
                counts[SETTLE_COUNTED.get(result.outcome, "secrets_pending")] += 1
            if again or not fresh:
                break
    return counts


def warn_expiring(store: RefreshStore, clock: Clock, settings: JobSettings, stop_at: float) -> int:
    """`integration.expiring_soon` for every refresh token that ends within EXPIRY_WARNING, batch by batch."""
    warned = 0
    while time.monotonic() < stop_at:
        batch = store.warn_expiring(EXPIRY_WARNING, settings.batch_size, clock.now())
        warned += batch
        if batch < settings.batch_size:
            break
    return warned


def run_refresh_job(store: RefreshStore, refresher: Refresher, clock: Clock, settings: JobSettings) -> dict[str, int]:
    """Refresh every integration that expires within the horizon; answer counts by outcome."""
    started = time.monotonic()
    owner = refresher.new_owner("job")
    began = clock.now()  # what this run refreshed is not claimed again by it, however short its new lifetime
    counts = settle_pending(store, refresher, settings, started + (settings.deadline - settings.safety) / 4)
    counts["expiring_soon"] = warn_expiring(store, clock, settings, started + (settings.deadline - settings.safety) / 4)
    # Claim only what free workers start at once: a claimed integration never waits in a queue while its lease
    # runs out. Claim again when a quarter of the workers are free (fewer claim queries, no idle pool).
    refill = max(1, settings.concurrency // 4)
    running: set[Future[RefreshResult]] = set()
    exhausted = False
    with ThreadPoolExecutor(max_workers=settings.concurrency, thread_name_prefix="refresh") as pool:
        while True:
            in_time = time.monotonic() - started < settings.deadline - settings.safety and not refresher.stopping()
            free = min(settings.batch_size, settings.concurrency - len(running))
            if settings.limit is not None:
                free = min(free, settings.limit - counts["claimed"])
            if in_time and not exhausted and free > 0 and (free >= refill or not running):
                sent = time.monotonic()
                batch = store.claim_due(
                    settings.horizon, free, owner, refresher.lease, clock.now(), began, provider=settings.provider
                )
                exhausted = not batch
                counts["claimed"] += len(batch)
                lease = refresher.lease_from(owner, sent)
                running |= {pool.submit(_refresh, refresher, integration, lease) for integration in batch}
            if not running:
                break
            done, running = wait(running, return_when=FIRST_COMPLETED)
            for future in done:
                counts[COUNTED.get(future.result().outcome, "skipped")] += 1
    summary = {key: counts[key] for key in SUMMARY}
    summary["duration_ms"] = int((time.monotonic() - started) * 1000)
    log.info("refresh job: %s", summary, extra=fields(event="refresh_run", **summary))
    return summary
