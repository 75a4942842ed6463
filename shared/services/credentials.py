"""Storing a connection's credentials: master secret first, then the row; undo the secret if the row fails."""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from typing import TYPE_CHECKING

from shared.domain.envelope import Keyring
from shared.domain.events import CONNECTED, RECONNECTED, EventSpec
from shared.domain.hooks import kept_metadata
from shared.domain.models import (
    Account,
    AuditEvent,
    CredentialType,
    Integration,
    OAuthState,
    Status,
    secret_id_for,
)
from shared.domain.ports import Clock, IntegrationRepository, Record, SecretStore, SecretStores
from shared.domain.refresh import refresh_token_lifetimes
from shared.errors import Conflict, NotFound

if TYPE_CHECKING:  # annotations only: the token hot path imports this module for its purposes
    from shared.domain.oauth import TokenSet
    from shared.providers.catalog import Provider

log = logging.getLogger("broker.credentials")
ACCESS_TOKEN_PURPOSE = "access_token"
PENDING_SECRET_PURPOSE = "pending_refresh_token"
# Versions between the old pin and the new one are destroyed by number (reads and destroys by number are strongly
# consistent; listing is not). Past this many, the gap is left to `destroy_superseded`'s listing.
DESTROY_BY_NUMBER = 16


def master_secret_payload(refresh_token: str, *, written_for: int | None = None) -> bytes:
    """A refresh token as kept in the secret store. `written_for`: the credential_version of the row the version
    was written for (the refresh engine records it, so a version can always be traced to the write it belongs to)."""
    body: dict[str, object] = {"refresh_token": refresh_token}
    if written_for is not None:
        body["credential_version"] = written_for
    return json.dumps(body).encode()


def destroy_superseded(secrets: SecretStore, secret_ref: str, keep: int, known: list[int] | None = None) -> None:
    """Destroy every enabled version below `keep` (`known`: the enabled versions, when the caller just listed
    them). Best effort: a failure leaves them for the next write to clean."""
    try:
        for version in secrets.enabled_versions(secret_ref) if known is None else known:
            if version < keep:
                secrets.destroy_version(secret_ref, version)
    except Exception:  # noqa: BLE001 - cleanup must not fail a write that has already landed
        log.warning("could not destroy superseded versions of %s; the next write retries", secret_ref)


def destroy_between(secrets: SecretStore, secret_ref: str, old: int | None, new: int) -> None:
    """Destroy versions `old` … `new - 1` by number, now that the row is pinned to `new`. Best effort."""
    if old is None or old >= new:
        return
    if new - old > DESTROY_BY_NUMBER:
        destroy_superseded(secrets, secret_ref, new)
        return
    try:
        for version in range(old, new):
            secrets.destroy_version(secret_ref, version)
    except Exception:  # noqa: BLE001 - cleanup must not fail a write that has already landed
        log.warning("could not destroy superseded versions %s-%s of %s; they stay enabled", old, new - 1, secret_ref)


def store_connection(
    *,
    record: OAuthState,
    provider: Provider,
    tokens: TokenSet,
    account: Account,
    credential_type: CredentialType,
    integrations: IntegrationRepository,
    stores: SecretStores,
    keyring: Keyring,
    clock: Clock,
    secret_prefix: str,
) -> Integration:
    """Create or update the integration for this account. Nothing is left half-written on failure."""
    existing = None
    if record.integration_id is not None:
        existing = integrations.get(record.integration_id, record.entity_id)
        if existing is None:
            raise NotFound("the integration to reconnect no longer exists", code="integration_not_found")
        if existing.account_subject and account.subject and existing.account_subject != account.subject:
            raise Conflict("a different account was authorised than the one being reconnected", code="account_mismatch")
    elif account.subject is not None:
        existing = integrations.find_account(record.entity_id, provider.id, account.subject)

    now = clock.now()
    integration = existing or Integration(
        id=record.id, entity_id=record.entity_id, provider=provider.id, credential_type=credential_type,
        status=Status.ACTIVE, created_at=now, updated_at=now,
    )  # fmt: skip
    secret_ref = secret_id_for(secret_prefix, integration.id)
    previous = integration.secret_version if integration.secret_ref == secret_ref else None  # before it changes
    # A reconnect keeps the secret in the backend that holds it (its earlier versions are destroyed there); a new
    # integration's secret goes to the configured backend.
    backend = integration.secret_backend if previous is not None else stores.default_name
    secrets = stores.of(backend)
    new_version = None
    if tokens.refresh_token:
        labels = {"entity": record.entity_id, "provider": provider.id}
        new_version = secrets.add_version(secret_ref, master_secret_payload(tokens.refresh_token), labels)
    sealed, key_version = keyring.seal(
        tokens.access_token.encode(), purpose=ACCESS_TOKEN_PURPOSE, record=str(integration.id)
    )

    integration.status = Status.ACTIVE
    integration.account_subject = account.subject or integration.account_subject
    integration.account_email = account.email or integration.account_email
    integration.account_login = account.login or integration.account_login
    # As the provider reported them; when it says nothing they are unknown (not assumed to be the requested ones).
    integration.granted_scopes, integration.scopes_known = list(tokens.scopes), bool(tokens.scopes)
    if new_version is not None:  # a new grant's refresh token (a reconnect without one keeps the old token's)
        integration.refresh_token_expires_at, integration.keep_alive_at = refresh_token_lifetimes(
            provider, now, tokens.refresh_token_expires_at, None, new_grant=True
        )
        integration.expiry_warned_for = None
    integration.provider_metadata = kept_metadata(provider, tokens)
    if new_version is not None:
        integration.secret_ref, integration.secret_version = secret_ref, new_version
        integration.secret_backend = backend  # None stays None (the configured backend): the write is fenced on it
    integration.token_expires_at = tokens.expires_at
    integration.access_token_ciphertext, integration.access_token_key_version = sealed, key_version
    integration.last_refreshed_at = now
    integration.last_refresh_error, integration.consecutive_failures, integration.next_attempt_after = None, 0, None
    integration.lease_owner = integration.lease_until = None
    # A rotated token of the old grant still waiting for the secret store is superseded by this grant.
    integration.pending_secret_ciphertext = integration.pending_secret_key_version = None
    integration.consecutive_refusals = 0
    integration.label = record.label or integration.label

    action = "oauth.reconnect" if existing else "oauth.connect"
    detail = {
        "scopes": integration.granted_scopes, "scopes_known": integration.scopes_known,
        "refreshable": integration.secret_ref is not None,
    }  # fmt: skip
    facts = {"refreshable": integration.secret_ref is not None, "scopes": list(integration.granted_scopes)}
    events: list[Record] = [
        AuditEvent(
            f"entity:{record.entity_id}", action, "success", record.entity_id, integration.id, provider.id, detail
        ),
        EventSpec(RECONNECTED if existing else CONNECTED, None, facts),
    ]
    try:
        stored = _write_row(integrations, integration, existing is not None, events)
    except BaseException:
        if new_version is not None:
            _undo_secret(secrets, secret_ref, new_version, whole_secret=existing is None or existing.secret_ref is None)
        raise
    if new_version is not None:
        destroy_between(secrets, secret_ref, previous, new_version)
    return stored


def _write_row(
    integrations: IntegrationRepository, integration: Integration, exists: bool, events: Sequence[Record]
) -> Integration:
    if exists:
        return integrations.replace_credentials(integration, events)
    integrations.add(integration, events)
    return integration


def _undo_secret(secrets: SecretStore, secret_ref: str, version: int, *, whole_secret: bool) -> None:
    try:
        if whole_secret:
            secrets.delete(secret_ref)
        else:
            secrets.destroy_version(secret_ref, version)
    except Exception:  # noqa: BLE001 - the original failure is what the caller must see
        log.error("could not remove secret %s after a failed write; `broker sweep-secrets` will", secret_ref)
