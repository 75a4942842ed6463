"""The refresh fan-out, pure: which shards a dispatch enqueues, on which queue, under which task name.

Cloud Scheduler calls the dispatcher; it counts the due integrations per provider and enqueues, on that
provider's Cloud Tasks queue, one task per `shard_size` of them ("refresh up to B due integrations of provider
P"), at most `max_shards` per provider per dispatch. The queue's rate limits bound what one provider sees. A task
claims with SKIP LOCKED and a lease like any run, so shards need no partition of their own: overlapping tasks
never refresh an integration twice, and a lost one costs latency only.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

MAX_SHARD_SIZE = 1000  # the most a shard may claim (REFRESH_BATCH_SIZE's bound as well)


@dataclass(frozen=True)
class Shard:
    provider: str
    index: int  # 0-based within this dispatch and provider
    limit: int  # at most this many integrations

    def body(self) -> dict[str, object]:
        return {"provider": self.provider, "limit": self.limit}


class TaskQueue(Protocol):
    """A queue service with per-queue rate limits (Cloud Tasks: CloudTasksQueue)."""

    def enqueue(self, queue: str, task_id: str, body: bytes) -> bool:
        """Create a task on `queue` whose HTTP request posts `body` to the shard endpoint. False when a task of
        that name exists already (a repeated dispatch); QueueNotFound when the queue does not exist;
        DependencyUnavailable when the service cannot be reached."""
        ...


def plan_shards(due: Mapping[str, int], shard_size: int, max_shards: int) -> list[Shard]:
    """One shard per `shard_size` due integrations of each provider (the last may be smaller), at most
    `max_shards` per provider; providers in name order."""
    shards = []
    for provider in sorted(due):
        count = max(0, due[provider])
        wanted = min(-(-count // shard_size), max_shards)
        for index in range(wanted):
            shards.append(Shard(provider, index, min(shard_size, count - index * shard_size)))
    return shards


def queue_id(prefix: str, provider: str) -> str:
    """A provider's queue: provider ids are already in Cloud Tasks' alphabet (`[a-z0-9-]`)."""
    return f"{prefix}-{provider}"


def task_id(shard: Shard, dispatched_at: datetime) -> str:
    """The same for every dispatch of one minute, so a retried dispatch creates no second copy (Cloud Tasks keeps
    a name for about an hour after its task ran). A hash leads, as Cloud Tasks asks of named tasks (sequential
    names slow its dispatch)."""
    slot = dispatched_at.strftime("%Y%m%dT%H%M")
    digest = hashlib.sha256(f"{shard.provider}/{slot}/{shard.index}".encode()).hexdigest()[:8]
    return f"{digest}-{shard.provider}-{slot}-{shard.index}"
