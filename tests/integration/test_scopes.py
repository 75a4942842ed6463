"""Granted scopes against oidc-provider (which echoes the granted `scope` in its token responses): stored as
reported, required by a token fetch (`insufficient_scope`), widened by an incremental re-consent in place."""

from __future__ import annotations

from urllib.parse import parse_qs, urlsplit
from uuid import UUID

import pytest
import requests
from sqlalchemy import func, select

from shared.adapters.orm import AuditEventRow
from shared.errors import Conflict
from shared.services.connect import StartRequest
from tests.support.broker_env import BASE, connect
from tests.support.engine import current


def _consent(app, provider, request: StartRequest) -> tuple[str, list[str]]:
    """Run the flow for `request`; (the integration id, the scopes the authorization URL asked for)."""
    started = app.connect_flow.start("entity-1", request)
    asked = parse_qs(urlsplit(started.authorization_url).query)["scope"][0].split(" ")
    with requests.Session() as browser:
        callback = provider.follow_to_callback(started.authorization_url, BASE + "/oauth/callback", browser)
    params = {k: v[0] for k, v in parse_qs(urlsplit(callback).query).items()}
    location = app.connect_flow.complete(params, {started.cookie_name: started.binding or ""})
    query = parse_qs(urlsplit(location).query)
    assert query.get("status") == ["connected"], location
    return query["integration_id"][0], asked


def _reads(app, integration_id: UUID, outcome: str) -> int:
    with app.engine.connect() as conn:
        return int(conn.execute(
            select(func.count()).select_from(AuditEventRow).where(
                AuditEventRow.integration_id == integration_id, AuditEventRow.action == "token.read",
                AuditEventRow.outcome == outcome,
            )
        ).scalar_one())  # fmt: skip


def test_granted_scopes_are_stored_as_the_provider_reported_them(app, provider):
    integration_id = UUID(connect(app, provider))
    row = current(app, integration_id)
    assert row.scopes_known
    assert {"openid", "email"} <= set(row.granted_scopes)


def test_a_fetch_requiring_a_scope_the_grant_lacks_is_409_insufficient_scope(app, provider):
    integration_id = UUID(connect(app, provider))
    token = app.token_service.fetch(integration_id, "test", scopes=("openid", "email"))
    assert token["access_token"]
    successes = _reads(app, integration_id, "success")
    with pytest.raises(Conflict) as refused:
        app.token_service.fetch(integration_id, "test", scopes=("email", "api:write"))
    assert refused.value.code == "insufficient_scope"
    assert refused.value.details["public"] == {"missing_scopes": ["api:write"], "scopes_known": True}
    assert "api:write" in refused.value.message
    assert _reads(app, integration_id, "success") == successes, "a refused read is not audited as served"


def test_extra_scopes_on_an_existing_integration_are_an_incremental_re_consent(app, provider):
    integration_id, _ = _consent(app, provider, StartRequest("oidc-test", scopes=["api:read"]))
    assert "api:read" in current(app, UUID(integration_id)).granted_scopes
    again, asked = _consent(
        app, provider, StartRequest("oidc-test", scopes=["api:write"], integration_id=UUID(integration_id))
    )
    assert again == integration_id, "re-consent updates the integration in place"
    assert {"openid", "email", "api:read", "api:write"} <= set(asked), "what was granted is asked for again"
    granted = set(current(app, UUID(integration_id)).granted_scopes)
    assert {"api:read", "api:write"} <= granted
    assert app.token_service.fetch(UUID(integration_id), "test", scopes=("api:read", "api:write"))["access_token"]
