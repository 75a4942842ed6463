"""Public views: what the API returns about integrations and providers. Metadata only: no secret, no
ciphertext, no secret name or version."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from shared.domain.models import CredentialType, Integration
from shared.services.integration_checks import CheckResult
from shared.services.integration_removal import Removal
from shared.services.integrations import Page, ProviderInfo


def _time(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


def integration_view(integration: Integration) -> dict[str, Any]:
    return {
        "id": str(integration.id),
        "provider": integration.provider,
        "credential_type": integration.credential_type.value,
        "status": integration.status.value,
        "label": integration.label,
        "account": {
            "subject": integration.account_subject,
            "email": integration.account_email,
            "login": integration.account_login,
        },
        "scopes": list(integration.granted_scopes),
        "scopes_known": integration.scopes_known,
        # An OAuth integration can be kept alive without the user only while a refresh token is stored.
        "refreshable": integration.credential_type == CredentialType.OAUTH2 and integration.secret_ref is not None,
        "token_expires_at": _time(integration.token_expires_at),
        "refresh_token_expires_at": _time(integration.refresh_token_expires_at),
        "provider_metadata": dict(integration.provider_metadata),
        "last_refreshed_at": _time(integration.last_refreshed_at),
        "last_refresh_error": integration.last_refresh_error,
        "last_sync_at": _time(integration.last_sync_at),
        "last_used_at": _time(integration.last_used_at),
        "config": integration.config,
        "created_at": _time(integration.created_at),
        "updated_at": _time(integration.updated_at),
    }


def page_view(page: Page) -> dict[str, Any]:
    return {"integrations": [integration_view(i) for i in page.items], "next_page_token": page.next_page_token}


def check_view(result: CheckResult) -> dict[str, Any]:
    check = result.check
    return {
        "integration": integration_view(result.integration),
        "check": {"method": check.method, "result": check.result, "verified": check.verified, "message": check.message},
    }


def removal_view(removal: Removal) -> dict[str, Any]:
    return {"id": str(removal.integration_id), "deleted": True, "revocation": removal.revocation.as_dict()}


def provider_view(info: ProviderInfo) -> dict[str, Any]:
    provider = info.provider
    return {
        "id": provider.id,
        "display_name": provider.display_name,
        "auth_mode": provider.auth_mode,
        "aliases": list(provider.aliases),
        "docs": provider.docs,
        "docs_url": provider.docs,  # the field's former name, kept for existing frontends
        "icon": provider.icon,
        "scopes": list(provider.scopes),
        "credentials_schema": dict(provider.credentials_schema) if provider.credentials_schema else None,
        "configured": info.configured,
    }
