"""Helpers for tests of the refresh engine against oidc-provider: provider counters, row edits, reconnects."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import parse_qs, urlsplit
from uuid import UUID

import requests
from sqlalchemy import update

from shared.adapters.orm import IntegrationRow
from shared.bootstrap import Container
from shared.domain.models import Integration
from tests.support.broker_env import BASE
from tests.support.oidc_provider import OidcProvider


def refresh_grants(provider: OidcProvider) -> dict[str, Any]:
    """The provider's refresh_token grant counters: {"success": n, "errors": {code: n}}."""
    return dict(provider.stats()["token"].get("refresh_token", {"success": 0, "errors": {}}))


def current(app: Container, integration_id: UUID | str) -> Integration:
    """The row as the engine sees it now (it must exist)."""
    row = app.refresh_store.get(UUID(str(integration_id)))
    assert row is not None, f"integration {integration_id} is gone"
    return row


def set_row(app: Container, integration_id: UUID | str, **values: Any) -> None:
    with app.engine.begin() as conn:
        statement = update(IntegrationRow).where(IntegrationRow.id == UUID(str(integration_id)))
        conn.execute(statement.values(**values))


def expire(app: Container, integration_id: UUID | str) -> None:
    set_row(app, integration_id, token_expires_at=datetime.now(UTC) - timedelta(seconds=5))


def lapse_lease(app: Container, integration_id: UUID | str) -> None:
    """The lease runs out (as the database's clock sees it) while its holder is still at work."""
    set_row(app, integration_id, lease_until=datetime.now(UTC) - timedelta(seconds=1))


def pinned_refresh_token(app: Container, integration_id: UUID) -> str:
    row = current(app, integration_id)
    assert row.secret_ref is not None
    assert row.secret_version is not None
    store = app.secret_stores.of(row.secret_backend)  # the backend the row records
    return str(json.loads(store.read(row.secret_ref, row.secret_version))["refresh_token"])


def reconnect(app: Container, provider: OidcProvider, integration_id: UUID, entity: str = "entity-1") -> None:
    """Re-authorise an existing integration in place, through the real connect flow."""
    from shared.services.connect import StartRequest

    started = app.connect_flow.start(entity, StartRequest("oidc-test", integration_id=integration_id))
    with requests.Session() as browser:
        callback = provider.follow_to_callback(started.authorization_url, BASE + "/oauth/callback", browser)
    params = {k: v[0] for k, v in parse_qs(urlsplit(callback).query).items()}
    location = app.connect_flow.complete(params, {started.cookie_name: started.binding or ""})
    assert parse_qs(urlsplit(location).query).get("status") == ["connected"], location
