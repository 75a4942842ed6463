"""Revoking a grant at its provider: the one code path of DELETE and of the orphan-secret sweeper.

The request is built by `revocation_request` (RFC 7009, or a named hook) and sent by a TokenRevoker. The outcome
says what happened without any token in it; nothing here raises.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any, Protocol

from shared.config import Settings
from shared.domain.ports import ProviderDirectory, TokenRevoker
from shared.domain.revocation import Tokens, revocation_request
from shared.errors import BrokerError, ProviderError
from shared.providers.catalog import Catalog

log = logging.getLogger("broker.revocation")


@dataclass(frozen=True)
class Revocation:
    outcome: str  # revoked | failed | skipped | not_applicable
    reason: str | None = None
    transient: bool = False  # a failure that trying again later can fix (the provider was down or slow)

    def as_dict(self) -> dict[str, Any]:
        return {"outcome": self.outcome, "reason": self.reason}


class RevocationDeps(Protocol):
    """What revoking needs (IntegrationService and Housekeeping have it)."""

    catalog: Catalog
    settings: Settings
    directory: ProviderDirectory
    revoker: TokenRevoker


def revoke_grant(deps: RevocationDeps, provider_id: str, tokens: Tokens, *, subject: str) -> Revocation:
    """Revoke the grant `tokens` belong to at `provider_id`; `subject` names it in logs (an integration id)."""
    if provider_id not in deps.catalog:
        return Revocation("skipped", "provider_not_in_catalog")
    client = deps.settings.provider_credentials(provider_id)
    if client is None:
        return Revocation("skipped", "provider_not_configured")
    try:
        provider = deps.directory.resolve(deps.catalog.get(provider_id).with_base_url(deps.settings.base_url))
        request = revocation_request(provider, client, tokens)
        if request is None:
            reason = "no_revocation_endpoint" if provider.revocation_url is None else "no_token_to_revoke"
            return Revocation("skipped", reason)
        deps.revoker.revoke(request)
    except ProviderError as error:
        log.warning("revocation failed for %s: %s", subject, error.oauth_error)
        return Revocation("failed", error.oauth_error, transient=error.transient)
    except BrokerError as error:
        log.warning("revocation failed for %s: %s", subject, error.code)
        return Revocation("failed", error.code, transient=error.http_status >= 500)
    return Revocation("revoked", request.token_type_hint)
