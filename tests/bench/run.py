"""Benchmarks (`make bench`). Each figure is a ratio against a floor measured in the same run.

P1  valid-token fetch over HTTP: server CPU per fetch vs one prepared primary-key SELECT through raw pg8000 on the
    same server stack; database round trips per fetch, counted at the socket
P2  refresh job over N due integrations (rotating provider) vs N x provider latency / concurrency, at 16 and 64
P3  cold start (process start → first answer) of each function vs a hello-world function, 5 interleaved runs,
    with each function's imports (`-X importtime`, top 10 packages)
P4  Secret Manager writes per refresh (rotating and non-rotating providers; floor: 1 and 0)
P5  concurrent fetches of one expired token from two processes → provider calls (floor: 1)
RSS of each function's worker after rounds of requests (P1's rounds for the token function), and its growth

Writes bench-results.json at the repository root; `--readme` also rewrites the README's Benchmarks table.
`--only p3` (or p1, p2, p45) runs one part and prints its figures, writing no file (the contract needs every part);
with `--only p2`, `--concurrency` (repeatable) picks the concurrencies (default 16 and 64).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from tests.bench.jobs import p2, p4, p5
from tests.bench.p1 import p1, seed_valid
from tests.bench.p3 import p3
from tests.bench.report import print_p2, print_p3, print_report, rewrite_readme
from tests.bench.stack import API_KEY, running_stack

ROOT = Path(__file__).resolve().parents[2]
PARTS = ["p3", "p1", "p2", "p45"]  # in the order a full run measures them


def contract(figures: dict[str, Any]) -> dict[str, Any]:
    """The keys other tools read (issue 12's contract), then everything measured."""
    rss = {name: sizes[-1] for name, sizes in figures["p3"]["rss_mb"].items() if name != "hello"}
    rss["token_fetch"] = figures["p1"]["rss_mb"]
    return {
        "p1_cpu_ratio": figures["p1"]["cpu_ratio"],
        "p1_round_trips": figures["p1"]["round_trips"],
        "p2_fraction_c16": figures["p2_c16"]["fraction"],
        "p2_fraction_c64": figures["p2_c64"]["fraction"],
        "p3_ratio": figures["p3"]["ratio"],
        "p4_writes_rotating": figures["p4"]["rotating"],
        "p4_writes_non_rotating": figures["p4"]["steady"],
        "p5_provider_calls": figures["p5"]["provider_calls"],
        "rss_mb": rss,
        "detail": figures,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--refreshes", type=int, default=2000, help="P2: due integrations (≥ 2000 for the record)")
    parser.add_argument("--requests", type=int, default=500, help="P1: timed requests per endpoint and round")
    parser.add_argument("--rounds", type=int, default=4, help="P1: rounds (RSS is read after each)")
    parser.add_argument("--latency", type=float, default=0.1, help="P2: the stub provider's latency (seconds)")
    parser.add_argument("--cold-runs", type=int, default=5, help="P3: interleaved cold starts per function")
    parser.add_argument("--readme", action="store_true", help="rewrite the README's Benchmarks table")
    parser.add_argument("--only", choices=PARTS, help="run one part, print its figures, write no file")
    parser.add_argument("--concurrency", type=int, action="append", help="with --only p2: this concurrency only")
    args = parser.parse_args()
    figures: dict[str, Any] = {}
    parts = [args.only] if args.only else PARTS
    concurrencies = (args.concurrency or [16, 64]) if args.only == "p2" else [16, 64]
    with running_stack(args.latency, concurrency=max(64, *concurrencies)) as stack:
        integration_id = seed_valid(stack.app)
        if "p3" in parts:
            figures["p3"] = p3(stack.env, integration_id, API_KEY, runs=args.cold_runs)
        if "p1" in parts:
            figures["p1"] = p1(stack.env, integration_id, args.requests, args.rounds, API_KEY)
        for concurrency in concurrencies if "p2" in parts else ():
            figures[f"p2_c{concurrency}"] = p2(stack, args.refreshes, args.latency, concurrency)
        if "p45" in parts:
            figures["p4"] = p4(stack, 50)
            figures["p5"] = p5(stack, 50, API_KEY)
    figures["args"] = vars(args)
    if args.only == "p3":
        print_p3(figures["p3"], args.cold_runs)
    elif args.only == "p2":
        for concurrency in concurrencies:
            print_p2(figures[f"p2_c{concurrency}"], args.refreshes, args.latency, concurrency)
    elif args.only:
        print(json.dumps(figures, indent=2))
    if args.only:
        return 0
    results = contract(figures)
    (ROOT / "bench-results.json").write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")
    print_report(results)
    if args.readme:
        rewrite_readme(ROOT / "README.md", results)
    return 0


if __name__ == "__main__":
    sys.exit(main())
