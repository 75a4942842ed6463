"""P2, P4 and P5: the refresh job against its latency floor, Secret Manager writes per refresh, provider calls for
concurrent fetches of one expired token."""

from __future__ import annotations

import dataclasses
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from typing import Any

import requests

from shared.bootstrap import Container
from tests.bench import procfs
from tests.bench.stack import Stack, seed_many
from tests.support.processes import serving_function
from tests.support.seed import seed_integration


def p2(stack: Stack, n: int, latency: float, concurrency: int) -> dict[str, Any]:
    """N due integrations of a rotating provider (the costlier kind: two fenced row writes and a Secret Manager
    write per refresh), one job run; the floor is N x latency / concurrency (the provider's latency alone)."""
    from shared.services.refresh_job import run_refresh_job

    app = stack.app
    seed_many(app, stack.stub, "rotating", n, f"p2-{concurrency}")
    stack.stub.reset()
    settings = dataclasses.replace(app.job_settings, concurrency=concurrency, batch_size=max(100, concurrency))
    postgres = procfs.postmaster(stack.server.port)
    before = _cpu(stack, postgres)
    started = time.perf_counter()
    counts = run_refresh_job(app.refresh_store, app.refresher, app.clock, settings)
    elapsed = time.perf_counter() - started
    used = {name: (after - before[name]) / n * 1000 for name, after in _cpu(stack, postgres).items()}
    assert counts["refreshed"] == n, counts
    floor = n * latency / concurrency
    busy, total = (used.pop("machine_busy"), used.pop("machine_total"))
    return {
        "fraction": floor / elapsed,
        "seconds": elapsed,
        "floor_seconds": floor,
        "job_cpu_ms_per_refresh": used["job"],
        "stub_cpu_ms_per_refresh": used["stub"],  # the provider stub and the local Secret Manager
        "postgres_cpu_ms_per_refresh": used["postgres"],
        "machine_busy": busy / total,  # of all cores, other work on the machine included
        "provider_calls_per_refresh": stack.stub.counts()["provider"] / n,
    }


def _cpu(stack: Stack, postgres: int | None) -> dict[str, float]:
    busy, total = procfs.machine_busy_seconds()
    return {
        "job": time.process_time(), "stub": procfs.tree_cpu_seconds(stack.stub.pid),
        "postgres": procfs.tree_cpu_seconds(postgres) if postgres else 0.0,
        "machine_busy": busy, "machine_total": total,
    }  # fmt: skip


def p4(stack: Stack, n: int) -> dict[str, float]:
    from shared.services.refresh_job import run_refresh_job

    app = stack.app
    results = {}
    for provider in ("rotating", "steady"):
        seed_many(app, stack.stub, provider, n, f"p4-{provider}")
        before = stack.stub.counts()["secret_writes"]
        counts = run_refresh_job(app.refresh_store, app.refresher, app.clock, app.job_settings)
        results[provider] = (stack.stub.counts()["secret_writes"] - before) / counts["refreshed"]
    return results


def p5(stack: Stack, callers: int, api_key: str) -> dict[str, float]:
    app: Container = stack.app
    now = datetime.now(UTC)
    integration_id = seed_integration(
        app, "rotating", "p5", refresh_token=stack.stub.mint(), access_token="at-p5",
        expires_at=now - timedelta(seconds=1), refreshed_at=now - timedelta(hours=1),
    )  # fmt: skip
    stack.stub.reset()
    headers = {"Authorization": f"Bearer {api_key}"}
    with serving_function("token_fetch", stack.env) as one, serving_function("token_fetch", stack.env) as two:
        urls = [f"{base}/token/{integration_id}" for base in (one, two)]
        with ThreadPoolExecutor(max_workers=callers) as pool:
            statuses = list(
                pool.map(lambda i: requests.get(urls[i % 2], headers=headers, timeout=30).status_code, range(callers))
            )
    assert statuses == [200] * callers, statuses
    calls = stack.stub.counts()["provider"]
    return {"provider_calls": calls, "calls_per_fetch": calls / callers}
