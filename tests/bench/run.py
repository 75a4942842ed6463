"""Benchmarks (`make bench`). Each figure is a ratio against a floor measured in the same run.

P1  token fetch of a valid token over HTTP      vs one primary-key SELECT on the same server stack
P2  refresh job over N due integrations         vs N * provider latency / concurrency
P4  Secret Manager writes per refresh           (rotating and non-rotating providers; floor: 1 and 0)
P5  concurrent fetches of one expired token     → provider calls (floor: 1)
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack
from datetime import UTC, datetime, timedelta
from pathlib import Path
from tempfile import mkdtemp

import requests

from tests.bench.stub_provider import RemoteStub
from tests.support.broker_env import DATA_KEY, in_process_broker
from tests.support.postgres import DatabaseFactory, running_cluster
from tests.support.processes import serving, serving_function
from tests.support.seed import seed_integration

API_KEY = "benchmark-internal-key-0123456789"


class Env(dict[str, str]):
    def setenv(self, name: str, value: str) -> None:  # the MonkeyPatch interface in_process_broker expects
        os.environ[name] = value


def providers_file(directory: Path, stub: RemoteStub) -> Path:
    path = directory / "providers.yaml"
    path.write_text(
        "providers:\n"
        f"  rotating:\n    display_name: Rotating\n    auth_mode: oauth2\n"
        f"    authorization_url: {stub.url}/authorize\n    token_url: {stub.url}/token\n"
        "    refresh_token_rotates: true\n"
        f"  steady:\n    display_name: Non-rotating\n    auth_mode: oauth2\n"
        f"    authorization_url: {stub.url}/authorize\n    token_url: {stub.url}/steady/token\n",
        encoding="utf-8",
    )
    return path


def timed_gets(urls: list[str], n: int, headers: dict[str, str]) -> list[list[float]]:
    """Time `n` GETs of each URL, interleaved, so both see the same load on a shared machine."""
    times: list[list[float]] = [[] for _ in urls]
    with requests.Session() as session:
        for url in urls:
            for _ in range(20):
                session.get(url, headers=headers, timeout=10)  # warm: connections, the instance's caches
        for _ in range(n):
            for i, url in enumerate(urls):
                started = time.perf_counter()
                response = session.get(url, headers=headers, timeout=10)
                times[i].append(time.perf_counter() - started)
                assert response.status_code == 200, response.text
    return times


def p1(env: dict[str, str], app, requests_n: int) -> dict[str, float]:
    now = datetime.now(UTC)
    integration_id = seed_integration(
        app, "rotating", "p1", refresh_token="rt-p1", access_token="at-p1", expires_at=now + timedelta(hours=2),
        refreshed_at=now,
    )  # fmt: skip
    headers = {"Authorization": f"Bearer {API_KEY}"}
    floor_args = [
        "functions_framework",
        "--target",
        "floor",
        "--source",
        "tests/bench/floor_function.py",
        "--host",
        "127.0.0.1",
    ]
    with serving_function("token_fetch", env) as fetch, serving(floor_args, env, ready_path="/") as floor:
        urls = [f"{fetch}/token/{integration_id}", f"{floor}/floor/{integration_id}"]
        fetch_times, floor_times = timed_gets(urls, requests_n, headers)
    return {
        "median_ratio": statistics.median(fetch_times) / statistics.median(floor_times),
        "p95_ratio": _p95(fetch_times) / _p95(floor_times),
        "fetch_median_ms": statistics.median(fetch_times) * 1000,
        "floor_median_ms": statistics.median(floor_times) * 1000,
    }


def _p95(values: list[float]) -> float:
    return sorted(values)[int(len(values) * 0.95) - 1]


def seed_many(app, stub: RemoteStub, provider: str, n: int, prefix: str) -> None:
    now = datetime.now(UTC)

    def one(i: int) -> None:
        seed_integration(
            app, provider, f"{prefix}-{i}", refresh_token=stub.mint(), access_token=f"at-{prefix}-{i}",
            expires_at=now + timedelta(seconds=30), refreshed_at=now - timedelta(hours=1),
        )  # fmt: skip

    with ThreadPoolExecutor(max_workers=8) as pool:
        list(pool.map(one, range(n)))


def p2(app, stub: RemoteStub, n: int, latency: float) -> dict[str, float]:
    from shared.services.refresh_job import run_refresh_job

    seed_many(app, stub, "rotating", n, "p2")
    stub.reset()
    settings = app.job_settings
    started = time.perf_counter()
    counts = run_refresh_job(app.refresh_store, app.refresher, app.clock, settings)
    elapsed = time.perf_counter() - started
    assert counts["refreshed"] == n, counts
    floor = n * latency / settings.concurrency
    calls = stub.counts()["provider"]
    return {
        "ratio": elapsed / floor,
        "seconds": elapsed,
        "floor_seconds": floor,
        "provider_calls_per_refresh": calls / n,
    }


def p4(app, stub: RemoteStub, n: int) -> dict[str, float]:
    from shared.services.refresh_job import run_refresh_job

    results = {}
    for provider in ("rotating", "steady"):
        seed_many(app, stub, provider, n, f"p4-{provider}")
        before = stub.counts()["secret_writes"]
        counts = run_refresh_job(app.refresh_store, app.refresher, app.clock, app.job_settings)
        results[f"{provider}_writes_per_refresh"] = (stub.counts()["secret_writes"] - before) / counts["refreshed"]
    return results


def p5(env: dict[str, str], app, stub: RemoteStub, callers: int) -> dict[str, float]:
    now = datetime.now(UTC)
    integration_id = seed_integration(
        app, "rotating", "p5", refresh_token=stub.mint(), access_token="at-p5", expires_at=now - timedelta(seconds=1),
        refreshed_at=now - timedelta(hours=1),
    )  # fmt: skip
    stub.reset()
    headers = {"Authorization": f"Bearer {API_KEY}"}
    with serving_function("token_fetch", env) as one, serving_function("token_fetch", env) as two:
        urls = [f"{base}/token/{integration_id}" for base in (one, two)]
        with ThreadPoolExecutor(max_workers=callers) as pool:
            statuses = list(
                pool.map(lambda i: requests.get(urls[i % 2], headers=headers, timeout=30).status_code, range(callers))
            )
    assert statuses == [200] * callers, statuses
    calls = stub.counts()["provider"]
    return {"provider_calls": calls, "calls_per_fetch": calls / callers}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--refreshes", type=int, default=2000, help="P2: due integrations (≥ 2000 for the record)")
    parser.add_argument("--requests", type=int, default=300, help="P1: timed requests per endpoint")
    parser.add_argument("--latency", type=float, default=0.1, help="P2: the stub provider's latency (seconds)")
    args = parser.parse_args()
    scratch = Path(mkdtemp(prefix="broker-bench-"))
    with ExitStack() as stack:
        server = stack.enter_context(running_cluster())
        stub = stack.enter_context(RemoteStub.serving(args.latency))
        databases = DatabaseFactory(server, "template0")
        name = databases.create()
        url = server.url(name)
        from shared.adapters import schema
        from shared.adapters.db import engine_for_url

        engine = engine_for_url(url)
        schema.upgrade(engine)
        engine.dispose()
        env = Env(
            DATABASE_URL=url, SECRET_BACKEND="gcp", GCP_PROJECT="bench", SECRET_MANAGER_ENDPOINT=stub.grpc_endpoint,
            DATA_KEYS=f"1:{DATA_KEY}", PROVIDERS_FILE=str(providers_file(scratch, stub)), INTERNAL_API_KEYS=API_KEY,
            ROTATING_CLIENT_ID="bench", ROTATING_CLIENT_SECRET="bench-secret", STEADY_CLIENT_ID="bench",
            STEADY_CLIENT_SECRET="bench-secret", REFRESH_CONCURRENCY="16", REFRESH_BATCH_SIZE="100", DB_POOL_SIZE="20",
            REFRESH_DEADLINE="3600", LOG_LEVEL="WARNING",
        )  # fmt: skip
        app = stack.enter_context(in_process_broker(env, env))
        report = {
            "P1 token fetch vs primary-key SELECT": p1(env, app, args.requests),
            f"P2 refresh job, {args.refreshes} due, provider latency {args.latency}s": p2(
                app, stub, args.refreshes, args.latency
            ),
            "P4 Secret Manager writes per refresh": p4(app, stub, 50),
            "P5 50 concurrent fetches of one expired token": p5(env, app, stub, 50),
        }
        databases.drop(name)
    for title, figures in report.items():
        print(title)
        for key, value in figures.items():
            print(f"    {key:32} {value:10.3f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
