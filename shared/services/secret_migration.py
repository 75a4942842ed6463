"""`broker migrate-secrets --to <backend>`: every master secret moved to one backend, while the service runs.

Each row records the backend that holds its secret (`secret_backend`; None: the configured SECRET_BACKEND), and
every reader and refresher uses the row's backend, so rows can move one at a time. First every unmarked row is
marked with the configured backend (which changes nothing it means), so that changing SECRET_BACKEND later never
re-points a row. Then, per integration not in the target yet, under the engine's lease (no refresh runs on it
meanwhile, and a reconnect that wrote meanwhile is fenced out):
1. the live payload: a pending rotated token in the row, else the pinned version read from the row's backend;
2. added to the target as a new version, and read back from it by that number and compared;
3. the target's older versions (left by an interrupted earlier attempt) destroyed by number;
4. the row switched in one fenced transaction: its backend and version the target's, pending copy cleared,
   fencing counter bumped, and a `secret.migrated` audit event written (the run's progress record);
5. the source secret deleted (every version).
A run killed anywhere is finished by running it again: a switched row (in the target, its newest secret.migrated
event naming the target) only has its source copy deleted; an unswitched one is copied again and step 3 removes
the stray copy. A finished run leaves one live copy of each secret, in the target. A token fetch that read the row
just before its switch reads the row again when the source copy is gone (shared.services.tokens).
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any, Protocol
from uuid import UUID

from shared.domain.envelope import Keyring
from shared.domain.models import AuditEvent, Integration
from shared.domain.ports import Clock, RefreshStore, SecretStore, SecretStores
from shared.errors import BrokerError, SecretNotFound
from shared.services.credentials import PENDING_SECRET_PURPOSE, destroy_between, master_secret_payload

log = logging.getLogger("broker.secrets")
LEASE = timedelta(seconds=120)
Step = Callable[[str], None]


class MigrationRows(Protocol):
    """SqlSecretMigration."""

    def count(self) -> int: ...

    def rows(self, after: UUID | None, limit: int) -> list[Integration]: ...

    def last_moves(self, ids: Any) -> dict[UUID, tuple[str, str]]: ...

    def mark_unmarked(self, backend: str) -> int: ...

    def switch(
        self, integration: Integration, owner: str, backend: str, version: int, event: AuditEvent, now: Any
    ) -> bool: ...


@dataclass
class MigrationReport:
    moved: int = 0
    cleaned: int = 0  # switched by an earlier, interrupted run: only its source copy was left to delete
    missing: list[str] = field(default_factory=list)  # no readable payload in the source (reconnect them)
    busy: list[str] = field(default_factory=list)  # leased or changed meanwhile: run again
    failed: list[str] = field(default_factory=list)  # the read-back did not match, or a store refused

    def as_dict(self) -> dict[str, Any]:
        return {"moved": self.moved, "cleaned": self.cleaned, "missing": self.missing, "busy": self.busy,
                "failed": self.failed}  # fmt: skip


@dataclass
class SecretMigration:
    rows: MigrationRows
    leases: RefreshStore
    stores: SecretStores
    target_name: str
    keyring: Keyring
    clock: Clock
    actor: str
    step: Step = lambda _name: None  # a seam: tests pause or kill after a named step

    def run(self, *, dry_run: bool = False, batch: int = 100, advance: Callable[[int], None] = lambda _n: None,
            pause: float = 0.0) -> MigrationReport:  # fmt: skip
        report = MigrationReport()
        if not dry_run:
            self.rows.mark_unmarked(self.stores.default_name)
        after = None
        while rows := self.rows.rows(after, batch):
            after = rows[-1].id
            moves = self.rows.last_moves([row.id for row in rows])
            for row in rows:
                self._one(row, moves.get(row.id), report, dry_run)
                advance(1)
                if pause:
                    time.sleep(pause)
        return report

    def _backend(self, row: Integration) -> str:
        return row.secret_backend or self.stores.default_name

    @property
    def target(self) -> SecretStore:
        return self.stores.of(self.target_name)

    def _one(self, row: Integration, move: tuple[str, str] | None, report: MigrationReport, dry_run: bool) -> None:
        assert row.secret_ref is not None
        ref = row.secret_ref
        if self._backend(row) == self.target_name:
            source, target = move or (None, None)
            if target == self.target_name and source is not None and source != self.target_name:
                if not dry_run:
                    try:
                        self.stores.of(source).delete(ref)  # idempotent: a killed run may have left it
                    except BrokerError as error:
                        log.error("could not delete the %s copy of %s: %s", source, row.id, error.code)
                        report.failed.append(str(row.id))
                        return
                report.cleaned += 1
            return
        if dry_run:
            if self._payload(row) is None:
                report.missing.append(str(row.id))
            else:
                report.moved += 1
            return
        owner = f"migrate-{uuid.uuid4().hex[:12]}"
        claimed = self.leases.claim(row.id, owner, LEASE, self.clock.now())
        if claimed is None:
            report.busy.append(str(row.id))
            return
        if self._backend(claimed) == self.target_name:  # moved (or reconnected there) since it was listed
            self.leases.release(row.id, owner)
            return
        try:
            self._move(claimed, owner, report)
        except BrokerError as error:
            log.error("could not move the secret of %s: %s", row.id, error.code)
            report.failed.append(str(row.id))
        finally:
            self.leases.release(row.id, owner)  # a no-op after a switch, which released it

    def _payload(self, row: Integration) -> bytes | None:
        if row.pending_secret_ciphertext is not None and row.pending_secret_key_version is not None:
            token = self.keyring.open(
                row.pending_secret_ciphertext, key_version=row.pending_secret_key_version,
                purpose=PENDING_SECRET_PURPOSE, record=str(row.id),
            ).decode()  # fmt: skip
            return master_secret_payload(token, written_for=row.credential_version + 1)
        if row.secret_version is None:
            return None
        assert row.secret_ref is not None
        try:
            return self.stores.of(self._backend(row)).read(row.secret_ref, row.secret_version)
        except SecretNotFound:
            return None

    def _move(self, row: Integration, owner: str, report: MigrationReport) -> None:
        assert row.secret_ref is not None
        ref = row.secret_ref
        payload = self._payload(row)
        if payload is None:
            report.missing.append(str(row.id))
            return
        source_name, target = self._backend(row), self.target
        version = target.add_version(ref, payload, {"entity": row.entity_id, "provider": row.provider})
        self.step("after_copy")
        if target.read(ref, version) != payload:  # by number: strongly consistent on every backend
            target.destroy_version(ref, version)
            report.failed.append(str(row.id))
            return
        destroy_between(target, ref, 1, version)
        detail = {"from": source_name, "to": self.target_name, "source_version": row.secret_version,
                  "version": version, "pending": row.pending_secret_ciphertext is not None}  # fmt: skip
        event = AuditEvent(self.actor, "secret.migrated", "success", row.entity_id, row.id, row.provider, detail)
        if not self.rows.switch(row, owner, self.target_name, version, event, self.clock.now()):
            target.destroy_version(ref, version)  # fenced out: this copy must not outlive the attempt
            report.busy.append(str(row.id))
            return
        self.step("after_switch")
        self.stores.of(source_name).delete(ref)
        report.moved += 1
