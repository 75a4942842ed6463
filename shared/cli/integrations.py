"""`broker integrations list|show|test|refresh|revoke`: every integration, across entities."""

from __future__ import annotations

import argparse
import uuid
from typing import TYPE_CHECKING, Any

from shared.cli.common import add_actor, add_json, bounded, duration

if TYPE_CHECKING:
    from shared.domain.models import Integration

STATUSES = ("pending", "active", "inactive", "expired", "reauth_required", "error", "revoked")


def integration_id(text: str) -> uuid.UUID:
    try:
        return uuid.UUID(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an integration id (a UUID), got {text[:64]!r}") from None


def register(commands: Any) -> None:
    group = commands.add_parser("integrations", help="list, show, test, refresh or revoke integrations")
    actions = group.add_subparsers(dest="action", required=True, metavar="ACTION")
    listing = actions.add_parser("list", help="integrations across entities, oldest first")
    listing.add_argument("--entity", default=None, help="only this entity's")
    listing.add_argument("--provider", default=None, help="only this provider's (an alias works)")
    listing.add_argument("--status", choices=STATUSES, default=None)
    listing.add_argument(
        "--expiring-within", type=duration, default=None, metavar="DURATION",
        help="only tokens expiring within this long (expired ones included): 15m, 1h, 2d",
    )  # fmt: skip
    listing.add_argument("--limit", type=bounded(1, 100_000), default=1000, help="at most this many (default 1000)")
    add_json(listing)
    listing.set_defaults(run=run_list)
    for name, help_text, handler in (
        ("show", "one integration: metadata and refresh state (never a secret)", run_show),
        ("test", "check its credentials at the provider, as POST /integrations/{id}/test does", run_test),
        ("refresh", "refresh its access token now, as the token endpoint would", run_refresh),
        ("revoke", "revoke the grant at the provider and delete the integration, as DELETE does", run_revoke),
    ):
        action = actions.add_parser(name, help=help_text)
        action.add_argument("id", type=integration_id, metavar="ID")
        if name == "refresh":
            action.add_argument("--force", action="store_true", help="refresh even if the token is not due yet")
        add_actor(action)
        add_json(action)
        action.set_defaults(run=handler)


def summary(integration: Integration) -> dict[str, Any]:
    """What `list --json` prints per integration (the contract: id, entity_id, provider, status, token_expires_at)."""
    from shared.api.views import integration_view

    view = integration_view(integration)
    return {"id": view.pop("id"), "entity_id": integration.entity_id, **view}


def detail(integration: Integration) -> dict[str, Any]:
    """`show`: the summary plus the engine's state. Names and numbers only: no ciphertext, no token."""
    from shared.cli.common import when

    i = integration
    return {
        **summary(i),
        "credential_version": i.credential_version,
        "secret": {"ref": i.secret_ref, "version": i.secret_version, "backend": i.secret_backend}
        if i.secret_ref
        else None,
        "access_token_key_version": i.access_token_key_version,
        "pending_refresh_token": i.pending_secret_ciphertext is not None,
        "consecutive_failures": i.consecutive_failures,
        "consecutive_refusals": i.consecutive_refusals,
        "next_attempt_after": when(i.next_attempt_after),
        "lease": {"owner": i.lease_owner, "until": when(i.lease_until)} if i.lease_owner else None,
    }


def run_list(args: argparse.Namespace) -> int:
    from shared.cli.common import operator_container, print_json, relative, table
    from shared.domain.models import IntegrationSearch

    app = operator_container()
    now = app.clock.now()
    provider = args.provider
    if provider is not None and provider in app.catalog:
        provider = app.catalog.get(provider).id
    expiring = now + args.expiring_within if args.expiring_within is not None else None
    search = IntegrationSearch(args.entity, provider, args.status, expiring, args.limit)
    found = app.operations.search(search)
    if args.json:
        print_json([summary(i) for i in found])
        return 0
    rows = [
        [
            str(i.id), i.entity_id, i.provider, i.account_email or i.account_login or i.account_subject or "—",
            i.status.value, relative(i.token_expires_at, now), relative(i.last_refreshed_at, now),
            i.last_refresh_error or "—", relative(i.last_used_at, now),
        ]
        for i in found
    ]  # fmt: skip
    columns = ["id", "entity", "provider", "account", "status", "token expiry", "last refresh", "last error",
               "last used"]  # fmt: skip
    table(f"{len(found)} integration(s)", columns, rows)
    return 0


def run_show(args: argparse.Namespace) -> int:
    from shared.cli.common import actor, operator_container, print_json

    view = detail(operator_container().operations.show(args.id, actor(args)))
    if args.json:
        print_json(view)
    else:
        _print_fields(view)
    return 0


def run_test(args: argparse.Namespace) -> int:
    from shared.cli.common import actor, operator_container, print_json

    result = operator_container().operations.test(args.id, actor(args))
    check = result.check
    if args.json:
        view = {"method": check.method, "result": check.result, "verified": check.verified, "message": check.message}
        print_json({"integration": summary(result.integration), "check": view})
    else:
        print(f"{check.result}: {check.message} (checked: {check.method}; status {result.integration.status.value})")
    return 0 if check.verified or check.result == "not_verifiable" else 1


def run_refresh(args: argparse.Namespace) -> int:
    from shared.cli.common import actor, operator_container, print_json, when

    result = operator_container().operations.refresh(args.id, actor(args), force=args.force)
    row = result.integration
    view = {
        "id": str(args.id), "outcome": result.outcome, "reason": result.reason,
        "token_expires_at": when(row.token_expires_at) if row else None, "retry_after": result.retry_after,
    }  # fmt: skip
    if args.json:
        print_json(view)
    else:
        expiry = f"; token expires {view['token_expires_at']}" if view["token_expires_at"] else ""
        print(f"{result.outcome} ({result.reason}){expiry}")
    return 0 if result.outcome in ("refreshed", "not_due") else 1


def run_revoke(args: argparse.Namespace) -> int:
    from shared.cli.common import actor, operator_container, print_json

    removal = operator_container().operations.revoke(args.id, actor(args))
    revocation = removal.revocation.as_dict()
    if args.json:
        print_json({"id": str(removal.integration_id), "deleted": True, "revocation": revocation})
    else:
        reason = f" ({revocation['reason']})" if revocation["reason"] else ""
        print(f"deleted {removal.integration_id}; revocation at the provider: {revocation['outcome']}{reason}")
    return 0


def _print_fields(view: dict[str, Any], indent: str = "") -> None:
    for key, value in view.items():
        if isinstance(value, dict):
            print(f"{indent}{key}:")
            _print_fields(value, indent + "  ")
        else:
            shown = ", ".join(map(str, value)) if isinstance(value, list) else ("—" if value is None else value)
            print(f"{indent}{key + ':':<26}{shown}")
