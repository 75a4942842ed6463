"""Operators' use cases on one integration (`broker integrations show|test|refresh|revoke`).

The same code paths as the API and the token endpoint, across entities, with the operator as the audit actor:
the credential check of POST /integrations/{id}/test, the Refresher of the token endpoint and the refresh job,
and the fenced removal of DELETE (revocation at the provider first).
"""

from __future__ import annotations

from dataclasses import dataclass
from uuid import UUID

from shared.domain.models import AuditEvent, CredentialType, Integration, IntegrationSearch
from shared.domain.ports import AuditLog, IntegrationFinder, IntegrationRepository
from shared.errors import Conflict, NotFound
from shared.services.integration_checks import CheckResult
from shared.services.integration_removal import Removal
from shared.services.integrations import IntegrationService
from shared.services.refresh import Refresher
from shared.services.refresh_failures import RefreshResult


@dataclass
class Operations:
    service: IntegrationService
    integrations: IntegrationRepository
    finder: IntegrationFinder
    refresher: Refresher
    audit: AuditLog

    def search(self, search: IntegrationSearch) -> list[Integration]:
        return self.finder.search(search)

    def get(self, integration_id: UUID) -> Integration:
        integration = self.integrations.get(integration_id)
        if integration is None:
            raise NotFound(f"no integration {integration_id}", code="integration_not_found")
        return integration

    def show(self, integration_id: UUID, actor: str) -> Integration:
        integration = self.get(integration_id)
        self.audit.record(_event(actor, "integration.read", "success", integration, {}))
        return integration

    def test(self, integration_id: UUID, actor: str) -> CheckResult:
        integration = self.get(integration_id)
        return self.service.check(integration.entity_id, integration.id, actor=actor)

    def refresh(self, integration_id: UUID, actor: str, *, force: bool) -> RefreshResult:
        """Refresh now when due (or `force`), exactly as the token endpoint would; the result says what happened."""
        integration = self.get(integration_id)
        if integration.credential_type != CredentialType.OAUTH2:
            raise Conflict("static credentials have nothing to refresh", code="not_refreshable")
        if integration.secret_ref is None:
            raise Conflict("the provider gave no refresh token: only a reconnect renews it", code="not_refreshable")
        result = self.refresher.refresh(integration.id, force=force)
        outcome = "success" if result.outcome in ("refreshed", "not_due") else "failure"
        detail = {"result": result.outcome, "reason": result.reason, "force": force}
        self.audit.record(_event(actor, "integration.refresh", outcome, integration, detail))
        return result

    def revoke(self, integration_id: UUID, actor: str) -> Removal:
        integration = self.get(integration_id)
        return self.service.remove(integration.entity_id, integration.id, actor=actor)


def _event(actor: str, action: str, outcome: str, integration: Integration, detail: dict[str, object]) -> AuditEvent:
    return AuditEvent(actor, action, outcome, integration.entity_id, integration.id, integration.provider, detail)
