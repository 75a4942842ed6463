"""Maintenance: remove master secrets that no integration row points at (`broker sweep-secrets`).

Secrets are written before their row, and a failed write removes its secret at once; this sweeper catches what
that could not remove (the secret store was down too). Only secrets older than `min_age` are considered, so a
connection whose row is being written right now is never touched.
"""

from __future__ import annotations

from datetime import timedelta
from uuid import UUID

from shared.domain.ports import Clock, IntegrationRepository, SecretStore


def sweep_orphan_secrets(
    secrets: SecretStore, integrations: IntegrationRepository, clock: Clock, *, prefix: str, min_age: timedelta,
    dry_run: bool = False,
) -> list[str]:  # fmt: skip
    """Delete (or, with `dry_run`, only list) the secrets under `prefix` whose integration row does not exist."""
    orphans = []
    for secret_id in secrets.stale_secret_ids(prefix, clock.now() - min_age):
        try:
            integration_id = UUID(secret_id.removeprefix(prefix + "-"))
        except ValueError:
            continue  # not named by the broker (e.g. the readiness probe): not ours to delete
        if integrations.get(integration_id) is None:
            orphans.append(secret_id)
            if not dry_run:
                secrets.delete(secret_id)
    return orphans
