"""`broker`: the operators' command line, one module per command group.

migrate (schema), serve / function (local run, one deployed function), scheduler (the refresh job), integrations
(list, show, test, refresh, revoke), audit, providers (list, validate), rotate-key (data keys), sweep-secrets and
migrate-secrets (master secrets), oauth init (connect from a terminal). Every command reads the same settings as
the service and calls the same services the functions use.

argparse, not Click or Typer: `broker function` is the image's command, so this parser sits on every function's
cold start; argparse is already imported by the interpreter's own tooling, adds no dependency, and each group
imports what it needs (rich included) only when its command runs.
"""

from __future__ import annotations

import argparse
import gc
import importlib
import sys

if sys.argv[1:2] == ["function"]:  # `broker function`: no collection during start-up (shared.function_server)
    gc.disable()

from shared.errors import BrokerError, ConfigurationError

GROUPS = ("migrate", "serve", "scheduler", "integrations", "audit", "providers", "keys", "secrets", "oauth")
FUNCTION_GROUPS = ("serve",)  # `broker function` (every deployed function's start) parses with its own group only


def build_parser(groups: tuple[str, ...] = GROUPS) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="broker", description=__doc__.split("\n\n")[0])
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name in groups:
        importlib.import_module(f"shared.cli.{name}").register(commands)
    return parser


def main(argv: list[str] | None = None) -> int:
    words = sys.argv[1:] if argv is None else argv
    args = build_parser(FUNCTION_GROUPS if words[:1] == ["function"] else GROUPS).parse_args(argv)
    try:
        before = getattr(args, "before_settings", None)
        if before is not None:
            before()
        from shared.config import get_settings
        from shared.logs import configure_logging

        configure_logging(get_settings())
        return int(args.run(args))
    except ConfigurationError as exc:
        print(f"broker: {exc.message}", file=sys.stderr)
        return 2
    except BrokerError as exc:  # a refusal or an outage, said in the service's own words (never a secret)
        print(f"broker: {exc.code}: {exc.message}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("broker: interrupted", file=sys.stderr)
        return 130
    finally:
        if "shared.cli.common" in sys.modules:  # only a command that built containers has pools to close
            sys.modules["shared.cli.common"].release()


__all__ = ["build_parser", "main"]
