"""DELETE /integrations/{id}: fence the row, revoke at the provider, destroy the secret, remove the row.

Order and why:
1. The row is marked `revoked` with its fencing counter bumped, so an in-flight refresh cannot write afterwards
   and the refresh job no longer selects it.
2. The grant is revoked at the provider when the catalog gives a revocation endpoint (RFC 7009, or a named hook).
   Best effort: a failure is recorded in the audit log and does not block the delete. When the secret store cannot
   be read (an outage), the access token from the row is revoked instead, the attempt is audited, and the request
   fails (503) before anything is destroyed: the refresh token must outlive the store's outage, or its grant could
   never be revoked. A retried DELETE revokes it.
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

from shared.domain.events import DELETED, EventSpec
from shared.domain.models import AuditEvent, CredentialType, Integration, Status, secret_id_for
from shared.domain.revocation import Tokens
from shared.errors import BrokerError, SecretStoreUnavailable
from shared.services.credentials import ACCESS_TOKEN_PURPOSE, PENDING_SECRET_PURPOSE
from shared.services.revocation import Revocation, revoke_grant

if TYPE_CHECKING:
    from shared.services.integrations import IntegrationService

log = logging.getLogger("broker.integrations")


@dataclass(frozen=True)
class Removal:
    integration_id: UUID
    revocation: Revocation


def remove_integration(
    service: IntegrationService, entity_id: str, integration_id: UUID, *, actor: str | None = None
) -> Removal:
    """`actor`: who asked, for the audit trail (default the entity; `broker integrations revoke` names the operator)."""
    from shared.services.integrations import not_found

    if service.integrations.get(integration_id, entity_id) is None:
        raise not_found()
    values = {"status": Status.REVOKED.value, "lease_owner": None, "lease_until": None}
    fenced = service.admin.update(integration_id, entity_id, values, fence=True)
    if fenced is None:
        raise not_found()
    tokens, store_down = _tokens(service, fenced)
    revocation = revoke_at_provider(service, fenced, tokens)
    extra = {"refresh_token": "unreadable"} if store_down else {}
    service.audit.record(_event(entity_id, fenced, "integration.revoke", revocation, detail=extra, actor=actor))
    if store_down:
        raise SecretStoreUnavailable(
            "the secret store could not be read to revoke this integration's grant; it is marked revoked, retry DELETE"
        )
    for secret_ref in {fenced.secret_ref, secret_id_for(service.settings.secret_prefix, fenced.id)} - {None}:
        assert secret_ref is not None
        try:
            service.secrets.of(fenced.secret_backend).delete(secret_ref)
        except Exception as exc:  # noqa: BLE001 - whatever failed, the row stays revoked for a retried DELETE
            log.warning("could not delete secret %s: %s", secret_ref, type(exc).__name__)
            raise SecretStoreUnavailable(
                "the secret store could not delete this integration's secret; it is marked revoked, retry DELETE"
            ) from None
    deleted = _event(entity_id, fenced, "integration.delete", revocation, outcome="success", actor=actor)
    gone = EventSpec(DELETED, None, {"revocation": revocation.outcome})
    if not service.admin.remove(integration_id, entity_id, [deleted, gone]):
        raise not_found()  # removed by a concurrent DELETE meanwhile
    return Removal(integration_id, revocation)


def revoke_at_provider(service: IntegrationService, integration: Integration, tokens: Tokens) -> Revocation:
    """Revoke the grant; never raises (the outcome says what happened, without any token in it)."""
    if integration.credential_type != CredentialType.OAUTH2:
        return Revocation("not_applicable", "static credentials have no grant to revoke")
    return revoke_grant(service, integration.provider, tokens, subject=str(integration.id))


def _tokens(service: IntegrationService, integration: Integration) -> tuple[Tokens, bool]:
    """The tokens to revoke with, and whether the secret store was unavailable (the refresh token unread)."""
    refresh = access = None
    store_down = False
    if integration.credential_type != CredentialType.OAUTH2:
        return Tokens(None, None), False  # static credentials: no grant, nothing to read
    if integration.pending_secret_ciphertext is not None and integration.pending_secret_key_version is not None:
        try:  # a rotated token the secret store has not taken yet: the live one, in the row
            refresh = service.keyring.open(
                integration.pending_secret_ciphertext, key_version=integration.pending_secret_key_version,
                purpose=PENDING_SECRET_PURPOSE, record=str(integration.id),
            ).decode()  # fmt: skip
        except BrokerError:
            log.warning("could not open the pending refresh token of %s to revoke it", integration.id)
    if refresh is None and integration.secret_ref is not None and integration.secret_version is not None:
        try:
            store = service.secrets.of(integration.secret_backend)
            payload = json.loads(store.read(integration.secret_ref, integration.secret_version))
            refresh = payload.get("refresh_token") if isinstance(payload, dict) else None
        except SecretStoreUnavailable:
            store_down = True
            log.warning("the secret store is unavailable: revoking %s with its access token only", integration.id)
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
    return Tokens(refresh if isinstance(refresh, str) else None, access), store_down


def _event(
    entity_id: str, integration: Integration, action: str, revocation: Revocation, outcome: str | None = None,
    detail: dict[str, Any] | None = None, actor: str | None = None,
) -> AuditEvent:  # fmt: skip
    outcome = outcome or {"revoked": "success", "failed": "failure"}.get(revocation.outcome, "skipped")
    detail = {"revocation": revocation.as_dict(), **(detail or {})}
    return AuditEvent(
        actor or f"entity:{entity_id}", action, outcome, entity_id, integration.id, integration.provider, detail
    )
