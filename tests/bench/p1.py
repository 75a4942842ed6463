"""P1: a valid-token fetch over HTTP against the floor (one prepared primary-key SELECT on the same server stack).

Both servers run as deployed (`broker function`: gunicorn, one worker); requests alternate between them so both see
the same load on a shared machine. CPU is the server process group's user + system time (/proc) per request;
round trips are counted at the socket by a proxy, on servers of their own; RSS is the worker's after each round.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

import requests

from shared.bootstrap import Container
from tests.bench import procfs
from tests.support.processes import Served, serving, serving_function
from tests.support.roundtrips import CountingProxy, proxied_url, upstream_of
from tests.support.seed import seed_integration

FLOOR = ["shared.cli", "function", "--target", "floor", "--source", "tests/bench/floor_function.py"]


def _floor(env: Mapping[str, str]) -> Any:
    return serving([*FLOOR, "--host", "127.0.0.1"], env, ready_path="/")


def seed_valid(app: Container) -> str:
    now = datetime.now(UTC)
    integration_id = seed_integration(
        app, "rotating", "p1", refresh_token="rt-p1", access_token="at-p1", expires_at=now + timedelta(hours=2),
        refreshed_at=now,
    )  # fmt: skip
    return str(integration_id)


def _get(session: requests.Session, url: str, headers: dict[str, str]) -> float:
    started = time.perf_counter()
    response = session.get(url, headers=headers, timeout=10)
    elapsed = time.perf_counter() - started
    assert response.status_code == 200, response.text
    return elapsed


def round_trips(env: dict[str, str], integration_id: str, headers: dict[str, str], n: int = 100) -> dict[str, float]:
    """Round trips per request, fetch and floor, each on a server of its own whose database goes through a proxy."""
    figures = {}
    for name in ("fetch", "floor"):
        with CountingProxy.running(upstream_of(env["DATABASE_URL"])) as proxy:
            proxied = {**env, "DATABASE_URL": proxied_url(env["DATABASE_URL"], proxy)}
            server = serving_function("token_fetch", proxied) if name == "fetch" else _floor(proxied)
            with server as base, requests.Session() as session:
                target = f"{base}/token/{integration_id}" if name == "fetch" else f"{base}/floor/{integration_id}"
                for _ in range(20):  # warm: the pool's connections are open, statements prepared
                    _get(session, target, headers)
                before = proxy.flights
                for _ in range(n):
                    _get(session, target, headers)
                figures[name] = (proxy.flights - before) / n
    return figures


def p1(env: dict[str, str], integration_id: str, requests_n: int, rounds: int, api_key: str) -> dict[str, Any]:
    headers = {"Authorization": f"Bearer {api_key}"}
    cpu: dict[str, float] = {"fetch": 0.0, "floor": 0.0}
    times: dict[str, list[float]] = {"fetch": [], "floor": []}
    rss: list[float] = []
    with serving_function("token_fetch", env) as fetch, _floor(env) as floor, requests.Session() as session:
        servers: dict[str, Served] = {"fetch": fetch, "floor": floor}
        urls = {"fetch": f"{fetch}/token/{integration_id}", "floor": f"{floor}/floor/{integration_id}"}
        for name in servers:
            for _ in range(50):  # warm: connections, prepared statements, the instance's caches
                _get(session, urls[name], headers)
        for _ in range(rounds):
            started = {name: procfs.cpu_seconds(s.process.pid) for name, s in servers.items()}
            for _ in range(requests_n):
                for name in servers:
                    times[name].append(_get(session, urls[name], headers))
            for name, server in servers.items():
                cpu[name] += procfs.cpu_seconds(server.process.pid) - started[name]
            rss.append(procfs.rss_mb(procfs.worker_pid(fetch.process.pid)))
    total = requests_n * rounds
    trips = round_trips(env, integration_id, headers)
    return {
        "cpu_ratio": cpu["fetch"] / cpu["floor"],
        "fetch_cpu_ms": cpu["fetch"] / total * 1000,
        "floor_cpu_ms": cpu["floor"] / total * 1000,
        "round_trips": trips["fetch"],
        "floor_round_trips": trips["floor"],
        "median_ratio": statistics.median(times["fetch"]) / statistics.median(times["floor"]),
        "fetch_median_ms": statistics.median(times["fetch"]) * 1000,
        "floor_median_ms": statistics.median(times["floor"]) * 1000,
        "rss_mb": rss[-1],
        "rss_growth_mb": rss[-1] - rss[0],
        "rss_rounds_mb": rss,
    }
