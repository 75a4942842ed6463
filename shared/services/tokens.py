"""Token fetch: hand an internal caller a valid access token (refreshing first when due) or static credentials.

The hot path for a valid OAuth token is one statement (PostgreSQL: read the row, write the read's audit event,
stamp `last_used_at` when stale; `TokenReads`) and an in-memory decrypt. Everything else (a refresh when the token
is inside the provider's margin, `min_ttl` asks for more or the caller forces one after a 401; static credentials)
is the slow path, whose parts are built on first use, so the token function's cold start does not pay for them.
"""

from __future__ import annotations

import json
import math
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from functools import cached_property
from typing import TYPE_CHECKING, Any, NoReturn
from uuid import UUID

from shared.domain.envelope import Keyring
from shared.domain.models import AuditEvent, CredentialType, Integration, Status
from shared.domain.ports import Clock, RefreshStore, SecretStores, TokenReads
from shared.domain.refresh import FORCE_REFRESH_QUIET, servable_until, should_refresh, token_usable
from shared.errors import BrokerError, Conflict, DependencyUnavailable, NotFound, SecretNotFound
from shared.services.credentials import ACCESS_TOKEN_PURPOSE

if TYPE_CHECKING:
    from shared.providers.catalog import Catalog
    from shared.services.refresh import Refresher

UNAVAILABLE = {
    Status.REAUTH_REQUIRED: ("reauth_required", "the account must be connected again (POST /oauth/start)"),
    Status.INACTIVE: ("integration_inactive", "the integration is inactive"),
    Status.REVOKED: ("integration_revoked", "the integration was revoked"),
    Status.EXPIRED: ("token_expired", "the access token expired and cannot be refreshed: connect again"),
    Status.ERROR: ("integration_error", "the integration is in error: connect again"),
    Status.PENDING: ("integration_pending", "the integration is not connected yet"),
}
USE_RECORD_EVERY = timedelta(seconds=60)
NEVER_SERVABLE = datetime(9999, 1, 1, tzinfo=UTC)


def check_scopes(integration: Integration, required: tuple[str, ...]) -> None:
    """409 insufficient_scope naming the required scopes the grant lacks (all of them when the provider did not
    report what it granted: unknown is not enough)."""
    granted = set(integration.granted_scopes) if integration.scopes_known else set()
    missing = [scope for scope in dict.fromkeys(required) if scope not in granted]
    if missing:
        known = "" if integration.scopes_known else " (the provider did not report the granted scopes)"
        raise Conflict(
            f"the grant lacks the scope(s) {', '.join(missing)}{known}: connect again asking for them "
            "(POST /oauth/start with integration_id and scopes)", code="insufficient_scope",
            details={"public": {"missing_scopes": missing, "scopes_known": integration.scopes_known}},
        )  # fmt: skip


@dataclass(frozen=True)
class SlowPath:
    """What a fetch off the hot path needs: leases and fenced writes, the secret store, the refresh engine."""

    store: RefreshStore
    secrets: SecretStores
    refresher: Refresher


@dataclass
class TokenService:
    catalog: Catalog
    reads: TokenReads
    keyring: Keyring
    clock: Clock
    slow_path: Callable[[], SlowPath]
    wait_for_winner: float = 5.0
    _static: dict[tuple[str | None, str, int], dict[str, Any]] = field(default_factory=dict, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    @cached_property
    def _slow(self) -> SlowPath:
        return self.slow_path()

    @property
    def store(self) -> RefreshStore:
        return self._slow.store

    @property
    def refresher(self) -> Refresher:
        return self._slow.refresher

    def fetch(
        self, integration_id: UUID, caller: str, *, min_ttl: int = 0, force: bool = False,
        scopes: tuple[str, ...] = (),
    ) -> dict[str, Any]:  # fmt: skip
        """The answer for `caller`. Audit-or-refuse: no token leaves without the audit event of its read (on the hot
        path written by the read's own statement; otherwise by `touch`); a database failure is a 503. `scopes`:
        the grant must hold them (409 insufficient_scope otherwise), checked on the row the read returned."""
        now = self.clock.now()
        if force:  # a refresh follows (or the quiet period's answer): the plain read, audited at the end
            integration, audited = self.store.get(integration_id), False
        else:
            # With required scopes the read's statement must not audit a read the scope check may refuse: the
            # threshold is then out of reach, and the read is audited after the check (`touch`).
            until = servable_until(now, self.catalog.max_refresh_margin, min_ttl) if not scopes else NEVER_SERVABLE
            integration, audited = self.reads.read_for_use(integration_id, caller, now, until, USE_RECORD_EVERY)
        if integration is None:
            raise NotFound("integration not found", code="integration_not_found")
        self._check_status(integration)
        if scopes:
            check_scopes(integration, scopes)
        if integration.credential_type != CredentialType.OAUTH2:
            view = self._static_view(integration)
        else:
            view = self._oauth_view(integration, min_ttl, force, now)
        if not audited:
            event = AuditEvent(
                caller, "token.read", "success", integration.entity_id, integration.id, integration.provider
            )
            self.store.touch(integration, self.clock.now(), USE_RECORD_EVERY, event)
        return view

    @staticmethod
    def _check_status(integration: Integration) -> None:
        if integration.status in UNAVAILABLE:
            code, message = UNAVAILABLE[integration.status]
            raise Conflict(message, code=code)

    def _oauth_view(self, integration: Integration, min_ttl: int, force: bool, now: datetime) -> dict[str, Any]:
        provider = self.catalog.get(integration.provider)
        due, reason = should_refresh(
            integration, provider, now, min_ttl=min_ttl, force=force, quiet=FORCE_REFRESH_QUIET
        )
        if due:
            integration = self._refreshed(integration, min_ttl, force)
        elif force and reason == "cooling_down":  # never hand back the token the caller just saw rejected
            assert integration.next_attempt_after is not None
            self._stale((integration.next_attempt_after - now).total_seconds())
        elif not token_usable(integration, now, min_ttl):
            if integration.secret_ref is None:  # nothing to refresh with: only a reconnect helps
                code, message = UNAVAILABLE[Status.EXPIRED]
                raise Conflict(message, code=code)
            after = integration.next_attempt_after  # a backoff running: say when the next attempt is allowed
            self._stale((after - now).total_seconds() if after is not None and after > now else None)
        return self._token(integration)

    def _refreshed(self, integration: Integration, min_ttl: int, force: bool) -> Integration:
        result = self.refresher.refresh(integration.id, force=force, min_ttl=min_ttl, quiet=FORCE_REFRESH_QUIET)
        if result.outcome == "not_due" and result.reason == "cooling_down" and result.integration is not None:
            self._check_status(result.integration)
            if force or not token_usable(result.integration, self.clock.now(), min_ttl):
                after = result.integration.next_attempt_after
                self._stale((after - self.clock.now()).total_seconds() if after else None)
            return result.integration
        if result.outcome in ("refreshed", "not_due") and result.integration is not None:
            self._check_status(result.integration)
            return result.integration
        if result.outcome == "reauth_required":
            code, message = UNAVAILABLE[Status.REAUTH_REQUIRED]
            raise Conflict(message, code=code)
        if result.outcome in ("busy", "fenced"):
            newer = self._wait_for_winner(integration)
            if newer is not None:
                return newer
            # The holder let go without new credentials (the job only moved a pending token into the secret store,
            # or gave its lease back): refresh once more rather than answer 503 with the lease free.
            again = self.refresher.refresh(integration.id, force=force, min_ttl=min_ttl, quiet=FORCE_REFRESH_QUIET)
            if again.outcome in ("refreshed", "not_due") and again.integration is not None:
                self._check_status(again.integration)
                if again.outcome == "refreshed" or token_usable(again.integration, self.clock.now(), min_ttl):
                    return again.integration
        current = self.store.get(integration.id) or integration
        self._check_status(current)
        if token_usable(current, self.clock.now(), min_ttl) and not force:
            return current  # the refresh failed for now, but the stored token is still valid
        self._stale(result.retry_after)

    def _wait_for_winner(self, integration: Integration) -> Integration | None:
        """Another worker holds the lease: poll until it has written (or given up), then use what it wrote."""
        deadline = time.monotonic() + self.wait_for_winner
        while time.monotonic() < deadline:
            time.sleep(0.05)
            current = self.store.get(integration.id)
            if current is None:
                raise NotFound("integration not found", code="integration_not_found")
            if current.credential_version != integration.credential_version:
                self._check_status(current)
                return current
            if current.lease_owner is None:
                self._check_status(current)
                return None
        return None

    @staticmethod
    def _stale(retry_after: float | None) -> NoReturn:
        error = DependencyUnavailable(
            "the access token expired and the provider could not refresh it yet", code="refresh_unavailable"
        )
        # Rounded up: a Retry-After a little short of the backoff would cost the caller one wasted retry.
        error.details["retry_after"] = max(1, math.ceil(retry_after)) if retry_after else 30
        raise error

    def _token(self, integration: Integration) -> dict[str, Any]:
        if integration.access_token_ciphertext is None or integration.access_token_key_version is None:
            raise BrokerError("the integration holds no access token", code="no_access_token")
        token = self.keyring.open(
            integration.access_token_ciphertext, key_version=integration.access_token_key_version,
            purpose=ACCESS_TOKEN_PURPOSE, record=str(integration.id),
        ).decode()  # fmt: skip
        expires = integration.token_expires_at
        answer: dict[str, Any] = {
            "integration_id": str(integration.id), "access_token": token, "token_type": "Bearer",
            "expires_at": expires.isoformat() if expires else None, "scopes": integration.granted_scopes,
        }  # fmt: skip
        if integration.provider_metadata:  # what a hook kept for callers (Salesforce's instance_url)
            answer["provider_metadata"] = dict(integration.provider_metadata)
        return answer

    def _read_static(self, integration: Integration) -> bytes:
        """The pinned version, from the row's backend. `broker migrate-secrets` may move the secret between the
        row read and this one (it switches the row, then removes the source copy): then read the row again."""
        assert integration.secret_ref is not None
        assert integration.secret_version is not None
        slow = self._slow
        try:
            return slow.secrets.of(integration.secret_backend).read(integration.secret_ref, integration.secret_version)
        except SecretNotFound:
            now = slow.store.get(integration.id)
            moved = now is not None and (now.secret_backend, now.secret_version) != (
                integration.secret_backend, integration.secret_version)  # fmt: skip
            if not moved or now is None or now.secret_ref is None or now.secret_version is None:
                raise
            return slow.secrets.of(now.secret_backend).read(now.secret_ref, now.secret_version)

    def _static_view(self, integration: Integration) -> dict[str, Any]:
        if integration.secret_ref is None or integration.secret_version is None:
            raise BrokerError("the integration holds no credentials", code="no_credentials")
        key = (integration.secret_backend, integration.secret_ref, integration.secret_version)
        with self._lock:  # versions are immutable, so a read by number can be kept for the instance's life
            credentials = self._static.get(key)
        if credentials is None:
            credentials = json.loads(self._read_static(integration))["credentials"]
            with self._lock:
                self._static[key] = credentials
        return {
            "integration_id": str(integration.id), "credential_type": integration.credential_type.value,
            "credentials": dict(credentials),
        }  # fmt: skip
