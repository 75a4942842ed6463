"""In-memory fakes of the ports, asserted on state (not on calls)."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any
from uuid import UUID

from shared.domain.events import EventSpec, OutboxEvent, materialise
from shared.domain.models import AuditEvent, Integration, OAuthState, Status
from shared.domain.oauth import TokenRequest, TokenSet
from shared.domain.ports import Record
from shared.domain.revocation import RevocationRequest
from shared.domain.secret_ports import within
from shared.errors import Conflict, DependencyUnavailable, NotFound, SecretNotFound, SecretStoreUnavailable
from shared.providers.catalog import Provider


class MemorySecretStore:
    def __init__(self) -> None:
        self.versions: dict[str, dict[int, bytes | None]] = {}
        self.created: dict[str, datetime] = {}
        self.secret_labels: dict[str, dict[str, str]] = {}
        self.fail_next_add = False
        self.fail_next_read = False

    def add_version(self, secret_id: str, payload: bytes, labels: Mapping[str, str]) -> int:
        if self.fail_next_add:
            self.fail_next_add = False
            raise SecretStoreUnavailable("secret store down (injected)")
        self.created.setdefault(secret_id, datetime.now(UTC))
        self.secret_labels.setdefault(secret_id, dict(labels))
        versions = self.versions.setdefault(secret_id, {})
        number = max(versions, default=0) + 1
        versions[number] = payload
        return number

    def read(self, secret_id: str, version: int) -> bytes:
        if self.fail_next_read:
            self.fail_next_read = False
            raise SecretStoreUnavailable("secret store down (injected)")
        payload = self.versions.get(secret_id, {}).get(version)
        if payload is None:
            raise SecretNotFound(f"{secret_id}/{version}")
        return payload

    def enabled_versions(self, secret_id: str) -> list[int]:
        return sorted(v for v, p in self.versions.get(secret_id, {}).items() if p is not None)

    def destroy_version(self, secret_id: str, version: int) -> None:
        if version in self.versions.get(secret_id, {}):
            self.versions[secret_id][version] = None

    def delete(self, secret_id: str) -> None:
        self.versions.pop(secret_id, None)
        self.created.pop(secret_id, None)
        self.secret_labels.pop(secret_id, None)

    def labels(self, secret_id: str) -> dict[str, str]:
        return dict(self.secret_labels.get(secret_id, {}))

    def check(self) -> None:
        pass

    def stale_secret_ids(
        self, prefix: str, created_before: datetime, created_after: datetime | None = None
    ) -> list[str]:
        return sorted(
            s for s, at in self.created.items()
            if s.startswith(prefix + "-") and within(at, created_before, created_after)
        )  # fmt: skip


class MemoryIntegrations:
    def __init__(self) -> None:
        self.rows: dict[UUID, Integration] = {}
        self.events: list[AuditEvent] = []
        self.outbox: list[OutboxEvent] = []
        self.fail_next_write = False

    def record(self, records: Sequence[Record], row: Integration) -> None:
        self.events.extend(r for r in records if isinstance(r, AuditEvent))
        now = datetime.now(UTC)
        self.outbox.extend(materialise(r, row, now) for r in records if isinstance(r, EventSpec))

    def _maybe_fail(self) -> None:
        if self.fail_next_write:
            self.fail_next_write = False
            raise DependencyUnavailable("database down (injected)")

    def get(self, integration_id: UUID, entity_id: str | None = None) -> Integration | None:
        row = self.rows.get(integration_id)
        if row is None or (entity_id is not None and row.entity_id != entity_id):
            return None
        return dataclasses.replace(row)

    def find_account(self, entity_id: str, provider: str, subject: str) -> Integration | None:
        for row in self.rows.values():
            if (row.entity_id, row.provider, row.account_subject) == (entity_id, provider, subject):
                return dataclasses.replace(row)
        return None

    def add(self, integration: Integration, events: Sequence[Record] = ()) -> None:
        self._maybe_fail()
        subject = integration.account_subject
        if subject and self.find_account(integration.entity_id, integration.provider, subject):
            raise Conflict("already connected", code="already_connected")
        self.rows[integration.id] = dataclasses.replace(integration)
        self.record(events, integration)

    def replace_credentials(self, integration: Integration, events: Sequence[Record] = ()) -> Integration:
        self._maybe_fail()
        if integration.id not in self.rows:
            raise NotFound("gone")
        stored = dataclasses.replace(integration, credential_version=self.rows[integration.id].credential_version + 1)
        self.rows[integration.id] = stored
        self.record(events, stored)
        return dataclasses.replace(stored)


class MemoryStates:
    def __init__(self) -> None:
        self.rows: dict[str, OAuthState] = {}

    def add(self, state: OAuthState) -> None:
        self.rows[state.state_hash] = dataclasses.replace(state)

    def consume(self, state_hash: str, binding_hash: str | None, now: datetime) -> OAuthState | None:
        row = self.rows.get(state_hash)
        if row is None or row.consumed_at is not None or row.expires_at <= now:
            return None
        if row.browser_binding_hash is not None and row.browser_binding_hash != binding_hash:
            return None
        row.consumed_at = now
        return dataclasses.replace(row)

    def why_refused(self, state_hash: str, binding_hash: str | None, now: datetime) -> str:
        row = self.rows.get(state_hash)
        if row is None:
            return "unknown"
        if row.consumed_at is not None:
            return "used"
        return "expired" if row.expires_at <= now else "foreign_browser"


class MemoryAudit:
    def __init__(self) -> None:
        self.events: list[AuditEvent] = []

    def record(self, event: AuditEvent) -> None:
        self.events.append(event)


class ScriptedTokenEndpoint:
    """Answers token requests from a queue of TokenSets or errors; records the grants it saw."""

    def __init__(self) -> None:
        self.replies: list[TokenSet | Exception] = []
        self.requests: list[TokenRequest] = []
        self.userinfo_document: dict[str, Any] = {"sub": "acct-1", "email": "a@example.test"}

    def exchange(self, request: TokenRequest, provider: Provider, now: datetime) -> TokenSet:
        self.requests.append(request)
        reply = self.replies.pop(0)
        if isinstance(reply, Exception):
            raise reply
        return reply

    def userinfo(self, provider: Provider, access_token: str) -> dict[str, Any]:
        return dict(self.userinfo_document)


class StaticDirectory:
    def __init__(self, claims: dict[str, Any] | None = None, issuer: str | None = None) -> None:
        self.claims = claims or {}
        self.issuer = issuer

    def resolve(self, provider: Provider) -> Provider:
        return dataclasses.replace(provider, issuer=self.issuer) if self.issuer else provider

    def verify_id_token(self, provider: Provider, id_token: str, client_id: str) -> dict[str, Any]:
        return dict(self.claims)


class MemoryIntegrationAdmin:
    """The integrations API's port over a MemoryIntegrations' rows (one store, as in the database)."""

    def __init__(self, integrations: MemoryIntegrations, clock: Any) -> None:
        self.store = integrations
        self.clock = clock

    def list_page(
        self, entity_id: str, *, provider: str | None, status: str | None, after: Any, limit: int
    ) -> list[Integration]:
        rows = sorted(
            (r for r in self.store.rows.values() if r.entity_id == entity_id),
            key=lambda r: (r.created_at, str(r.id)),
        )
        rows = [r for r in rows if provider is None or r.provider == provider]
        rows = [r for r in rows if status is None or r.status.value == status]
        if after is not None:
            rows = [r for r in rows if (r.created_at, str(r.id)) > (after.created_at, str(after.id))]
        return [dataclasses.replace(r) for r in rows[:limit]]

    def update(
        self,
        integration_id: UUID,
        entity_id: str,
        values: Mapping[str, Any],
        events: Sequence[Record] = (),
        *,
        when_status: Any = None,
        when_version: int | None = None,
        fence: bool = False,
    ) -> Integration | None:
        self.store._maybe_fail()
        row = self.store.get(integration_id, entity_id)
        if row is None or (when_status is not None and row.status.value not in when_status):
            return None
        if when_version is not None and row.credential_version != when_version:
            return None
        changes = dict(values)
        if "status" in changes:
            changes["status"] = Status(changes["status"])
        updated = dataclasses.replace(row, **changes, updated_at=self.clock.now())
        if fence:
            updated.credential_version += 1
        self.store.rows[integration_id] = updated
        self.store.record(events, updated)
        return dataclasses.replace(updated)

    def record_sync(
        self, integration_id: UUID, entity_id: str, at: datetime, *, after: datetime, events: Sequence[Record]
    ) -> Integration | None:
        self.store._maybe_fail()
        row = self.store.get(integration_id, entity_id)
        if row is None or row.status != Status.ACTIVE or (row.last_sync_at is not None and row.last_sync_at > after):
            return None
        updated = dataclasses.replace(row, last_sync_at=at, updated_at=at)
        self.store.rows[integration_id] = updated
        self.store.record(events, updated)
        return dataclasses.replace(updated)

    def remove(self, integration_id: UUID, entity_id: str, events: Sequence[Record] = ()) -> bool:
        self.store._maybe_fail()
        row = self.store.get(integration_id, entity_id)
        if row is None:
            return False
        del self.store.rows[integration_id]
        self.store.record(events, row)
        return True


class RecordingRevoker:
    """Records revocation requests; answers with the next queued error, else success."""

    def __init__(self) -> None:
        self.requests: list[RevocationRequest] = []
        self.errors: list[Exception] = []

    def revoke(self, request: RevocationRequest) -> None:
        self.requests.append(request)
        if self.errors:
            raise self.errors.pop(0)
