"""P3: cold start (process start → first answer to a real request) of each function, as deployed (`broker function`),
against a hello-world function under functions-framework's own CLI; runs interleaved. Also what each function
imports (`-X importtime`, summed by top-level package, its top 10) and its worker's RSS over rounds of requests.
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import requests

from tests.bench import procfs
from tests.support.lifetime import stop
from tests.support.postgres import free_port

HELLO = ["functions_framework", "--target", "hello", "--source", "tests/bench/hello_function.py"]


@dataclass(frozen=True)
class Probe:
    """The first request a function answers, and the answer it must give."""

    method: str
    path: str
    status: int
    headers: Mapping[str, str] = field(default_factory=dict)
    json: Any = None


def probes(integration_id: str, api_key: str) -> dict[str, Probe]:
    entity = {"X-Entity-Id": "p3"}
    return {
        "hello": Probe("GET", "/", 200),
        "token_fetch": Probe("GET", f"/token/{integration_id}", 200, {"Authorization": f"Bearer {api_key}"}),
        "token_refresh": Probe("POST", "/refresh", 200),
        "integrations": Probe("GET", "/integrations", 200, entity),
        "oauth_start": Probe("POST", "/oauth/start", 200, entity, {"provider": "steady"}),
        "oauth_callback": Probe("GET", "/oauth/callback?state=unknown&code=c", 400),
    }


def _command(name: str, importtime: bool) -> list[str]:
    python = [sys.executable, *(["-X", "importtime"] if importtime else [])]
    if name == "hello":
        return [*python, "-m", *HELLO, "--host", "127.0.0.1"]
    return [*python, "-m", "shared.cli", "function", "--target", name, "--host", "127.0.0.1"]


class Cold:
    """One cold process: started, asked until it answers, timed, then kept for RSS rounds and stopped."""

    def __init__(self, name: str, env: Mapping[str, str], probe: Probe, *, importtime: bool = False) -> None:
        self.port = free_port()
        self.log = tempfile.TemporaryFile()  # noqa: SIM115 - closed in stop()
        full = {**os.environ, **env, "PORT": str(self.port)}
        self.probe = probe
        self.started = time.perf_counter()
        self.process = subprocess.Popen(
            _command(name, importtime), env=full, stdout=self.log, stderr=subprocess.STDOUT, start_new_session=True
        )

    def ask(self, session: requests.Session) -> None:
        p = self.probe
        response = session.request(
            p.method, f"http://127.0.0.1:{self.port}{p.path}", headers=dict(p.headers), json=p.json, timeout=60
        )
        assert response.status_code == p.status, (p.path, response.status_code, response.text[:500])

    def first_answer(self) -> float:
        deadline = self.started + 60
        with requests.Session() as session:
            while True:
                try:
                    self.ask(session)
                    return time.perf_counter() - self.started
                except requests.ConnectionError:
                    if time.perf_counter() > deadline or self.process.poll() is not None:
                        raise RuntimeError(f"no answer: {self.output()[-2000:]}") from None
                    time.sleep(0.002)

    def output(self) -> str:
        self.log.flush()
        self.log.seek(0)
        return self.log.read().decode(errors="replace")

    def stop(self) -> None:
        stop(self.process)
        self.log.close()


def import_profile(stderr: str, top: int = 10) -> dict[str, Any]:
    """Import time summed by top-level package (self times, so nothing is counted twice), across the master and the
    worker, and the total."""
    by_package: Counter[str] = Counter()
    for line in stderr.splitlines():
        if not line.startswith("import time:") or "self [us]" in line:
            continue
        self_us, _cumulative, name = line.removeprefix("import time:").split("|", 2)
        by_package[name.strip().split(".")[0]] += int(self_us)
    total = sum(by_package.values())
    return {"total_ms": total / 1000, "top": {name: us / 1000 for name, us in by_package.most_common(top)}}


def p3(env: Mapping[str, str], integration_id: str, api_key: str, runs: int = 5, rss_rounds: int = 3) -> dict[str, Any]:
    asks = probes(integration_id, api_key)
    times: dict[str, list[float]] = {name: [] for name in asks}
    cpu: dict[str, list[float]] = {name: [] for name in asks}  # the process group's CPU to its first answer
    for _ in range(runs):
        for name, probe in asks.items():
            cold = Cold(name, env, probe)
            try:
                times[name].append(cold.first_answer())
                cpu[name].append(procfs.cpu_seconds(cold.process.pid))
            finally:
                cold.stop()
    floor, cpu_floor = statistics.median(times["hello"]), statistics.median(cpu["hello"])
    imports, rss = {}, {}
    for name, probe in asks.items():
        cold = Cold(name, env, probe, importtime=True)
        try:
            cold.first_answer()
            imports[name] = import_profile(cold.output())
            rss[name] = _rss_rounds(cold, rss_rounds)
        finally:
            cold.stop()
    return {
        "floor_ms": floor * 1000,
        "ratio": {name: statistics.median(t) / floor for name, t in times.items() if name != "hello"},
        "median_ms": {name: statistics.median(t) * 1000 for name, t in times.items()},
        "runs_ms": {name: [round(s * 1000) for s in t] for name, t in times.items()},
        "cpu_ms": {name: statistics.median(c) * 1000 for name, c in cpu.items()},
        "cpu_ratio": {name: statistics.median(c) / cpu_floor for name, c in cpu.items() if name != "hello"},
        "imports": imports,
        "rss_mb": rss,
    }


def _rss_rounds(cold: Cold, rounds: int, per_round: int = 100) -> list[float]:
    worker = procfs.worker_pid(cold.process.pid)
    sizes = []
    with requests.Session() as session:
        for _ in range(rounds):
            for _ in range(per_round):
                cold.ask(session)
            sizes.append(procfs.rss_mb(worker))
    return sizes
