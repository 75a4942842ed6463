"""DELETE /integrations/{id}: fence the row, revoke at the provider, destroy the secret, remove the row.

Order and why:
1. The row is marked `revoked` with its fencing counter bumped, so an in-flight refresh cannot write afterwards
   and the refresh job no longer selects it.
2. The grant is revoked at the provider when the catalog gives a revocation endpoint (RFC 7009, or a named hook).
   Best effort: a failure is recorded in the audit log and does not block the delete.
3. Every version of the integration's secret is destroyed (SecretStore.delete). If this fails the request fails
   (503) with the row still there, marked `revoked`: a retried DELETE finishes the job.
4. The row is removed, with its audit event, in one transaction. The audit log keeps the history.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from uuid import UUID

from shared.domain.models import AuditEvent, CredentialType, Integration, Status, secret_id_for
from shared.domain.revocation import Tokens, revocation_request
from shared.errors import BrokerError, DependencyUnavailable, ProviderError
from shared.services.credentials import ACCESS_TOKEN_PURPOSE

if TYPE_CHECKING:
    from shared.services.integrations import IntegrationService

log = logging.getLogger("broker.integrations")


@dataclass(frozen=True)
class Revocation:
    outcome: str  # revoked | failed | skipped | not_applicable
    reason: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return {"outcome": self.outcome, "reason": self.reason}


@dataclass(frozen=True)
class Removal:
    integration_id: UUID
    revocation: Revocation


def remove_integration(service: IntegrationService, entity_id: str, integration_id: UUID) -> Removal:
    from shared.services.integrations import not_found

    if service.integrations.get(integration_id, entity_id) is None:
        raise not_found()
    values = {"status": Status.REVOKED.value, "lease_owner": None, "lease_until": None}
    fenced = service.admin.update(integration_id, entity_id, values, fence=True)
    if fenced is None:
        raise not_found()
    revocation = revoke_at_provider(service, fenced)
    service.audit.record(_event(entity_id, fenced, "integration.revoke", revocation))
    for secret_ref in {fenced.secret_ref, secret_id_for(service.settings.secret_prefix, fenced.id)} - {None}:
        assert secret_ref is not None
        try:
            service.secrets.delete(secret_ref)
        except Exception as exc:  # noqa: BLE001 - cloud errors can echo request data: keep only the class
            log.warning("could not delete secret %s: %s", secret_ref, type(exc).__name__)
            raise DependencyUnavailable(
                "the secret store could not delete this integration's secret; it is marked revoked, retry DELETE"
            ) from None
    deleted = _event(entity_id, fenced, "integration.delete", revocation, outcome="success")
    if not service.admin.remove(integration_id, entity_id, [deleted]):
        raise not_found()  # removed by a concurrent DELETE meanwhile
    return Removal(integration_id, revocation)


def revoke_at_provider(service: IntegrationService, integration: Integration) -> Revocation:
    """Revoke the grant; never raises (the outcome says what happened, without any token in it)."""
    if integration.credential_type != CredentialType.OAUTH2:
        return Revocation("not_applicable", "static credentials have no grant to revoke")
    if integration.provider not in service.catalog:
        return Revocation("skipped", "provider_not_in_catalog")
    client = service.settings.provider_credentials(integration.provider)
    if client is None:
        return Revocation("skipped", "provider_not_configured")
    try:
        provider = service.catalog.get(integration.provider).with_base_url(service.settings.base_url)
        provider = service.directory.resolve(provider)
        request = revocation_request(provider, client, _tokens(service, integration))
        if request is None:
            reason = "no_revocation_endpoint" if provider.revocation_url is None else "no_token_to_revoke"
            return Revocation("skipped", reason)
        service.revoker.revoke(request)
    except ProviderError as error:
        log.warning("revocation failed for %s: %s", integration.id, error.oauth_error)
        return Revocation("failed", error.oauth_error)
    except BrokerError as error:
        log.warning("revocation failed for %s: %s", integration.id, error.code)
        return Revocation("failed", error.code)
    return Revocation("revoked", request.token_type_hint)


def _tokens(service: IntegrationService, integration: Integration) -> Tokens:
    refresh = access = None
    if integration.secret_ref is not None and integration.secret_version is not None:
        try:
            payload = json.loads(service.secrets.read(integration.secret_ref, integration.secret_version))
            refresh = payload.get("refresh_token") if isinstance(payload, dict) else None
        except (BrokerError, ValueError):
            log.warning("could not read the refresh token of %s to revoke it", integration.id)
    if integration.access_token_ciphertext is not None and integration.access_token_key_version is not None:
        try:
            access = service.keyring.open(
                integration.access_token_ciphertext, key_version=integration.access_token_key_version,
                purpose=ACCESS_TOKEN_PURPOSE, record=str(integration.id),
            ).decode()  # fmt: skip
        except BrokerError:
            log.warning("could not open the access token of %s to revoke it", integration.id)
    return Tokens(refresh if isinstance(refresh, str) else None, access)


def _event(
    entity_id: str, integration: Integration, action: str, revocation: Revocation, outcome: str | None = None
) -> AuditEvent:
    outcome = outcome or {"revoked": "success", "failed": "failure"}.get(revocation.outcome, "skipped")
    detail = {"revocation": revocation.as_dict()}
    return AuditEvent(f"entity:{entity_id}", action, outcome, entity_id, integration.id, integration.provider, detail)
