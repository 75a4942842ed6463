"""`broker migrate-secrets --to <backend>`: every master secret moved from the configured backend to another.

Per integration (each under the engine's lease, so no refresh runs on it meanwhile):
1. the live payload: a pending rotated token in the row, else the pinned version read from the source by number;
2. added to the target as a new version, and read back from it by that number and compared;
3. the target's older versions (left by an interrupted earlier attempt) destroyed by number;
4. the row switched in one fenced transaction: pinned to the target's version, pending copy cleared, fencing
   counter bumped, and a `secret.migrated` audit event written (the run's progress record);
5. the source secret deleted (every version).
A run killed anywhere is finished by running it again: a switched row (its newest secret.migrated event names
the target) only has its source deleted; an unswitched one is copied again and step 3 removes the stray copy. A
finished run leaves one live copy of each secret, in the target.

The row has no per-row backend, so between the first switch and the moment every instance runs with
SECRET_BACKEND set to the target, nothing may read master secrets: the run is done with the service stopped (the
README's "Moving secrets between backends" says how, and what the downtime is).
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
from shared.domain.ports import Clock, RefreshStore, SecretStore
from shared.errors import BrokerError, SecretNotFound
from shared.services.credentials import PENDING_SECRET_PURPOSE, destroy_between, master_secret_payload

log = logging.getLogger("broker.secrets")
LEASE = timedelta(seconds=120)
Step = Callable[[str], None]


class MigrationRows(Protocol):
    """SqlSecretMigration."""

    def count(self) -> int: ...

    def rows(self, after: UUID | None, limit: int) -> list[Integration]: ...

    def last_destination(self, ids: Any) -> dict[UUID, str]: ...

    def switch(self, integration: Integration, owner: str, version: int, event: AuditEvent, now: Any) -> bool: ...


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
    source: SecretStore
    target: SecretStore
    source_name: str
    target_name: str
    keyring: Keyring
    clock: Clock
    actor: str
    step: Step = lambda _name: None  # a seam: tests pause or kill after a named step

    def run(self, *, dry_run: bool = False, batch: int = 100, advance: Callable[[int], None] = lambda _n: None,
            pause: float = 0.0) -> MigrationReport:  # fmt: skip
        report = MigrationReport()
        after = None
        while rows := self.rows.rows(after, batch):
            after = rows[-1].id
            done = self.rows.last_destination([row.id for row in rows])
            for row in rows:
                self._one(row, done.get(row.id) == self.target_name, report, dry_run)
                advance(1)
                if pause:
                    time.sleep(pause)
        return report

    def _one(self, row: Integration, switched: bool, report: MigrationReport, dry_run: bool) -> None:
        assert row.secret_ref is not None
        ref = row.secret_ref
        if switched:
            if not dry_run:
                self.source.delete(ref)
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
            return self.source.read(row.secret_ref, row.secret_version)
        except SecretNotFound:
            return None

    def _move(self, row: Integration, owner: str, report: MigrationReport) -> None:
        assert row.secret_ref is not None
        ref = row.secret_ref
        payload = self._payload(row)
        if payload is None:
            report.missing.append(str(row.id))
            return
        version = self.target.add_version(ref, payload, {"entity": row.entity_id, "provider": row.provider})
        self.step("after_copy")
        if self.target.read(ref, version) != payload:  # by number: strongly consistent on every backend
            self.target.destroy_version(ref, version)
            report.failed.append(str(row.id))
            return
        destroy_between(self.target, ref, 1, version)
        detail = {"from": self.source_name, "to": self.target_name, "source_version": row.secret_version,
                  "version": version, "pending": row.pending_secret_ciphertext is not None}  # fmt: skip
        event = AuditEvent(self.actor, "secret.migrated", "success", row.entity_id, row.id, row.provider, detail)
        if not self.rows.switch(row, owner, version, event, self.clock.now()):
            self.target.destroy_version(ref, version)  # fenced out: this copy must not outlive the attempt
            report.busy.append(str(row.id))
            return
        self.step("after_switch")
        self.source.delete(ref)
        report.moved += 1
