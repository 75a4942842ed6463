"""`broker rotate-key`: every ciphertext re-encrypted under the keyring's current data-key version.

Batched (keyset order, one transaction per batch), resumable and idempotent: what is left to do is simply every
ciphertext under an older version, so a run killed halfway is finished by running it again, and a second run
finds nothing. Safe while the service runs: each write is fenced on the ciphertext it replaces (see
adapters/sql_ciphertexts.py); a value that changed meanwhile was written by the engine under the current key, or
is retried by the next pass. `check` counts ciphertexts per key version, the evidence for retiring a key.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from shared.domain.envelope import Keyring
from shared.domain.ports import CiphertextStore as Ciphertexts
from shared.domain.ports import Clock
from shared.errors import BrokerError

log = logging.getLogger("broker.keys")
PASSES = 3  # a value changed under a pass (a refresh, a lease held) is tried again by the next one


@dataclass
class RotationReport:
    key_version: int
    rotated: dict[str, int] = field(default_factory=dict)
    changed: dict[str, int] = field(default_factory=dict)  # rewritten by someone else meanwhile, after every pass
    failed: dict[str, int] = field(default_factory=dict)  # could not be opened (key unavailable, corrupted)

    def as_dict(self) -> dict[str, Any]:
        return {"key_version": self.key_version, "rotated": self.rotated, "changed": self.changed,
                "failed": self.failed}  # fmt: skip


def check(ciphertexts: Ciphertexts, clock: Clock) -> dict[int, dict[str, int]]:
    return ciphertexts.count_by_version(clock.now())


def pending_count(ciphertexts: Ciphertexts, keyring: Keyring, clock: Clock) -> int:
    """How many ciphertexts are under a version older than the current one (the work of a run)."""
    current = keyring.current_version
    counts = ciphertexts.count_by_version(clock.now())
    return sum(sum(kinds.values()) for version, kinds in counts.items() if version < current)


def rotate(
    ciphertexts: Ciphertexts, keyring: Keyring, clock: Clock, kinds: tuple[str, ...], *, batch_size: int = 100,
    pause: float = 0.0, advance: Callable[[int], None] = lambda _n: None,
) -> RotationReport:  # fmt: skip
    """Re-encrypt every ciphertext of `kinds` under an older key version with the current one."""
    current = keyring.current_version
    report = RotationReport(current, dict.fromkeys(kinds, 0), dict.fromkeys(kinds, 0), dict.fromkeys(kinds, 0))
    for kind in kinds:
        unreadable: set[tuple[Any, ...]] = set()
        for attempt in range(PASSES):
            changed = _pass(ciphertexts, keyring, clock, kind, report, unreadable, batch_size, pause, advance)
            report.changed[kind] = changed
            if not changed:
                break
            time.sleep(0.2 * (attempt + 1))  # let the lease holder or the writer finish
        report.failed[kind] = len(unreadable)
    return report


def _pass(
    ciphertexts: Ciphertexts, keyring: Keyring, clock: Clock, kind: str, report: RotationReport,
    unreadable: set[tuple[Any, ...]], batch_size: int, pause: float, advance: Callable[[int], None],
) -> int:  # fmt: skip
    changed, after = 0, None
    while True:
        batch = ciphertexts.batch(kind, report.key_version, after, batch_size, clock.now())
        if not batch:
            return changed
        after = batch[-1].key
        items = []
        for sealed in batch:
            try:
                plaintext = keyring.open(
                    sealed.ciphertext, key_version=sealed.key_version, purpose=sealed.purpose, record=sealed.record
                )
            except BrokerError as error:  # the message names the kind and record, never a value
                if sealed.key not in unreadable:
                    log.error("cannot re-encrypt %s %s: %s", kind, sealed.record, error.code)
                unreadable.add(sealed.key)
                continue
            ciphertext, version = keyring.seal(plaintext, purpose=sealed.purpose, record=sealed.record)
            items.append((sealed, ciphertext, version))
        landed = ciphertexts.replace(items)
        report.rotated[kind] += sum(landed)
        changed += len(landed) - sum(landed)
        advance(len(batch))
        if pause:
            time.sleep(pause)
