"""token_fetch's two routes, both for internal callers only: GET /token/{id} and GET /audit.

A token read the broker refuses (401, 403, 409) is audited with the reason, as a served one is; a failure to write
that event never changes the answer.
"""

from __future__ import annotations

import logging
from typing import Any
from uuid import UUID

import flask

from shared.bootstrap import Container
from shared.domain.models import AuditEvent, AuditQuery, AuditRecord
from shared.errors import BrokerError, Conflict, Forbidden, Unauthenticated
from shared.schemas_internal import TOKEN_PATH, audit_query, token_options, token_scopes, token_target

log = logging.getLogger("broker.tokens")
AUDIT_PATH = "/audit"
REFUSALS = (Unauthenticated, Forbidden, Conflict)


def fetch_token(request: flask.Request, app: Container) -> dict[str, Any]:
    caller = "anonymous"
    try:
        caller = app.internal_callers.caller(request)
        min_ttl, force = token_options(request)
        scopes = token_scopes(request)
        return app.token_service.fetch(token_target(request), caller, min_ttl=min_ttl, force=force, scopes=scopes)
    except REFUSALS as refused:
        _audit_refusal(app, request, caller, refused)
        raise


def _audit_refusal(app: Container, request: flask.Request, caller: str, refused: BrokerError) -> None:
    integration_id = _path_id(request)
    entity_id = provider = None
    try:
        if isinstance(refused, Conflict) and integration_id is not None:
            row = app.refresh_store.get(integration_id)  # only on a refusal: the hot path reads nothing more
            if row is not None:
                entity_id, provider = row.entity_id, row.provider
        detail = {"reason": refused.code, "status": refused.http_status}
        app.audit.record(AuditEvent(caller, "token.read", "refused", entity_id, integration_id, provider, detail))
    except Exception as exc:  # noqa: BLE001 - the caller gets the refusal whatever the audit log does
        log.error("could not audit a refused token read: %s", type(exc).__name__)


def _path_id(request: flask.Request) -> UUID | None:
    match = TOKEN_PATH.fullmatch(request.path)
    try:
        return UUID(match.group(1)) if match else None
    except ValueError:
        return None


def audit_view(record: AuditRecord) -> dict[str, Any]:
    """One audit event as GET /audit and `broker audit --json` show it (the detail never holds a secret)."""
    event, at = record.event, record.occurred_at
    return {
        "id": record.id, "occurred_at": at.isoformat(), "actor": event.actor, "action": event.action,
        "outcome": event.outcome, "entity_id": event.entity_id,
        "integration_id": str(event.integration_id) if event.integration_id else None, "provider": event.provider,
        "detail": event.detail,
    }  # fmt: skip


def audit_page(request: flask.Request, app: Container) -> dict[str, Any]:
    """GET /audit: the audit trail, newest first, for the same callers as the token endpoint."""
    app.internal_callers.caller(request)
    query: AuditQuery = audit_query(request)
    records = app.audit_trail.query(query)
    more = len(records) == query.limit
    return {"events": [audit_view(r) for r in records], "next_page_token": str(records[-1].id) if more else None}
