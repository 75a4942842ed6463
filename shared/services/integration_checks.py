"""POST /integrations/{id}/test: prove the stored credentials work, update the status, say what was checked.

- oauth2: the access token (decrypted from the row) is sent to the provider's userinfo endpoint. An expired token
  is reported as expired and not refreshed here (renewal is the refresh job's). A token the provider refuses
  makes a non-refreshable integration `reauth_required`; a refreshable one keeps its status (the refresh job
  replaces its access token).
- api_key / basic: the catalog has no verification request for static credentials, so the check reads the
  stored secret back and validates it against the provider's schema, and says plainly that the provider was not
  asked (`not_verifiable`).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING
from uuid import UUID

from shared.domain.events import REAUTH_REQUIRED, RECOVERED, UPDATED, EventSpec
from shared.domain.models import AuditEvent, CredentialType, Integration, Status
from shared.errors import BrokerError, ProviderError, SecretNotFound
from shared.services.credentials import ACCESS_TOKEN_PURPOSE
from shared.services.static_credentials import check_credentials, read_credentials

if TYPE_CHECKING:
    from shared.services.integrations import IntegrationService

log = logging.getLogger("broker.integrations")
RECOVERABLE = frozenset({Status.ERROR, Status.EXPIRED, Status.PENDING})


@dataclass(frozen=True)
class Check:
    method: str  # userinfo | access_token | stored_credentials
    result: str  # ok | refused | expired | missing | invalid | inconclusive | not_verifiable
    verified: bool
    message: str
    new_status: Status | None = None


@dataclass(frozen=True)
class CheckResult:
    integration: Integration
    check: Check


def check_integration(
    service: IntegrationService, entity_id: str, integration_id: UUID, *, actor: str | None = None
) -> CheckResult:
    """`actor`: who asked, for the audit trail (default the entity; `broker integrations test` names the operator).

    A status the check sets is written only if the row still holds the credentials it checked (fenced on
    `credential_version`): a verdict on credentials a reconnect, a refresh or a secret migration replaced meanwhile
    says nothing of the new ones, so the check runs once more on the row as it is now."""
    from shared.services.integrations import not_found

    for attempt in range(2):
        integration = service.integrations.get(integration_id, entity_id)
        if integration is None:
            raise not_found()
        if integration.credential_type == CredentialType.OAUTH2:
            check = _check_oauth(service, integration)
        else:
            check = _check_static(service, integration)
        event = AuditEvent(
            actor or f"entity:{entity_id}", "integration.test", "success" if check.verified else "failure",
            entity_id, integration.id, integration.provider, {"method": check.method, "result": check.result},
        )  # fmt: skip
        if check.new_status is None or check.new_status == integration.status:
            service.audit.record(event)
            return CheckResult(integration, check)
        updated = service.admin.update(
            integration.id, entity_id, {"status": check.new_status.value}, [event, _status_event(check)],
            when_status={integration.status.value}, when_version=integration.credential_version,
        )  # fmt: skip
        if updated is not None:
            return CheckResult(updated, check)
        current = service.get(entity_id, integration_id)  # changed meanwhile (deleted: 404, patched, reconnected)
        if current.credential_version == integration.credential_version or attempt:
            service.audit.record(event)  # only the status moved (a patch): the check happened; report the row now
            return CheckResult(current, check)
    raise AssertionError("unreachable")  # pragma: no cover


def _status_event(check: Check) -> EventSpec:
    """The event of a status the check set: reauth_required, back to active (recovered), or another (updated)."""
    reason = f"check_{check.result}"
    if check.new_status == Status.REAUTH_REQUIRED:
        return EventSpec(REAUTH_REQUIRED, reason)
    if check.new_status == Status.ACTIVE:
        return EventSpec(RECOVERED, None)
    return EventSpec(UPDATED, reason, {"fields": ["status"]})


def _check_oauth(service: IntegrationService, integration: Integration) -> Check:
    refreshable = integration.secret_ref is not None
    if integration.access_token_ciphertext is None or integration.access_token_key_version is None:
        return Check(
            "access_token", "missing", False, "no access token is stored; reconnect with POST /oauth/start",
            None if refreshable else Status.REAUTH_REQUIRED,
        )  # fmt: skip
    now = service.clock.now()
    if integration.token_expires_at is not None and integration.token_expires_at <= now:
        return Check(
            "access_token", "expired", False,
            f"the access token expired at {integration.token_expires_at.isoformat()}; "
            + ("the refresh job renews it (this check does not refresh)" if refreshable else "reconnect to renew it"),
        )  # fmt: skip
    if integration.provider not in service.catalog:
        return Check("userinfo", "inconclusive", False, "the provider is no longer in the catalog")
    try:
        provider = service.catalog.get(integration.provider).with_base_url(service.settings.base_url)
        provider = service.directory.resolve(provider)
        if provider.userinfo_url is None:
            return Check(
                "access_token", "not_verifiable", False,
                "the access token is stored and not expired; the provider has no userinfo endpoint to ask",
            )  # fmt: skip
        token = service.keyring.open(
            integration.access_token_ciphertext, key_version=integration.access_token_key_version,
            purpose=ACCESS_TOKEN_PURPOSE, record=str(integration.id),
        ).decode()  # fmt: skip
        service.token_endpoint.userinfo(provider, token)
    except ProviderError as error:
        if error.transient or error.oauth_error != "userinfo_refused":  # only a refusal says the token is bad
            return Check("userinfo", "inconclusive", False, f"the provider could not answer ({error.oauth_error})")
        if refreshable:
            message = "the provider refused the access token; the refresh job replaces it when it is due"
            return Check("userinfo", "refused", False, message)
        return Check(
            "userinfo", "refused", False, "the provider refused the access token; reconnect with POST /oauth/start",
            Status.REAUTH_REQUIRED,
        )  # fmt: skip
    except BrokerError as error:
        log.warning("credential check of %s failed: %s", integration.id, error.code)
        return Check("access_token", "inconclusive", False, f"the access token could not be read ({error.code})")
    recovered = Status.ACTIVE if integration.status in RECOVERABLE else None
    return Check("userinfo", "ok", True, "the provider accepted the access token at its userinfo endpoint", recovered)


def _check_static(service: IntegrationService, integration: Integration) -> Check:
    if integration.secret_ref is None or integration.secret_version is None:
        return Check("stored_credentials", "missing", False, "no credentials are stored", Status.ERROR)
    try:
        credentials = read_credentials(service.secrets.of(integration.secret_backend), integration)
    except SecretNotFound:
        return Check("stored_credentials", "missing", False, "the stored credentials are gone", Status.ERROR)
    provider = service.catalog.get(integration.provider) if integration.provider in service.catalog else None
    if provider is not None:
        try:
            check_credentials(provider, credentials)
        except BrokerError:
            message = "the stored credentials no longer match the provider's schema; create the integration again"
            return Check("stored_credentials", "invalid", False, message, Status.ERROR)
    return Check(
        "stored_credentials", "not_verifiable", False,
        "the credentials are stored and match the provider's schema; the catalog has no verification request for "
        "this provider, so they were not sent to it",
    )  # fmt: skip
