"""`broker audit`: the audit trail, newest first (the internal GET /audit serves the same)."""

from __future__ import annotations

import argparse
import json
from typing import Any

from shared.cli.common import add_json, bounded, duration


def register(commands: Any) -> None:
    from shared.cli.integrations import integration_id

    audit = commands.add_parser("audit", help="the audit trail, newest first")
    audit.add_argument("--integration", type=integration_id, default=None, metavar="ID")
    audit.add_argument("--entity", default=None, metavar="E")
    audit.add_argument("--action", default=None, metavar="A", help="e.g. token.read, integration.delete")
    audit.add_argument("--since", type=duration, default=None, metavar="DURATION", help="e.g. 24h, 7d")
    audit.add_argument("--limit", type=bounded(1, 100_000), default=200, help="at most this many (default 200)")
    add_json(audit)
    audit.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from shared.api.internal import audit_view
    from shared.cli.common import operator_container, print_json, table
    from shared.domain.models import AuditQuery

    app = operator_container()
    since = app.clock.now() - args.since if args.since is not None else None
    query = AuditQuery(args.integration, args.entity, args.action, since, limit=args.limit)
    records = app.audit_trail.query(query)
    if args.json:
        print_json([audit_view(record) for record in records])
        return 0
    rows = [
        [
            r.occurred_at.isoformat(timespec="seconds"), r.event.actor, r.event.action, r.event.outcome,
            r.event.entity_id or "—", str(r.event.integration_id or "—"), r.event.provider or "—",
            json.dumps(r.event.detail, separators=(",", ":"), default=str) if r.event.detail else "",
        ]
        for r in records
    ]  # fmt: skip
    table(f"{len(records)} event(s), newest first", ["time", "actor", "action", "outcome", "entity",
                                                     "integration", "provider", "detail"], rows)  # fmt: skip
    return 0
