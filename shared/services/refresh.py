"""Refreshing one integration: lease, recover, call the provider, write in order, classify failures.

Write order (a crash between any two steps is recovered by the next attempt):
provider answers → new master-secret version (only when the refresh token changed) → the row (ciphertext, expiry,
pinned version, fencing counter) in one transaction → superseded versions destroyed. The next attempt reads the
newest enabled version at or above the pinned one, so a version written by a worker that died before its row
update is used rather than lost.
"""

from __future__ import annotations

import json
import logging
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, Literal

from tenacity import retry, stop_after_attempt, wait_exponential

from shared.config import Settings
from shared.domain import oauth
from shared.domain.envelope import Keyring
from shared.domain.models import AuditEvent, Integration, Status
from shared.domain.ports import Clock, ProviderDirectory, RefreshStore, SecretStore, TokenEndpoint
from shared.domain.refresh import backoff, is_permanent, should_refresh
from shared.errors import BrokerError, ProviderError
from shared.providers.catalog import Catalog
from shared.services.credentials import ACCESS_TOKEN_PURPOSE, destroy_superseded, master_secret_payload

log = logging.getLogger("broker.refresh")

Outcome = Literal["refreshed", "busy", "not_due", "fenced", "transient", "reauth_required"]
Step = Callable[[str], None]


@dataclass(frozen=True)
class RefreshResult:
    outcome: Outcome
    integration: Integration | None
    reason: str = ""
    retry_after: float | None = None


def _no_fault(_step: str) -> None:
    return None


@dataclass
class Refresher:
    settings: Settings
    catalog: Catalog
    store: RefreshStore
    secrets: SecretStore
    keyring: Keyring
    clock: Clock
    token_endpoint: TokenEndpoint
    directory: ProviderDirectory
    lease: timedelta = timedelta(seconds=60)
    step: Step = _no_fault  # a seam: tests fail or kill the process after a named step

    def new_owner(self, kind: str) -> str:
        return f"{kind}-{uuid.uuid4().hex[:12]}"

    def refresh(self, integration_id: uuid.UUID, *, force: bool = False, min_ttl: int = 0) -> RefreshResult:
        owner = self.new_owner("fetch")
        claimed = self.store.claim(integration_id, owner, self.lease, self.clock.now())
        if claimed is None:
            return RefreshResult("busy", None, "leased_elsewhere")
        provider = self.catalog.get(claimed.provider)
        due, reason = should_refresh(claimed, provider, self.clock.now(), min_ttl=min_ttl, force=force)
        if not due:  # another worker refreshed it while we waited for the lease
            self.store.release(integration_id, owner)
            return RefreshResult("not_due", claimed, reason)
        return self.refresh_claimed(claimed, owner, reason)

    def refresh_claimed(self, integration: Integration, owner: str, reason: str = "due") -> RefreshResult:
        assert integration.secret_ref is not None
        assert integration.secret_version is not None
        try:
            provider = self.directory.resolve(
                self.catalog.get(integration.provider).with_base_url(self.settings.base_url)
            )
            client = self.settings.provider_credentials(provider.id)
            if client is None:
                raise ProviderError("provider not configured", oauth_error="provider_not_configured", transient=True)
            enabled = self.secrets.enabled_versions(integration.secret_ref)
            used = max([v for v in enabled if v >= integration.secret_version], default=integration.secret_version)
            refresh_token = json.loads(self.secrets.read(integration.secret_ref, used))["refresh_token"]
            if not self._lease_outlasts_the_call(integration):
                # Another worker may claim it before the provider answers: two calls with one rotating token
                # would make the provider revoke the grant. Give the lease back and let the next run do it.
                self.store.release(integration.id, owner)
                return RefreshResult("busy", None, "lease_too_short")
            request = oauth.token_request(provider, client, oauth.refresh_grant(refresh_token))
            tokens = self.token_endpoint.exchange(request, provider, self.clock.now())
        except ProviderError as error:
            return self._failed(integration, owner, error)
        except BrokerError as error:  # the secret store or the data key: not the provider's fault, retry later
            failure = ProviderError(error.message, oauth_error=error.code, transient=True)
            return self._failed(integration, owner, failure)
        except Exception as exc:  # noqa: BLE001 - e.g. an unreadable secret: back off like any failure, never loop
            log.error("refresh of %s failed unexpectedly: %s", integration.id, type(exc).__name__)
            failure = ProviderError(
                "unexpected failure", oauth_error=f"internal:{type(exc).__name__}"[:64], transient=True
            )
            return self._failed(integration, owner, failure)
        self.step("after_provider")
        version = used
        if tokens.refresh_token and tokens.refresh_token != refresh_token:
            labels = {"entity": integration.entity_id, "provider": integration.provider}
            try:
                version = self._add_version(integration.secret_ref, master_secret_payload(tokens.refresh_token), labels)
            except Exception as exc:  # noqa: BLE001 - the store is down or refuses: say so, keep the job going
                log.error(
                    "refresh of %s: the rotated token could not be stored (%s)", integration.id, type(exc).__name__
                )
                failure = ProviderError("secret store failed", oauth_error="secret_store_failed", transient=True)
                return self._failed(integration, owner, failure)
        self.step("after_secret_write")
        return self._store(integration, owner, tokens, version, reason, enabled)

    def _lease_outlasts_the_call(self, integration: Integration) -> bool:
        if integration.lease_until is None:
            return False
        margin = timedelta(seconds=self.settings.provider_timeout + 5)
        return integration.lease_until - self.clock.now() > margin

    @retry(stop=stop_after_attempt(3), wait=wait_exponential(multiplier=0.2, max=2), reraise=True)
    def _add_version(self, secret_ref: str, payload: bytes, labels: dict[str, str]) -> int:
        # The provider already rotated the token: losing this write would lose the integration, so retry.
        return self.secrets.add_version(secret_ref, payload, labels)

    def _store(
        self,
        integration: Integration,
        owner: str,
        tokens: oauth.TokenSet,
        version: int,
        reason: str,
        enabled: list[int],
    ) -> RefreshResult:
        now = self.clock.now()
        sealed, key_version = self.keyring.seal(
            tokens.access_token.encode(), purpose=ACCESS_TOKEN_PURPOSE, record=str(integration.id)
        )
        values: dict[str, Any] = {
            "access_token_ciphertext": sealed, "access_token_key_version": key_version,
            "token_expires_at": tokens.expires_at, "secret_version": version, "last_refreshed_at": now,
            "last_refresh_error": None, "consecutive_failures": 0, "next_attempt_after": None,
            "status": Status.ACTIVE.value,
        }  # fmt: skip
        if tokens.scopes:
            values["granted_scopes"] = tokens.scopes
        event = _event(
            integration,
            "token.refresh",
            "success",
            {"reason": reason, "rotated": version != integration.secret_version},
        )
        stored = self.store.write(
            integration.id, integration.credential_version, owner, values, [event], now, bump=True
        )
        if stored is None:
            # Fenced out: a newer write landed, and a version we added stays for the next attempt to find or clean.
            # If the row is gone (deleted meanwhile), nothing will: remove the secret here.
            if self.store.get(integration.id) is None and integration.secret_ref is not None:
                self.secrets.delete(integration.secret_ref)
            return RefreshResult("fenced", None, "newer_credentials")
        self.step("after_row_update")
        assert integration.secret_ref is not None
        destroy_superseded(self.secrets, integration.secret_ref, version, known=enabled)
        return RefreshResult("refreshed", stored, reason)

    def _failed(self, integration: Integration, owner: str, error: ProviderError) -> RefreshResult:
        now = self.clock.now()
        log.warning("refresh of %s failed: %s (transient=%s)", integration.id, error.oauth_error, error.transient)
        if is_permanent(error.oauth_error):
            current = self.store.get(integration.id)
            if current is not None and current.credential_version != integration.credential_version:
                self.store.release(integration.id, owner)  # another worker rotated it meanwhile: not a failure
                return RefreshResult("fenced", current, "rotated_elsewhere")
            permanent: dict[str, Any] = {
                "status": Status.REAUTH_REQUIRED.value,
                "last_refresh_error": error.oauth_error,
                "next_attempt_after": None,
            }
            event = _event(integration, "token.refresh", "reauth_required", {"error": error.oauth_error})
            stored = self.store.write(
                integration.id, integration.credential_version, owner, permanent, [event], now, bump=False
            )
            return RefreshResult("reauth_required" if stored else "fenced", stored, error.oauth_error)
        failures = integration.consecutive_failures + 1
        retry_at = now + backoff(failures, error.details.get("retry_after"))
        values = {
            "consecutive_failures": failures,
            "next_attempt_after": retry_at,
            "last_refresh_error": error.oauth_error,
        }
        event = _event(integration, "token.refresh", "failure", {"error": error.oauth_error, "failures": failures})
        stored = self.store.write(
            integration.id, integration.credential_version, owner, values, [event], now, bump=False
        )
        return RefreshResult("transient", stored, error.oauth_error, (retry_at - now).total_seconds())


def _event(integration: Integration, action: str, outcome: str, detail: dict[str, object]) -> AuditEvent:
    return AuditEvent(
        "system:refresh", action, outcome, integration.entity_id, integration.id, integration.provider, detail
    )
