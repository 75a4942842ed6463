"""The refresh fan-out: a dispatch enqueues shards on per-provider queues; a shard refreshes its provider's due
integrations, at most its limit (shared.domain.fanout says how shards are cut and named)."""

from __future__ import annotations

import json
import logging
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

from shared.domain.fanout import Shard, TaskQueue, plan_shards, queue_id, task_id
from shared.domain.ports import Clock, RefreshStore
from shared.errors import FanoutNotConfigured, QueueNotFound
from shared.logs import fields
from shared.providers.catalog import Catalog
from shared.services.refresh import Refresher
from shared.services.refresh_job import JobSettings, run_refresh_job

log = logging.getLogger("broker.refresh_fanout")

ENQUEUERS = 8  # tasks created at once (each is one Cloud Tasks call)


@dataclass(frozen=True)
class FanoutSettings:
    queue_prefix: str
    shard_size: int
    max_shards: int
    configured: bool  # TASKS_LOCATION is set


@dataclass
class RefreshFanout:
    store: RefreshStore
    refresher: Refresher
    catalog: Catalog
    clock: Clock
    queue: TaskQueue  # deferred: a shard never builds the Cloud Tasks client
    job: JobSettings
    settings: FanoutSettings

    def dispatch(self) -> dict[str, Any]:
        """Count what is due per provider and enqueue its shards; answer what was enqueued. A provider without a
        queue is named in `queues_missing` (its integrations wait, the others go on); TaskQueueUnavailable (the
        service is down) fails the dispatch, and the scheduler's retry enqueues only what is missing."""
        if not self.settings.configured:
            raise FanoutNotConfigured("the refresh fan-out needs TASKS_LOCATION (see the README's configuration)")
        started = time.monotonic()
        now = self.clock.now()
        due = self.store.count_due(self.job.horizon, now)
        shards = plan_shards(due, self.settings.shard_size, self.settings.max_shards)
        counts: Counter[str] = Counter()
        missing: set[str] = set()
        with ThreadPoolExecutor(max_workers=ENQUEUERS, thread_name_prefix="enqueue") as pool:
            for shard, created in zip(shards, pool.map(lambda s: self._enqueue(s, now), shards), strict=True):
                if created is None:
                    missing.add(shard.provider)
                else:
                    counts["enqueued" if created else "already_enqueued"] += 1
        summary = {
            "due": sum(due.values()), "shards": len(shards), "enqueued": counts["enqueued"],
            "already_enqueued": counts["already_enqueued"], "queues_missing": sorted(missing),
            "duration_ms": int((time.monotonic() - started) * 1000),
        }  # fmt: skip
        log.info("refresh dispatch: %s", summary, extra=fields(event="refresh_dispatch", **summary))
        return summary

    def _enqueue(self, shard: Shard, now: datetime) -> bool | None:
        """Whether the task was created (False: it exists already); None when the provider has no queue."""
        try:
            body = json.dumps(shard.body()).encode()
            return self.queue.enqueue(queue_id(self.settings.queue_prefix, shard.provider), task_id(shard, now), body)
        except QueueNotFound:
            log.error("refresh dispatch: no queue for provider %s", shard.provider)
            return None

    def run_shard(self, provider: str, limit: int) -> dict[str, Any]:
        """Refresh up to `limit` due integrations of `provider` (UnknownProvider when the catalog has none)."""
        provider = self.catalog.get(provider).id  # an alias names the same queue's integrations
        job = replace(self.job, provider=provider, limit=limit)
        return {"provider": provider, **run_refresh_job(self.store, self.refresher, self.clock, job)}
