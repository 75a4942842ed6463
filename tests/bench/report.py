"""What `make bench` prints, and the README's Benchmarks table written from the same figures."""

from __future__ import annotations

from pathlib import Path
from typing import Any

START, END = "<!-- bench:start -->", "<!-- bench:end -->"
X = "\u00d7"  # the multiplication sign, as the README writes ratios
FUNCTIONS = ("token_fetch", "token_refresh", "integrations", "oauth_start", "oauth_callback")


def print_report(results: dict[str, Any]) -> None:
    d = results["detail"]
    one, cold = d["p1"], d["p3"]
    print("P1 token fetch (valid token, warm, over HTTP) vs one prepared primary-key SELECT on the same stack")
    print(f"    server CPU per request       {one['fetch_cpu_ms']:.3f} ms vs {one['floor_cpu_ms']:.3f} ms"
          f"  -> {one['cpu_ratio']:.2f}x  (goal <= 1.3x)")  # fmt: skip
    print(f"    database round trips         {one['round_trips']:.2f} per fetch (floor {one['floor_round_trips']:.2f};"
          " goal <= 4)")  # fmt: skip
    print(f"    median latency               {one['fetch_median_ms']:.2f} ms vs {one['floor_median_ms']:.2f} ms"
          f"  -> {one['median_ratio']:.2f}x")  # fmt: skip
    for c in (16, 64):
        print_p2(d[f"p2_c{c}"], d["args"]["refreshes"], d["args"]["latency"], c)
    print_p3(cold, d["args"]["cold_runs"])
    print(f"P4 Secret Manager writes per refresh: rotating {results['p4_writes_rotating']:.2f} (floor 1), "
          f"non-rotating {results['p4_writes_non_rotating']:.2f} (floor 0)")  # fmt: skip
    print(f"P5 50 concurrent fetches of one expired token from 2 processes: {results['p5_provider_calls']:.0f} "
          "provider call(s) (floor 1)")  # fmt: skip
    rounds = ", ".join(f"{mb:.1f}" for mb in one["rss_rounds_mb"])
    print(f"RSS per worker (MB): {_rss(results)}; token_fetch over P1's rounds: {rounds} "
          f"(growth {one['rss_growth_mb']:+.2f} MB)")  # fmt: skip


def print_p2(two: dict[str, Any], refreshes: int, latency: float, c: int) -> None:
    print(f"P2 refresh job, {refreshes} due (rotating), latency {latency}s, concurrency {c}")
    print(f"    {two['seconds']:.2f} s vs floor {two['floor_seconds']:.2f} s -> {two['fraction']:.2f} of the"
          f" floor's throughput (goal >= 0.8); job CPU {two['job_cpu_ms_per_refresh']:.2f} ms per refresh; "
          f"{two['provider_calls_per_refresh']:.2f} provider calls per refresh")  # fmt: skip
    print(f"    CPU per refresh: job {two['job_cpu_ms_per_refresh']:.1f} ms, stub provider + local Secret Manager "
          f"{two['stub_cpu_ms_per_refresh']:.1f} ms, PostgreSQL {two['postgres_cpu_ms_per_refresh']:.1f} ms; "
          f"machine {two['machine_busy']:.0%} busy (all cores, other work included)")  # fmt: skip


def print_p3(cold: dict[str, Any], runs: int) -> None:
    print(f"P3 cold start (process start -> first answer), median of {runs} interleaved runs; "
          f"hello-world floor {cold['floor_ms']:.0f} ms (goal <= 2.5x)")  # fmt: skip
    for name in FUNCTIONS:
        imports = cold["imports"][name]
        top = ", ".join(f"{package} {ms:.0f}" for package, ms in imports["top"].items())
        print(f"    {name:15} {cold['median_ms'][name]:6.0f} ms  {cold['ratio'][name]:.2f}x   imports "
              f"{imports['total_ms']:.0f} ms (-X importtime, by package, ms): {top}")  # fmt: skip
        print(f"    {'':15} CPU to the first answer {cold['cpu_ms'][name]:.0f} ms ({cold['cpu_ratio'][name]:.2f}x the "
              f"floor's {cold['cpu_ms']['hello']:.0f} ms); runs (ms): {cold['runs_ms'][name]}")  # fmt: skip
    hello = cold["imports"]["hello"]
    print(
        f"    {'hello (floor)':15} imports {hello['total_ms']:.0f} ms: "
        + ", ".join(f"{p} {ms:.0f}" for p, ms in hello["top"].items())
        + f"; runs (ms): {cold['runs_ms']['hello']}"
    )


def _rss(results: dict[str, Any]) -> str:
    return ", ".join(f"{name} {mb:.0f}" for name, mb in results["rss_mb"].items())


def table(results: dict[str, Any]) -> str:
    d = results["detail"]
    one, cold, c16, c64 = d["p1"], d["p3"], d["p2_c16"], d["p2_c64"]
    n, latency = d["args"]["refreshes"], d["args"]["latency"]
    ratios = ", ".join(f"`{name}` {cold['ratio'][name]:.2f}{X}" for name in FUNCTIONS)
    rows = [
        "| | what | floor | measured (2 shared cores, one run) |",
        "|---|---|---|---|",
        f"| P1 | server CPU per `GET /token/{{id}}` of a valid token over HTTP (auth, one statement, decrypt, audit) "
        f"| the same server stack answering one prepared primary-key `SELECT` through raw pg8000, requests "
        f"interleaved | **{one['cpu_ratio']:.2f}{X}** ({one['fetch_cpu_ms']:.2f} ms vs {one['floor_cpu_ms']:.2f} ms); "
        f"**{one['round_trips']:.0f} database round trip(s)** per fetch (floor {one['floor_round_trips']:.0f}); "
        f"median latency {one['median_ratio']:.2f}{X} |",
        f"| P2 | the refresh job over {n:,} due integrations of a rotating provider, latency {latency * 1000:.0f} ms "
        f"| N {X} latency / concurrency: {c16['floor_seconds']:.1f} s at 16, {c64['floor_seconds']:.2f} s at 64 "
        f"| **{c16['fraction']:.2f}** of the floor's throughput at 16 ({c16['seconds']:.1f} s), "
        f"**{c64['fraction']:.2f}** at 64 ({c64['seconds']:.1f} s); job CPU {c16['job_cpu_ms_per_refresh']:.1f} ms "
        f"per refresh; {c16['provider_calls_per_refresh']:.1f} provider call per refresh |",
        f"| P3 | cold start, process start → first answer, median of {d['args']['cold_runs']} interleaved runs "
        f"| a hello-world function under functions-framework ({cold['floor_ms']:.0f} ms) | {ratios} |",
        "| P4 | Secret Manager writes per refresh, counted at the local API server | 1 (rotating), 0 (non-rotating) "
        f"| {results['p4_writes_rotating']:.1f} rotating, {results['p4_writes_non_rotating']:.1f} non-rotating |",
        "| P5 | 50 concurrent fetches of one expired token from 2 processes | 1 provider call "
        f"| {results['p5_provider_calls']:.0f} provider call(s) |",
        "| RSS | each function's worker after rounds of requests (the token function after P1's rounds) "
        f"| the hello-world worker, {d['p3']['rss_mb']['hello'][-1]:.0f} MB | {_rss(results)} MB; "
        f"growth over P1's rounds {one['rss_growth_mb']:+.1f} MB |",
    ]
    return "\n".join(rows)


def rewrite_readme(path: Path, results: dict[str, Any]) -> None:
    text = path.read_text(encoding="utf-8")
    head, _, rest = text.partition(START)
    _, _, tail = rest.partition(END)
    path.write_text(f"{head}{START}\n{table(results)}\n{END}{tail}", encoding="utf-8")
