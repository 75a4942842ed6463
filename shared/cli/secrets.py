"""`broker sweep-secrets` (orphan master secrets) and `broker migrate-secrets --to …` (move them between backends)."""

from __future__ import annotations

import argparse
from typing import Any

from shared.cli.common import add_actor, add_json

BACKENDS = ("database", "gcp", "openbao", "aws")  # the SECRET_BACKEND names (shared.bootstrap_secrets.store_for)


def register(commands: Any) -> None:
    sweep = commands.add_parser("sweep-secrets", help="revoke and delete master secrets that no integration points at")
    sweep.add_argument(
        "--min-age-hours", type=float, default=1.0, help="only secrets created this long ago (default 1)"
    )
    sweep.add_argument("--dry-run", action="store_true", help="list them, delete nothing")
    sweep.set_defaults(run=run_sweep)
    move = commands.add_parser(
        "migrate-secrets", help="move every master secret from SECRET_BACKEND to another backend",
        description="Copy each integration's master secret from the backend its row names to --to, read it back by "
        "version, switch the row (fenced), then delete the source copy, while the service runs. Resumable: run it "
        "again after an interruption (README: 'Moving secrets between backends').",
    )  # fmt: skip
    move.add_argument("--to", required=True, choices=list(BACKENDS), help="the target backend")
    move.add_argument("--dry-run", action="store_true", help="count what would move; change nothing")
    move.add_argument(
        "--pause", type=float, default=0.0, metavar="SECONDS", help="sleep between integrations (Secret Manager quota)"
    )
    add_actor(move)
    add_json(move)
    move.set_defaults(run=run_migrate)


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


def run_migrate(args: argparse.Namespace) -> int:
    from shared.adapters.sql_secret_migration import SqlSecretMigration
    from shared.cli.common import actor, fail, operator_container, print_json, progress
    from shared.errors import ConfigurationError
    from shared.services.secret_migration import SecretMigration

    app = operator_container()
    settings = app.settings
    try:
        app.store_for(args.to)
    except ConfigurationError as exc:
        return fail(f"--to {args.to}: {exc.message}")
    rows = SqlSecretMigration(app.engine)
    migration = SecretMigration(
        rows=rows, leases=app.refresh_store, stores=app.secret_stores, target_name=args.to, keyring=app.keyring,
        clock=app.clock, actor=actor(args),
    )  # fmt: skip
    verb = "checking" if args.dry_run else "moving"
    with progress(f"{verb} master secrets -> {args.to}", rows.count()) as advance:
        report = migration.run(dry_run=args.dry_run, advance=advance, pause=args.pause)
    if args.json:
        print_json({"to": args.to, "dry_run": args.dry_run, **report.as_dict()})
    else:
        print(f"{'would move' if args.dry_run else 'moved'} {report.moved} secret(s) to {args.to}"
              + (f", {report.cleaned} switched earlier (source copy deleted)" if report.cleaned else ""))  # fmt: skip
        for label, ids in (("no readable payload (reconnect them)", report.missing),
                           ("busy or changed meanwhile (run again)", report.busy),
                           ("failed (see the log; run again)", report.failed)):  # fmt: skip
            if ids:
                print(f"{len(ids)} {label}:" + _names(ids))
    unfinished = report.busy or report.failed
    if not args.dry_run and not unfinished and not args.json and settings.secret_backend != args.to:
        print(f"done: every secret is in {args.to}; set SECRET_BACKEND={args.to} for new ones, then run this "
              "again to move those connected meanwhile")  # fmt: skip
    return 1 if unfinished else 0
