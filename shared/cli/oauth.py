"""`broker oauth init PROVIDER --entity E`: connect an account from a terminal.

It mints a connect session for the entity (the service POST /connect/sessions uses), starts the flow with it (the
session authenticates the flow's start and status, so no browser-binding cookie is needed), prints the authorization
URL, opens a browser where there is one, and waits on the flow's status (the service GET /connect/flows/{id} uses).
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from typing import Any

from shared.cli.common import actor, add_actor, add_json, duration, print_json

POLL_WAIT = 5.0  # seconds each status read may wait


def register(commands: Any) -> None:
    group = commands.add_parser("oauth", help="connect an account from a terminal")
    actions = group.add_subparsers(dest="action", required=True, metavar="ACTION")
    init = actions.add_parser("init", help="start a connect flow for an entity, print its URL and wait for the result")
    init.add_argument("provider", metavar="PROVIDER", help="a catalog provider id or alias")
    init.add_argument("--entity", required=True, help="the entity the integration belongs to")
    init.add_argument("--scopes", nargs="+", default=[], metavar="SCOPE", help="scopes added to the catalog's")
    init.add_argument("--label", default=None, help="a label for the integration")
    init.add_argument("--no-browser", action="store_true", help="only print the URL (default: open it where possible)")
    init.add_argument(
        "--timeout", type=duration, default=None, metavar="DURATION",
        help="stop waiting after this long (default: until the flow expires, OAUTH_STATE_TTL)",
    )  # fmt: skip
    add_actor(init)
    add_json(init)
    init.set_defaults(run=run_init)


def has_display() -> bool:
    """Where `webbrowser` can show something: macOS and Windows always; elsewhere an X or Wayland display."""
    if sys.platform in ("darwin", "win32"):
        return True
    return bool(os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY"))


def open_browser(url: str) -> bool:
    import webbrowser  # here: `broker function` (every cold start) parses its arguments through this package

    return webbrowser.open(url)


def run_init(args: argparse.Namespace) -> int:
    from shared.cli.common import operator_container
    from shared.services.connect import StartRequest
    from shared.services.connect_sessions import SessionRequest

    app = operator_container()
    settings = app.settings
    app.connect_flow.oauth_provider(args.provider)  # an unknown or unconfigured provider mints no session
    own_origin = settings.base_url.rstrip("/")  # the result page is the broker's own: no product page is involved
    minted = app.connect_sessions.create(actor(args), SessionRequest(args.entity, own_origin, label=args.label))
    session = app.connect_sessions.authenticate(minted.token)
    request = StartRequest(args.provider, list(args.scopes), label=args.label, mode="popup")
    started = app.connect_flow.start(session.entity_id, request, session)
    assert started.flow_id is not None
    out = sys.stderr if args.json else sys.stdout
    print(f"Open this URL to connect {args.provider} for {args.entity}:\n\n  {started.authorization_url}\n", file=out)
    if not args.no_browser and has_display() and open_browser(started.authorization_url):
        print("(opened in your browser)", file=out)
    print("Waiting for the provider... (Ctrl-C to stop)", file=out, flush=True)
    timeout = args.timeout.total_seconds() if args.timeout else float(settings.oauth_state_ttl) + POLL_WAIT
    deadline = time.monotonic() + timeout
    status: dict[str, Any] = {"status": "pending"}
    while status["status"] == "pending" and time.monotonic() < deadline:
        wait = min(POLL_WAIT, max(0.0, deadline - time.monotonic()))
        status = app.connect_sessions.flow_status(session.entity_id, started.flow_id, wait)
    return report(args, str(started.flow_id), status)


def report(args: argparse.Namespace, flow_id: str, status: dict[str, Any]) -> int:
    outcome = {"flow_id": flow_id, **status}
    if status["status"] == "pending":
        outcome["error"] = "timed_out"
    if args.json:
        print_json(outcome)
    elif status["status"] == "connected":
        print(f"connected: integration {status['integration_id']}")
    elif status["status"] == "pending":
        print("broker: timed out waiting for the flow to finish (it is still pending)", file=sys.stderr)
    else:
        print(f"broker: not connected: {status.get('error', status['status'])}", file=sys.stderr)
    return 0 if status["status"] == "connected" else 1
