"""Maintenance: master secrets that no integration row points at (orphans), revoked and then deleted.

Secrets are written before their row, and a failed row write removes its secret at once; a process killed between
the two (or a secret store that was down too) leaves an orphan that may hold a live refresh token. The refresh job
(bounded per run) and `broker sweep-secrets` find them, revoke each one's grant at its provider through the same
code path as DELETE (the secret's `provider` label names the provider, its newest version holds the token), audit
it, and delete the secret. Only secrets older than `min_age` are considered, so a connection whose row is being
written right now is never touched; a secret with a row never is. When the provider could not answer (down, slow),
the orphan is kept for the next run.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta
from uuid import UUID

from shared.domain.models import AuditEvent
from shared.domain.ports import AuditLog, Clock, HousekeepingStore, SecretStore
from shared.domain.revocation import Tokens
from shared.errors import SecretCorrupted, SecretNotFound
from shared.services.revocation import Revocation, RevocationDeps, revoke_grant

ACTOR = "system:sweeper"


@dataclass
class SweepReport:
    orphans: list[str] = field(default_factory=list)  # found this run (at most the limit)
    deleted: list[str] = field(default_factory=list)
    kept: list[str] = field(default_factory=list)  # the provider could not revoke right now: next run
    revoked: int = 0

    def counts(self) -> dict[str, int]:
        return {"orphans": len(self.orphans), "revoked": self.revoked, "deleted": len(self.deleted),
                "kept": len(self.kept)}  # fmt: skip


def find_orphans(
    secrets: SecretStore, index: HousekeepingStore, clock: Clock, *, prefix: str, min_age: timedelta,
    window: timedelta | None = None,
) -> list[tuple[str, UUID]]:  # fmt: skip
    """(secret id, integration id) of the secrets under `prefix`, older than `min_age` (and created within `window`
    before that, when given), that no row points at."""
    named: dict[UUID, str] = {}
    before = clock.now() - min_age
    for secret_id in secrets.stale_secret_ids(prefix, before, None if window is None else before - window):
        try:
            named[UUID(secret_id.removeprefix(prefix + "-"))] = secret_id
        except ValueError:
            continue  # not named by the broker (e.g. the readiness probe): not ours to delete
    existing = index.existing_integrations(list(named))
    return sorted((secret_id, iid) for iid, secret_id in named.items() if iid not in existing)


def sweep_orphan_secrets(
    secrets: SecretStore, index: HousekeepingStore, clock: Clock, audit: AuditLog, deps: RevocationDeps, *,
    prefix: str, min_age: timedelta, dry_run: bool = False, limit: int | None = None, deadline: float | None = None,
    stopping: Callable[[], bool] = lambda: False, window: timedelta | None = None,
) -> SweepReport:  # fmt: skip
    """Revoke and delete (with `dry_run`, only list) up to `limit` orphans created within `window` (None: any time)
    before `min_age`; start none after `deadline` (monotonic) or once `stopping()` says the process is shutting
    down."""
    report = SweepReport()
    orphans = find_orphans(secrets, index, clock, prefix=prefix, min_age=min_age, window=window)
    for secret_id, integration_id in orphans[:limit]:
        if (deadline is not None and time.monotonic() >= deadline) or stopping():
            break
        report.orphans.append(secret_id)
        if dry_run:
            continue
        labels = secrets.labels(secret_id)
        revocation = _revoke(secrets, deps, secret_id, labels.get("provider"))
        report.revoked += revocation.outcome == "revoked"
        keep = revocation.outcome == "failed" and revocation.transient
        if not keep:
            secrets.delete(secret_id)
        (report.kept if keep else report.deleted).append(secret_id)
        # The labels are as stored (Secret Manager's are sanitised), so they go in the detail, not the entity id.
        detail = {"revocation": revocation.as_dict(), "labels": labels}
        action, outcome = ("secret.orphan_kept", "failure") if keep else ("secret.orphan_deleted", "success")
        audit.record(AuditEvent(ACTOR, action, outcome, None, integration_id, labels.get("provider"), detail))
    return report


def _revoke(secrets: SecretStore, deps: RevocationDeps, secret_id: str, provider: str | None) -> Revocation:
    versions = secrets.enabled_versions(secret_id)
    if not versions:
        return Revocation("not_applicable", "no_enabled_version")
    try:
        document = json.loads(secrets.read(secret_id, versions[-1]))  # the newest: a rotation adds a version
    except SecretNotFound:
        return Revocation("not_applicable", "no_enabled_version")  # destroyed since it was listed
    except (SecretCorrupted, ValueError):
        return Revocation("skipped", "unreadable_payload")
    refresh_token = document.get("refresh_token") if isinstance(document, dict) else None
    if not isinstance(refresh_token, str):
        return Revocation("not_applicable", "no_refresh_token")  # static credentials: no grant
    if provider is None:
        return Revocation("skipped", "provider_unknown")
    return revoke_grant(deps, provider, Tokens(refresh_token, None), subject=secret_id)
