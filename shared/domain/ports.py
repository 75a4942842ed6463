"""Ports: the small, use-case shaped interfaces the services need. Adapters implement them."""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping, Sequence
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, Protocol
from uuid import UUID

from shared.domain.envelope import Sealed
from shared.domain.events import EventSpec
from shared.domain.models import AuditEvent, AuditQuery, AuditRecord, Integration, IntegrationSearch, OAuthState
from shared.domain.secret_ports import SecretStore as SecretStore  # re-exported: services import ports from here
from shared.domain.secret_ports import SecretStores as SecretStores

if TYPE_CHECKING:  # annotations only: a function imports the ports it uses, not the OAuth or catalog machinery
    from shared.domain.oauth import TokenRequest, TokenSet
    from shared.domain.pagination import Cursor
    from shared.domain.revocation import RevocationRequest
    from shared.providers.catalog import Provider

# What a state change records in its own transaction: audit events, and events for the outbox (completed from the
# row as written: shared.domain.events.materialise). An event is written if and only if its change commits.
Record = AuditEvent | EventSpec
Transitions = Callable[[Integration], Sequence[EventSpec]]  # the row as written -> the events it makes


def no_transitions(_row: Integration) -> Sequence[EventSpec]:
    return ()


class HousekeepingStore(Protocol):
    """The refresh job's housekeeping in the database (SqlHousekeepingStore)."""

    def purge_audit_events(self, occurred_before: datetime, limit: int) -> int:
        """Delete up to `limit` audit events older than `occurred_before`, oldest first; how many went."""
        ...

    def purge_events(self, occurred_before: datetime, limit: int) -> int:
        """Delete up to `limit` outbox events older than `occurred_before` (with their deliveries and attempts)."""
        ...

    def purge_oauth_states(self, expired_before: datetime, limit: int) -> int:
        """Delete up to `limit` handshake states (spent or not) that expired before `expired_before`."""
        ...

    def purge_connect_sessions(self, expired_before: datetime, limit: int) -> int:
        """Delete up to `limit` connect sessions that expired before `expired_before`."""
        ...

    def existing_integrations(self, ids: Collection[UUID]) -> set[UUID]:
        """Which of `ids` have an integration row."""
        ...


class Clock(Protocol):
    def now(self) -> datetime:
        """The current time, timezone-aware UTC."""
        ...


class IntegrationRepository(Protocol):
    """entity_integrations rows. Reads scoped by entity return None for another entity's integration."""

    def get(self, integration_id: UUID, entity_id: str | None = None) -> Integration | None: ...

    def find_account(self, entity_id: str, provider: str, subject: str) -> Integration | None: ...

    def add(self, integration: Integration, events: Sequence[Record] = ()) -> None:
        """Insert the row and its records in one transaction; Conflict when the account is already there."""
        ...

    def replace_credentials(self, integration: Integration, events: Sequence[Record] = ()) -> Integration:
        """Overwrite credentials and identity, bumping the fencing counter, so in-flight refreshes of the old
        credentials cannot write afterwards; returns the stored row. NotFound when the row is gone."""
        ...


class IntegrationAdmin(Protocol):
    """The integrations API's listing and metadata writes. Every call is scoped by entity: another entity's row
    behaves exactly like a missing one."""

    def list_page(
        self, entity_id: str, *, provider: str | None, status: str | None, after: Cursor | None, limit: int
    ) -> list[Integration]:
        """Up to `limit` rows in (created_at, id) order, strictly after `after` when given."""
        ...

    def update(
        self,
        integration_id: UUID,
        entity_id: str,
        values: Mapping[str, Any],
        events: Sequence[Record] = (),
        *,
        when_status: Collection[str] | None = None,
        when_version: int | None = None,
        fence: bool = False,
    ) -> Integration | None:
        """Set metadata fields (label, config, status, last_sync_at) and write `events`, in one transaction;
        only while the status is in `when_status` and the fencing counter is `when_version`, when given. `fence`
        bumps the fencing counter so an in-flight refresh cannot write afterwards. None when no row matched."""
        ...

    def record_sync(
        self, integration_id: UUID, entity_id: str, at: datetime, *, after: datetime, events: Sequence[Record]
    ) -> Integration | None:
        """Set `last_sync_at = at` and write `events` in one conditional UPDATE: only while the status is active
        and the previous request (if any) is not later than `after`, so concurrent callers cannot all pass the
        check. None when no row matched (missing, not active, or requested too recently)."""
        ...

    def remove(self, integration_id: UUID, entity_id: str, events: Sequence[Record] = ()) -> bool:
        """Delete the row and write `events` (events from the row's last state) in one transaction; False when
        there was no such row."""
        ...


class TokenRevoker(Protocol):
    """A provider's revocation endpoint (HttpTokenEndpoint.revoke); ProviderError when it refuses or fails."""

    def revoke(self, request: RevocationRequest) -> None: ...


class OAuthStateRepository(Protocol):
    def add(self, state: OAuthState) -> None: ...

    def consume(self, state_hash: str, binding_hash: str | None, now: datetime) -> OAuthState | None:
        """Atomically mark a live, unused state (bound to this browser) consumed and return it; else None."""
        ...

    def why_refused(self, state_hash: str, binding_hash: str | None, now: datetime) -> str:
        """After a failed consume: `unknown`, `used`, `expired` or `foreign_browser`."""
        ...


class AuditLog(Protocol):
    def record(self, event: AuditEvent) -> None: ...


class CiphertextStore(Protocol):
    """Every ciphertext under the data key, by kind (SqlCiphertexts), for re-encryption under a new key version."""

    def count_by_version(self, now: datetime) -> dict[int, dict[str, int]]:
        """{key version: {kind: count}}, every kind present for each version found."""
        ...

    def batch(self, kind: str, below: int, after: tuple[Any, ...] | None, limit: int, now: datetime) -> list[Sealed]:
        """Up to `limit` ciphertexts of `kind` under a version below `below`, in key order after `after`."""
        ...

    def replace(self, items: Sequence[tuple[Sealed, bytes, int]]) -> list[bool]:
        """Write each new (ciphertext, key version), fenced on the one read; whether each landed."""
        ...


class AuditTrail(Protocol):
    """Reading the audit trail (operators and the internal GET /audit), newest first."""

    def query(self, query: AuditQuery) -> list[AuditRecord]: ...


class IntegrationFinder(Protocol):
    """Operators' view of every integration, across entities (never a ciphertext leaves through the CLI)."""

    def search(self, search: IntegrationSearch) -> list[Integration]: ...


class TokenEndpoint(Protocol):
    """A provider's token and userinfo endpoints (HttpTokenEndpoint)."""

    def exchange(self, request: TokenRequest, provider: Provider, now: datetime) -> TokenSet: ...

    def userinfo(self, provider: Provider, access_token: str) -> dict[str, Any]: ...


class ProviderDirectory(Protocol):
    """Discovery and ID-token verification for providers (OidcProviders)."""

    def resolve(self, provider: Provider) -> Provider: ...

    def verify_id_token(self, provider: Provider, id_token: str, client_id: str) -> dict[str, Any]: ...


class Authenticator(Protocol):
    """Who calls a browser-facing function; Unauthenticated (401) when the caller cannot be established."""

    def entity_id(self, request: Any) -> str: ...


class TokenReads(Protocol):
    """The token hot path: PgTokenReads on PostgreSQL (one statement), SqlTokenReads elsewhere."""

    def read_for_use(
        self, integration_id: UUID, actor: str, now: datetime, fresh_until: datetime, every: timedelta
    ) -> tuple[Integration | None, bool]:
        """Read one integration (None when missing). When it can be handed out as it is (`servable_as_is` with
        `fresh_until`), write the `token.read` audit event of `actor` and stamp `last_used_at` (at most once per
        `every`) in the read's own transaction, and answer True. DependencyUnavailable when the database fails:
        a read whose audit row cannot be written is refused as a whole."""
        ...


KEEP_STATUS = "keep"
REAUTH_IF_ACTIVE = "reauth_if_active"


class RefreshStore(Protocol):
    """Leases (on the database's clock) and fenced writes on integration rows (SqlRefreshStore).

    Every write is fenced on `credential_version` and on the lease owner: a worker that lost either changes nothing.
    """

    def claim(self, integration_id: UUID, owner: str, lease: timedelta, now: datetime) -> Integration | None: ...

    def claim_due(
        self,
        horizon: timedelta,
        limit: int,
        owner: str,
        lease: timedelta,
        now: datetime,
        began: datetime,
        provider: str | None = None,
    ) -> list[Integration]: ...

    def count_due(self, horizon: timedelta, now: datetime) -> dict[str, int]: ...

    def claim_pending(self, limit: int, owner: str, lease: timedelta) -> list[Integration]: ...

    def warn_expiring(self, warning: timedelta, limit: int, now: datetime) -> int:
        """Emit `integration.expiring_soon` once per refresh-token end within `warning`; how many."""
        ...

    def get(self, integration_id: UUID) -> Integration | None: ...

    def write(
        self,
        integration_id: UUID,
        expected_version: int,
        owner: str,
        values: dict[str, Any],
        events: list[AuditEvent],
        now: datetime,
        *,
        bump: bool,
        extend: timedelta | None = None,
        status: str = KEEP_STATUS,
        transitions: Transitions = no_transitions,
    ) -> Integration | None:
        """`transitions` gets the row as written, inside the transaction; the events it returns are written there."""
        ...

    def pin(
        self, integration: Integration, owner: str, version: int, events: list[AuditEvent], now: datetime
    ) -> Integration | None: ...

    def release(self, integration_id: UUID, owner: str) -> None: ...

    def touch(self, integration: Integration, now: datetime, every: timedelta, event: AuditEvent) -> None: ...
