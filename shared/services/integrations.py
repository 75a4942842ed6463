"""The integrations API's use cases: static-credential integrations, listing, reading, patching, sync requests.

Deleting (with revocation) lives in `integration_removal.py`, the credential check in `integration_checks.py`.
Every use case is scoped by the calling entity: another entity's integration is `integration_not_found`.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any
from uuid import UUID, uuid4

from shared.config import Settings
from shared.domain.envelope import Keyring
from shared.domain.events import CONNECTED, SYNC_REQUESTED, UPDATED, EventSpec, utc_timestamp
from shared.domain.models import AuditEvent, CredentialType, Integration, Status, secret_id_for
from shared.domain.pagination import Cursor as PageCursor
from shared.domain.pagination import decode_cursor, encode_cursor, filters_key
from shared.domain.ports import (
    AuditLog,
    Clock,
    IntegrationAdmin,
    IntegrationRepository,
    ProviderDirectory,
    SecretStore,
    SecretStores,
    TokenEndpoint,
    TokenRevoker,
)
from shared.errors import BadRequest, Conflict, NotFound, RateLimited
from shared.providers.catalog import Catalog, Provider
from shared.services.static_credentials import check_credentials

if TYPE_CHECKING:
    from shared.services.integration_checks import CheckResult
    from shared.services.integration_removal import Removal

log = logging.getLogger("broker.integrations")

SYNC_MIN_INTERVAL = timedelta(seconds=10)
SWITCHABLE = frozenset({Status.ACTIVE.value, Status.INACTIVE.value})


@dataclass(frozen=True)
class NewStaticIntegration:
    provider: str
    credentials: dict[str, Any] = field(repr=False)
    label: str | None = None
    config: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class IntegrationPatch:
    """The fields the caller sent (a label of None clears it)."""

    fields: dict[str, Any]


@dataclass(frozen=True)
class ListQuery:
    provider: str | None = None
    status: str | None = None
    page_size: int = 50
    page_token: str | None = None


@dataclass(frozen=True)
class Page:
    items: list[Integration]
    next_page_token: str | None


@dataclass(frozen=True)
class ProviderInfo:
    provider: Provider
    configured: bool


def not_found() -> NotFound:
    return NotFound("integration not found", code="integration_not_found")


def master_payload(credentials: dict[str, Any]) -> bytes:
    """Static credentials as kept in the secret store (OAuth master secrets are `{"refresh_token": …}`)."""
    return json.dumps({"credentials": credentials}, separators=(",", ":")).encode()


@dataclass
class IntegrationService:
    settings: Settings
    catalog: Catalog
    integrations: IntegrationRepository
    admin: IntegrationAdmin
    secrets: SecretStores  # each row's store by its backend; new secrets go to the configured one
    keyring: Keyring
    clock: Clock
    token_endpoint: TokenEndpoint
    revoker: TokenRevoker
    directory: ProviderDirectory
    audit: AuditLog

    def _has_client(self, provider_id: str) -> bool:
        return self.settings.provider_credentials(provider_id) is not None

    def providers(self) -> list[ProviderInfo]:
        """The catalog as a frontend needs it; an OAuth provider is configured when its client id is set (and, for a
        per-tenant entry, its issuer)."""
        return [
            ProviderInfo(
                p,
                p.auth_mode != "oauth2"
                or (self.settings.provider_credentials(p.id) is not None and not p.needs_issuer),
            )
            for p in self.catalog
        ]

    def create(self, entity_id: str, request: NewStaticIntegration) -> Integration:
        """A static-credential integration: credentials checked against the catalog's schema, stored as a new
        secret (never in the row), then the row pinned to that version. No half state on failure."""
        provider = self.catalog.get(request.provider)
        if provider.auth_mode == "oauth2":
            raise BadRequest(
                f"provider {provider.id!r} connects with OAuth: start the flow with POST /oauth/start",
                code="use_oauth_start",
            )
        check_credentials(provider, request.credentials)
        now = self.clock.now()
        integration_id = uuid4()
        secret_ref = secret_id_for(self.settings.secret_prefix, integration_id)
        labels = {"entity": entity_id, "provider": provider.id}
        secrets = self.secrets.default
        version = secrets.add_version(secret_ref, master_payload(request.credentials), labels)
        integration = Integration(
            id=integration_id, entity_id=entity_id, provider=provider.id,
            credential_type=CredentialType(provider.auth_mode), status=Status.ACTIVE, created_at=now,
            updated_at=now, label=request.label, secret_ref=secret_ref, secret_version=version,
            secret_backend=self.secrets.default_name, config=request.config,
        )  # fmt: skip
        detail = {"credential_type": provider.auth_mode, "fields": sorted(request.credentials)}
        event = _event(entity_id, "integration.create", "success", integration, detail)
        try:
            self.integrations.add(integration, [event, EventSpec(CONNECTED, None, {"refreshable": False})])
        except BaseException:
            _delete_quietly(secrets, secret_ref)
            raise
        return integration

    def list(self, entity_id: str, query: ListQuery) -> Page:
        """One page in creation order; `next_page_token` continues after its last item (None: no more)."""
        provider = query.provider
        if provider is not None and provider in self.catalog:
            provider = self.catalog.get(provider).id  # an alias lists the provider's integrations
        key = filters_key(provider=provider, status=query.status)
        after = decode_cursor(query.page_token, key) if query.page_token else None
        rows = self.admin.list_page(
            entity_id, provider=provider, status=query.status, after=after, limit=query.page_size + 1
        )
        items = rows[: query.page_size]
        more = len(rows) > query.page_size
        token = encode_cursor(PageCursor(items[-1].created_at, items[-1].id), key) if more else None
        return Page(items, token)

    def get(self, entity_id: str, integration_id: UUID) -> Integration:
        integration = self.integrations.get(integration_id, entity_id)
        if integration is None:
            raise not_found()
        return integration

    def update(self, entity_id: str, integration_id: UUID, patch: IntegrationPatch) -> Integration:
        """Label, config, and status between active and inactive only (other states are the broker's)."""
        values = dict(patch.fields)
        if "status" in values:
            values["status"] = Status(values["status"]).value
        event = AuditEvent(
            f"entity:{entity_id}", "integration.update", "success", entity_id, integration_id, None,
            {"fields": sorted(values), **({"status": values["status"]} if "status" in values else {})},
        )  # fmt: skip
        when = SWITCHABLE if "status" in values else None
        changed = EventSpec(UPDATED, None, {"fields": sorted(values)})
        updated = self.admin.update(integration_id, entity_id, values, [event, changed], when_status=when)
        if updated is not None:
            return updated
        current = self.get(entity_id, integration_id)  # NotFound when it is not the caller's
        raise Conflict(
            f"status can change only between active and inactive; this integration is {current.status.value!r}"
            + (" (reconnect it with POST /oauth/start)" if current.credential_type == CredentialType.OAUTH2 else ""),
            code="invalid_status_transition",
        )

    def sync(self, entity_id: str, integration_id: UUID) -> Integration:
        """Record a sync request: `last_sync_at` becomes now. Active integrations only, at most one request per
        SYNC_MIN_INTERVAL (429 with Retry-After otherwise)."""
        current = self.get(entity_id, integration_id)
        now = self.clock.now()
        _check_syncable(current, now)
        event = _event(entity_id, "integration.sync_requested", "success", current, {})
        requested = EventSpec(SYNC_REQUESTED, None, {"requested_at": utc_timestamp(now)})
        # The check above only saves a write; this conditional UPDATE is what holds under concurrent requests.
        updated = self.admin.record_sync(
            integration_id, entity_id, now, after=now - SYNC_MIN_INTERVAL, events=[event, requested]
        )
        if updated is not None:
            return updated
        _check_syncable(self.get(entity_id, integration_id), now)  # says why: another request won, or a state change
        raise Conflict("the integration changed meanwhile; read it again", code="integration_not_active")

    def remove(self, entity_id: str, integration_id: UUID, *, actor: str | None = None) -> Removal:
        from shared.services.integration_removal import remove_integration

        return remove_integration(self, entity_id, integration_id, actor=actor)

    def check(self, entity_id: str, integration_id: UUID, *, actor: str | None = None) -> CheckResult:
        from shared.services.integration_checks import check_integration

        return check_integration(self, entity_id, integration_id, actor=actor)


def _check_syncable(integration: Integration, now: datetime) -> None:
    if integration.status != Status.ACTIVE:
        raise Conflict(
            f"only an active integration can be synced; this one is {integration.status.value!r}",
            code="integration_not_active",
        )
    last = integration.last_sync_at
    if last is not None and now - last < SYNC_MIN_INTERVAL:
        raise RateLimited(
            f"a sync was requested less than {SYNC_MIN_INTERVAL.seconds} s ago; try again later",
            code="sync_rate_limited",
            details={"retry_after": max(1.0, (last + SYNC_MIN_INTERVAL - now).total_seconds())},
        )


def _event(entity_id: str, action: str, outcome: str, integration: Integration, detail: dict[str, Any]) -> AuditEvent:
    return AuditEvent(f"entity:{entity_id}", action, outcome, entity_id, integration.id, integration.provider, detail)


def _delete_quietly(secrets: SecretStore, secret_ref: str) -> None:
    try:
        secrets.delete(secret_ref)
    except Exception:  # noqa: BLE001 - the original failure is what the caller must see
        log.error("could not remove secret %s after a failed write; it holds no row and can be deleted", secret_ref)
