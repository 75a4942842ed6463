"""`broker providers list` (the catalog as this deployment sees it) and `broker providers validate [FILE]`."""

from __future__ import annotations

import argparse
import os
import sys
from typing import Any

from shared.cli.common import add_json


def register(commands: Any) -> None:
    group = commands.add_parser("providers", help="the provider catalog: list it, validate a file")
    actions = group.add_subparsers(dest="action", required=True, metavar="ACTION")
    listing = actions.add_parser("list", help="every provider: configured or not, auth mode, rotation, lifetime")
    add_json(listing)
    listing.set_defaults(run=run_list)
    validate = actions.add_parser(
        "validate", help="check a PROVIDERS_FILE as the service does at start (exit 1 listing every error)"
    )
    validate.add_argument("file", nargs="?", default=None, help="default: $PROVIDERS_FILE (else the built-in one)")
    validate.set_defaults(run=run_validate)
    check = commands.add_parser(
        "check-catalog", help="validate the catalog (with PROVIDERS_FILE) and record it so cold starts skip that"
    )
    check.set_defaults(run=run_check_catalog)


def run_list(args: argparse.Namespace) -> int:
    from shared.cli.common import print_json, table
    from shared.config import load_settings
    from shared.providers.catalog import load_catalog

    settings = load_settings()
    rows: list[dict[str, Any]] = []
    for provider in load_catalog(settings.providers_file):
        configured = provider.auth_mode != "oauth2" or settings.provider_credentials(provider.id) is not None
        rows.append({
            "id": provider.id, "display_name": provider.display_name, "auth_mode": provider.auth_mode,
            "configured": configured, "refresh_token_rotates": provider.refresh_token_rotates,
            "default_token_lifetime": provider.default_token_lifetime, "refresh_margin": provider.refresh_margin,
            "pkce": provider.pkce, "aliases": list(provider.aliases),
        })  # fmt: skip
    if args.json:
        print_json(rows)
        return 0
    oauth = [r for r in rows if r["auth_mode"] == "oauth2"]
    table(
        f"{len(rows)} provider(s), {sum(r['configured'] for r in oauth)} of {len(oauth)} OAuth providers configured",
        ["id", "name", "auth mode", "configured", "rotates", "lifetime", "margin", "aliases"],
        [
            [
                r["id"], r["display_name"], r["auth_mode"], "yes" if r["configured"] else "no",
                "yes" if r["refresh_token_rotates"] else "no" if r["auth_mode"] == "oauth2" else "—",
                f"{r['default_token_lifetime']} s" if r["default_token_lifetime"] else "—",
                f"{r['refresh_margin']} s" if r["auth_mode"] == "oauth2" else "—", ", ".join(r["aliases"]) or "—",
            ]
            for r in rows
        ],
    )  # fmt: skip
    return 0


def run_validate(args: argparse.Namespace) -> int:
    """The checks `shared.bootstrap.validate` runs when a function loads: the catalog's schema, then how the
    catalog and the environment fit (client credential pairs, aliases, production egress)."""
    from shared import startup
    from shared.config import load_settings
    from shared.errors import CatalogError
    from shared.providers.catalog import load_catalog

    settings = load_settings(**({"providers_file": args.file} if args.file else {}))
    name = settings.providers_file or "the built-in catalog"
    try:
        catalog = load_catalog(settings.providers_file)
    except CatalogError as exc:
        errors = exc.details.get("errors")
        lines = [f"{e['file']}: {e['path']}: {e['message']}" for e in errors] if errors else exc.message.splitlines()
        return _invalid(name, lines)
    found = startup.problems(settings, catalog, os.environ, client_secrets=True, token_callers=False)
    if found:
        return _invalid(name, found)
    print(f"{name}: valid ({len(catalog)} providers with the built-in catalog)")
    return 0


def _invalid(name: str, problems: list[str]) -> int:
    print(f"{name}: {len(problems)} problem(s)", file=sys.stderr)
    for problem in problems:
        print(f"  {problem}", file=sys.stderr)
    return 1


def run_check_catalog(_args: argparse.Namespace) -> int:
    """The image build's step: the functions then read the recorded catalog without re-validating it."""
    from shared.config import get_settings
    from shared.providers.catalog import record_validated

    catalog, sources = record_validated(get_settings().providers_file)
    print(f"catalog valid: {len(catalog)} providers; recorded as validated ({sources.digest[:12]}), so the functions")
    print("read it without re-validating at cold start (run it where the image is built, with its PROVIDERS_FILE)")
    return 0
