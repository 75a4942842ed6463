"""`broker sweep-secrets` (orphan master secrets) and `broker migrate-secrets --to …` (move them between backends)."""

from __future__ import annotations

import argparse
from typing import Any


def register(commands: Any) -> None:
    sweep = commands.add_parser("sweep-secrets", help="revoke and delete master secrets that no integration points at")
    sweep.add_argument(
        "--min-age-hours", type=float, default=1.0, help="only secrets created this long ago (default 1)"
    )
    sweep.add_argument("--dry-run", action="store_true", help="list them, delete nothing")
    sweep.set_defaults(run=run_sweep)


def run_sweep(args: argparse.Namespace) -> int:
    from datetime import timedelta

    from shared.cli.common import operator_container

    app = operator_container()
    report = app.housekeeping.sweep(limit=None, min_age=timedelta(hours=args.min_age_hours), dry_run=args.dry_run)
    if args.dry_run:
        print(f"would revoke and delete {len(report.orphans)} orphan secret(s)" + _names(report.orphans))
        return 0
    print(f"deleted {len(report.deleted)} orphan secret(s), {report.revoked} grant(s) revoked" + _names(report.deleted))
    if report.kept:
        print(f"kept {len(report.kept)}: the provider could not revoke now (run again later)" + _names(report.kept))
    return 0


def _names(names: list[str]) -> str:
    return "".join(f"\n  {name}" for name in names)
