"""Readiness: can this instance reach what it depends on?"""

from __future__ import annotations

from typing import TYPE_CHECKING

from shared.errors import BrokerError

if TYPE_CHECKING:
    from sqlalchemy import Engine

    from shared.domain.ports import SecretStore


def readiness(engine: Engine, secret_store: SecretStore) -> dict[str, str]:
    """Each dependency's state, "ok" or the reason it is not (no secret in a reason)."""
    from sqlalchemy import text  # here: every function registers the probe, few cold starts answer it
    from sqlalchemy.exc import SQLAlchemyError

    checks: dict[str, str] = {}
    try:
        with engine.connect() as conn:
            conn.execute(text("SELECT 1 FROM entity_integrations WHERE 1 = 0"))
        checks["database"] = "ok"
    except SQLAlchemyError as exc:
        checks["database"] = f"unavailable: {type(exc).__name__} (is the database migrated? run `broker migrate`)"
    try:
        secret_store.check()
        checks["secret_store"] = "ok"
    except BrokerError as exc:
        checks["secret_store"] = exc.message
    except Exception as exc:  # noqa: BLE001 - e.g. PermissionDenied from a cloud client: report, don't crash
        checks["secret_store"] = f"unavailable: {type(exc).__name__}"
    return checks
