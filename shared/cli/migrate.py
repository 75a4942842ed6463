"""`broker migrate [up] | down REV | status`: the database schema (Alembic)."""

from __future__ import annotations

import argparse
import sys
from typing import Any


def register(commands: Any) -> None:
    parser = commands.add_parser(
        "migrate", help="database migrations: up (the default), down REV, status",
        description="Apply (`up`, the default), revert (`down REV`: to revision REV, `base` for an empty schema) or "
        "show (`status`) the database migrations of DATABASE_URL / INSTANCE_CONNECTION_NAME.",
    )  # fmt: skip
    parser.add_argument("action", nargs="?", choices=["up", "down", "status"], default="up")
    parser.add_argument("revision", nargs="?", default=None, help="with `down`: the revision to go back to")
    parser.add_argument(
        "--grant-to", action="append", default=[], metavar="DB_USER",
        help="after `up`: let this database user read and write the tables (repeat; PostgreSQL or MySQL)",
    )  # fmt: skip
    parser.add_argument(
        "--connect-timeout", type=float, default=0, metavar="SECONDS",
        help="wait up to this long for the database to answer, retrying with backoff (default 0: try once)",
    )  # fmt: skip
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from shared.adapters import schema
    from shared.adapters.db import NOT_REACHABLE_YET, wait_for_database
    from shared.cli.common import fail, operator_container

    if args.action == "down" and not args.revision:
        return fail("migrate down: name the revision to go back to (e.g. 0001, or base)")
    if args.action != "down" and args.revision:
        return fail(f"migrate {args.action}: takes no revision")
    engine = operator_container().engine
    try:
        wait_for_database(engine, args.connect_timeout)
    except NOT_REACHABLE_YET as exc:
        print(f"broker: the database did not answer within {args.connect_timeout:g} s: {type(exc).__name__}",
              file=sys.stderr)  # fmt: skip
        return 1
    try:
        if args.action == "status":
            current, head = schema.current_revision(engine), schema.head_revision()
            state = "up to date" if current == head else "behind: run `broker migrate`"
            print(f"database at revision {current or 'base (empty)'}; newest is {head} ({state})")
            return 0
        if args.action == "down":
            schema.downgrade(engine, args.revision)
        else:
            schema.upgrade(engine)
        print(f"database at revision {schema.current_revision(engine) or 'base (empty)'}")
        if args.grant_to and args.action == "up":
            from shared.ops import grant_app_privileges

            granted = grant_app_privileges(engine, args.grant_to)
            print(f"granted the application's privileges to {', '.join(granted) or 'nobody (not PostgreSQL)'}")
    finally:
        engine.dispose()
    return 0
