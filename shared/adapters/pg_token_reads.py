"""The token hot path on PostgreSQL: read the row and record its use in one statement, one round trip.

A data-modifying CTE reads the integration; when its token can be handed out as it is (the same test as
`servable_as_is`), it inserts the `token.read` audit event and stamps `last_used_at` (at most once per `every`).
All of it is one statement, so one transaction: the audit row exists exactly when the read it records does, and a
read whose audit cannot be written fails as a whole. The statement is prepared once per connection (pg_pool).
"""

from __future__ import annotations

import dataclasses
from datetime import datetime, timedelta
from typing import Any
from uuid import UUID

from shared.adapters.pg_pool import PgConnections
from shared.domain.models import CredentialType, Integration, Status

FIELDS = tuple(f.name for f in dataclasses.fields(Integration))
COLUMNS = ", ".join(FIELDS)

# Built from the dataclass fields (constants), never from input.
READ_AND_AUDIT = f"""
WITH target AS (
    SELECT {COLUMNS} FROM entity_integrations WHERE id = CAST(:id AS uuid)
), audit AS (
    INSERT INTO audit_events (occurred_at, actor, action, outcome, entity_id, integration_id, provider, detail)
    SELECT CAST(:now AS timestamptz), CAST(:actor AS varchar), 'token.read', 'success', entity_id, id, provider,
           CAST('{{}}' AS jsonb)
    FROM target
    WHERE status = 'active' AND credential_type = 'oauth2' AND access_token_ciphertext IS NOT NULL
      AND token_expires_at > CAST(:fresh_until AS timestamptz)
    RETURNING integration_id
), used AS (
    UPDATE entity_integrations SET last_used_at = CAST(:now AS timestamptz)
    WHERE id IN (SELECT integration_id FROM audit)
      AND (last_used_at IS NULL OR last_used_at < CAST(:stale_before AS timestamptz))
    RETURNING id
)
SELECT {COLUMNS}, EXISTS (SELECT 1 FROM audit) FROM target
"""  # noqa: S608


def row_to_integration(row: Any) -> Integration:
    values = dict(zip(FIELDS, row, strict=False))
    values["status"] = Status(values["status"])
    values["credential_type"] = CredentialType(values["credential_type"])
    values["granted_scopes"] = values["granted_scopes"] or []
    values["config"] = values["config"] or {}
    values["provider_metadata"] = values["provider_metadata"] or {}
    return Integration(**values)


class PgTokenReads:
    def __init__(self, connections: PgConnections) -> None:
        self._connections = connections

    def read_for_use(
        self, integration_id: UUID, actor: str, now: datetime, fresh_until: datetime, every: timedelta
    ) -> tuple[Integration | None, bool]:
        params = {
            "id": str(integration_id), "now": now, "actor": actor[:255], "fresh_until": fresh_until,
            "stale_before": now - every,
        }  # fmt: skip
        rows = self._connections.run(READ_AND_AUDIT, params)
        if not rows:
            return None, False
        row = rows[0]
        return row_to_integration(row[: len(FIELDS)]), bool(row[len(FIELDS)])

    def close(self) -> None:
        self._connections.close()
