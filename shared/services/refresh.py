"""Refreshing one integration: lease, call the provider, keep a rotated token durable, classify failures.

Write order (a crash between any two steps loses nothing that was written):
1. the provider answers;
2. one fenced transaction writes the access token, its expiry and — when the refresh token rotated — the new
   refresh token sealed into the row (`pending_secret_ciphertext`), bumping the fencing counter and renewing the
   lease. From here on the rotated token is durable whatever the secret store does;
3. the pending token is added to the secret store as a new version (labelled in its payload with the
   credential_version it was written for), and the old pinned version — dead since step 2 — is destroyed;
4. a second fenced transaction pins the row to that version and clears the pending copy;
5. versions that earlier, interrupted attempts added and never pinned are destroyed, by number.
The next attempt, or the refresh job, prefers a pending token over the pinned version and finishes steps 3-5. A
worker that loses the fence at 4 destroys the version it added at 3. Nothing here lists versions (listing is
eventually consistent on Secret Manager); reads and destroys are by number. The one window no client can close
is between 1 and 2: a process killed there loses a token only it ever saw.
"""

from __future__ import annotations

import json
import logging
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from shared.config import Settings
from shared.domain.envelope import Keyring
from shared.domain.events import refresh_transitions
from shared.domain.models import Integration
from shared.domain.ports import Clock, ProviderDirectory, RefreshStore, SecretStore, SecretStores, TokenEndpoint
from shared.domain.refresh import refresh_token_lifetimes, should_refresh
from shared.errors import BrokerError, ProviderError, SecretNotFound
from shared.logs import fields
from shared.providers.catalog import Catalog, Provider
from shared.services.credentials import (
    ACCESS_TOKEN_PURPOSE,
    PENDING_SECRET_PURPOSE,
    destroy_between,
    master_secret_payload,
)
from shared.services.refresh_failures import Outcome, RefreshResult, record_failure, refresh_event

if TYPE_CHECKING:
    from shared.domain import oauth

log = logging.getLogger("broker.refresh")

Step = Callable[[str], None]
AFTER_CALL = 5.0  # seconds the lease must still hold after the provider's timeout: step 2 must land within it


@dataclass(frozen=True)
class Lease:
    """A lease this worker holds. `deadline` is on this process's monotonic clock, taken before the claim was sent,
    so it passes no later than the database's `lease_until`."""

    owner: str
    deadline: float

    def remaining(self) -> float:
        return self.deadline - time.monotonic()


def _no_fault(_step: str) -> None:
    return None


def _never() -> bool:
    return False


@dataclass
class Refresher:
    settings: Settings
    catalog: Catalog
    store: RefreshStore
    secrets: SecretStores  # each row's store by its backend
    keyring: Keyring
    clock: Clock
    token_endpoint: TokenEndpoint
    directory: ProviderDirectory
    lease: timedelta = timedelta(seconds=60)
    step: Step = _no_fault  # a seam: tests fail or kill the process after a named step
    stopping: Callable[[], bool] = _never  # the process is shutting down (shared.lifecycle): start nothing slow

    def new_owner(self, kind: str) -> str:
        return f"{kind}-{uuid.uuid4().hex[:12]}"

    def lease_from(self, owner: str, claimed_at: float) -> Lease:
        return Lease(owner, claimed_at + self.lease.total_seconds())

    def refresh(
        self, integration_id: uuid.UUID, *, force: bool = False, min_ttl: int = 0, quiet: timedelta = timedelta(0)
    ) -> RefreshResult:
        owner = self.new_owner("fetch")
        sent = time.monotonic()
        claimed = self.store.claim(integration_id, owner, self.lease, self.clock.now())
        if claimed is None:
            return RefreshResult("busy", None, "leased_elsewhere")
        try:
            provider = self.catalog.get(claimed.provider)
        except BrokerError:  # a provider removed from the catalog: nothing to refresh with; do not hold the lease
            self.store.release(integration_id, owner)
            raise
        due, reason = should_refresh(claimed, provider, self.clock.now(), min_ttl=min_ttl, force=force, quiet=quiet)
        if not due:  # another worker refreshed it while we waited for the lease, or it cools down
            self.store.release(integration_id, owner)
            return RefreshResult("not_due", claimed, reason)
        return self.refresh_claimed(claimed, self.lease_from(owner, sent), reason)

    def refresh_claimed(self, integration: Integration, lease: Lease, reason: str = "due") -> RefreshResult:
        assert integration.secret_ref is not None
        try:
            provider = self._resolve(integration)
            client = self.settings.provider_credentials(provider.id)
            if client is None:
                raise ProviderError("provider not configured", oauth_error="provider_not_configured", transient=True)
            refresh_token = self.current_refresh_token(integration)
            if self.stopping():  # a provider call now might be cut off by the kill: leave it to the next run
                self.store.release(integration.id, lease.owner)
                return RefreshResult("busy", None, "shutting_down")
            if lease.remaining() <= self.settings.provider_timeout + AFTER_CALL:
                # Another worker may claim it before the provider answers: two calls with one rotating token
                # would make the provider revoke the grant. Give the lease back and let the next run do it.
                self.store.release(integration.id, lease.owner)
                return RefreshResult("busy", None, "lease_too_short")
            from shared.domain import oauth  # here: a job run with nothing due never loads the OAuth machinery

            request = oauth.token_request(provider, client, oauth.refresh_grant(refresh_token))
            tokens = self.token_endpoint.exchange(request, provider, self.clock.now())
        except ProviderError as error:
            return self._failed(integration, lease, error)
        except SecretNotFound:  # the pinned version was destroyed: no token to refresh with, ever
            failure = ProviderError("the pinned secret is gone", oauth_error="secret_not_found", transient=False)
            return self._failed(integration, lease, failure)
        except BrokerError as error:  # the secret store or the data key: not the provider's fault, retry later
            failure = ProviderError(error.message, oauth_error=error.code, transient=True)
            return self._failed(integration, lease, failure)
        except Exception as exc:  # noqa: BLE001 - e.g. an unreadable secret: back off like any failure, never loop
            log.error("refresh of %s failed unexpectedly: %s", integration.id, type(exc).__name__)
            failure = ProviderError(
                "unexpected failure", oauth_error=f"internal:{type(exc).__name__}"[:64], transient=True
            )
            return self._failed(integration, lease, failure)
        self.step("after_provider")
        return self._store(integration, lease, tokens, refresh_token, reason)

    def _resolve(self, integration: Integration) -> Provider:
        """The catalog entry with discovered endpoints. Discovery failing is never the provider refusing the grant
        (a moved document, an egress rule): it is transient, so it cannot end a grant however long it lasts."""
        entry = self.catalog.get(integration.provider).with_base_url(self.settings.base_url)
        try:
            return self.directory.resolve(entry)
        except ProviderError as error:
            raise ProviderError(error.message, oauth_error=error.oauth_error, transient=True) from None

    def current_refresh_token(self, integration: Integration) -> str:
        """The refresh token to use: the pending (rotated, not yet in the secret store) one, else the pinned one."""
        if integration.pending_secret_ciphertext is not None and integration.pending_secret_key_version is not None:
            return self.keyring.open(
                integration.pending_secret_ciphertext, key_version=integration.pending_secret_key_version,
                purpose=PENDING_SECRET_PURPOSE, record=str(integration.id),
            ).decode()  # fmt: skip
        assert integration.secret_ref is not None
        if integration.secret_version is None:
            raise SecretNotFound("the integration pins no secret version")
        payload = self.secrets.of(integration.secret_backend).read(integration.secret_ref, integration.secret_version)
        return str(json.loads(payload)["refresh_token"])

    def _store(
        self, integration: Integration, lease: Lease, tokens: oauth.TokenSet, used: str, reason: str
    ) -> RefreshResult:
        now = self.clock.now()
        sealed, key_version = self.keyring.seal(
            tokens.access_token.encode(), purpose=ACCESS_TOKEN_PURPOSE, record=str(integration.id)
        )
        values: dict[str, Any] = {
            "access_token_ciphertext": sealed, "access_token_key_version": key_version,
            "token_expires_at": tokens.expires_at, "last_refreshed_at": now, "last_refresh_error": None,
            "consecutive_failures": 0, "consecutive_refusals": 0, "next_attempt_after": None,
        }  # fmt: skip
        if tokens.scopes:  # a refresh that reports no scopes keeps what the grant reported
            values["granted_scopes"], values["scopes_known"] = tokens.scopes, True
        values |= refresh_token_values(self.catalog.get(integration.provider), integration, tokens, now)
        rotated = bool(tokens.refresh_token) and tokens.refresh_token != used
        pending = tokens.refresh_token if rotated else None
        if pending is not None:
            values["pending_secret_ciphertext"], values["pending_secret_key_version"] = self.keyring.seal(
                pending.encode(), purpose=PENDING_SECRET_PURPOSE, record=str(integration.id)
            )
        elif integration.pending_secret_ciphertext is not None:
            pending = used  # the token we used is still only in the row: finish moving it
        event = refresh_event(integration, "token.refresh", "success", {"reason": reason, "rotated": rotated})
        sent = time.monotonic()
        stored = self.store.write(
            integration.id, integration.credential_version, lease.owner, values, [event], now,
            bump=True, extend=self.lease if pending is not None else None,
            transitions=lambda written: refresh_transitions(integration, written),
        )  # fmt: skip
        if stored is None:
            # Fenced out (a reconnect, a delete or another worker landed first): this worker wrote nothing. If the
            # row is gone, remove a secret a concurrent delete may have missed.
            if self.store.get(integration.id) is None and integration.secret_ref is not None:
                try:
                    self.secrets.of(integration.secret_backend).delete(integration.secret_ref)
                except Exception as exc:  # noqa: BLE001 - an orphan secret is the sweeper's; the caller sees "fenced"
                    log.warning("could not delete the secret of deleted %s: %s", integration.id, type(exc).__name__)
            return RefreshResult("fenced", None, "newer_credentials")
        self.step("after_row_update")
        if pending is not None and self.stopping():
            self.store.release(integration.id, lease.owner)  # durable in the row; the next run moves it
        elif pending is not None:
            stored = self._settle(stored, self.lease_from(lease.owner, sent), pending)
        log.info("refreshed %s (%s)", integration.id, reason, extra=fields(
            event="refresh", provider=integration.provider, outcome="refreshed", failure_class="none"))  # fmt: skip
        return RefreshResult("refreshed", stored, reason)

    def settle_claimed(self, integration: Integration, lease: Lease) -> RefreshResult:
        """Move a pending token into the secret store (the refresh job's second chance); the lease is released."""
        try:
            token = self.current_refresh_token(integration)
        except BrokerError as error:
            log.error("pending token of %s cannot be opened: %s", integration.id, error.code)
            self.store.release(integration.id, lease.owner)
            return RefreshResult("transient", integration, error.code)
        settled = self._settle(integration, lease, token)
        outcome: Outcome = "settled" if settled.pending_secret_ciphertext is None else "transient"
        return RefreshResult(outcome, settled, "pending_secret")

    def _settle(self, integration: Integration, lease: Lease, token: str) -> Integration:
        """Steps 3-5. A failure leaves the token pending (durable) and releases the lease; never raises."""
        assert integration.secret_ref is not None
        labels = {"entity": integration.entity_id, "provider": integration.provider}
        payload = master_secret_payload(token, written_for=integration.credential_version)
        try:
            secrets = self.secrets.of(integration.secret_backend)
            version = secrets.add_version(integration.secret_ref, payload, labels)
        except Exception as exc:  # noqa: BLE001 - an outage or a quota: the token stays pending, nothing is lost
            log.warning("refresh of %s: secret store refused the write (%s); kept pending", integration.id,
                        type(exc).__name__)  # fmt: skip
            self.store.release(integration.id, lease.owner)
            return integration
        self.step("after_secret_write")
        if integration.secret_version is not None:
            # The old pin is dead from the moment a pending token exists (or a reconnect pinned a newer version):
            # destroy it before pinning, so that no crash can leave it enabled.
            self._destroy_quietly(secrets, integration.secret_ref, integration.secret_version)
        event = refresh_event(integration, "secret.version_added", "success", {"version": version})
        pinned = self.store.pin(integration, lease.owner, version, [event], self.clock.now())
        if pinned is None:  # fenced out meanwhile: the version we added must not outlive us
            self._destroy_quietly(secrets, integration.secret_ref, version)
            return self.store.get(integration.id) or integration
        self.step("after_pin")
        if integration.secret_version is not None:  # versions earlier attempts added and never pinned
            destroy_between(secrets, integration.secret_ref, integration.secret_version + 1, version)
        return pinned

    @staticmethod
    def _destroy_quietly(secrets: SecretStore, secret_ref: str, version: int) -> None:
        try:
            secrets.destroy_version(secret_ref, version)
        except Exception as exc:  # noqa: BLE001 - nothing reads it again; it only costs until destroyed
            log.warning("could not destroy version %s of %s: %s", version, secret_ref, type(exc).__name__)

    def _failed(self, integration: Integration, lease: Lease, error: ProviderError) -> RefreshResult:
        return record_failure(self.store, self.catalog, self.clock.now(), integration, lease.owner, error)


def refresh_token_values(
    provider: Provider, integration: Integration, tokens: oauth.TokenSet, now: datetime
) -> dict[str, Any]:
    """What a refresh writes about the refresh token's lifetime and the hooks' metadata."""
    from shared.domain.hooks import kept_metadata

    end, keep_alive = refresh_token_lifetimes(
        provider, now, tokens.refresh_token_expires_at, integration.refresh_token_expires_at, new_grant=False
    )
    values: dict[str, Any] = {"refresh_token_expires_at": end, "keep_alive_at": keep_alive}
    if kept := kept_metadata(provider, tokens):
        values["provider_metadata"] = {**integration.provider_metadata, **kept}
    return values
