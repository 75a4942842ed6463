"""What a failed refresh does to its integration: back off, or end the grant (`reauth_required`)."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

from shared.domain.events import refresh_transitions
from shared.domain.models import AuditEvent, Integration
from shared.domain.ports import REAUTH_IF_ACTIVE, RefreshStore
from shared.domain.refresh import backoff, classify_failure
from shared.errors import ProviderError
from shared.logs import fields
from shared.providers.catalog import Catalog

log = logging.getLogger("broker.refresh")

Outcome = Literal["refreshed", "busy", "not_due", "fenced", "transient", "reauth_required", "settled"]


@dataclass(frozen=True)
class RefreshResult:
    outcome: Outcome
    integration: Integration | None
    reason: str = ""
    retry_after: float | None = None


def record_failure(
    store: RefreshStore, catalog: Catalog, now: datetime, integration: Integration, owner: str, error: ProviderError
) -> RefreshResult:
    """Classify the failure (shared.domain.refresh.classify_failure) and write it, fenced; the lease is released."""
    provider = catalog.get(integration.provider) if integration.provider in catalog else None
    kind, refusals = classify_failure(
        error.oauth_error, error.transient, provider.permanent_errors if provider else (),
        integration.consecutive_refusals,
    )  # fmt: skip
    log.warning("refresh of %s failed: %s (%s)", integration.id, error.oauth_error, kind, extra=fields(
        event="refresh", provider=integration.provider, outcome="failed", failure_class=kind,
        error=error.oauth_error))  # fmt: skip
    if kind == "permanent":
        current = store.get(integration.id)
        if current is not None and current.credential_version != integration.credential_version:
            store.release(integration.id, owner)  # another worker rotated it meanwhile
            return RefreshResult("fenced", current, "rotated_elsewhere")
        values: dict[str, Any] = {
            "last_refresh_error": error.oauth_error, "next_attempt_after": None,
            "consecutive_refusals": refusals,
        }  # fmt: skip
        event = refresh_event(integration, "token.refresh", "reauth_required", {"error": error.oauth_error})
        stored = store.write(
            integration.id, integration.credential_version, owner, values, [event], now,
            bump=False, status=REAUTH_IF_ACTIVE, transitions=lambda written: refresh_transitions(integration, written),
        )  # fmt: skip
        if stored is not None:
            log.warning("%s needs reauthorisation: %s", integration.id, error.oauth_error, extra=fields(
                event="reauth_required", provider=integration.provider, error=error.oauth_error))  # fmt: skip
        return RefreshResult("reauth_required" if stored else "fenced", stored, error.oauth_error)
    failures = integration.consecutive_failures + 1
    retry_at = now + backoff(failures, error.details.get("retry_after"))
    values = {
        "consecutive_failures": failures, "consecutive_refusals": refusals, "next_attempt_after": retry_at,
        "last_refresh_error": error.oauth_error,
    }  # fmt: skip
    event = refresh_event(
        integration, "token.refresh", "failure", {"error": error.oauth_error, "failures": failures, "kind": kind}
    )
    stored = store.write(
        integration.id, integration.credential_version, owner, values, [event], now,
        bump=False, transitions=lambda written: refresh_transitions(integration, written),
    )  # fmt: skip
    return RefreshResult("transient", stored, error.oauth_error, (retry_at - now).total_seconds())


def refresh_event(integration: Integration, action: str, outcome: str, detail: dict[str, object]) -> AuditEvent:
    return AuditEvent(
        "system:refresh", action, outcome, integration.entity_id, integration.id, integration.provider, detail
    )
