"""Every ciphertext sealed under the data key, by kind, for `broker rotate-key` (PostgreSQL and SQLite).

Kinds, with the purpose and record their associated data binds them to (shared.domain.envelope):
- `access_token`: entity_integrations.access_token_ciphertext, purpose `access_token`, record the integration id;
- `pending_refresh_token`: a rotated token still in the row (pending_secret_ciphertext), purpose
  `pending_refresh_token`, record the integration id;
- `pkce_verifier`: oauth_states.code_verifier_ciphertext of live flows (unspent, unexpired: no other is ever opened
  again, and retention deletes them), purpose `pkce_verifier`, record the state id;
- `vault_secret`: the embedded vault's versions that still hold a payload, purpose `vault-secret`, record
  `<secret id>/<version>`.

A re-encrypted value is written with a conditional UPDATE on the ciphertext that was read (the fence): a refresh,
a reconnect, a consumed state or a destroyed version that wrote meanwhile is never overwritten. A pending token is
rewritten only while no worker holds the row's lease, so a refresh settling it is never fenced out by the rotation.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Engine, and_, func, literal, or_, select, tuple_, update

from shared.adapters.db_clock import db_now
from shared.adapters.orm import IntegrationRow, OAuthStateRow, VaultSecretVersionRow
from shared.domain.envelope import CIPHERTEXT_KINDS as KINDS
from shared.domain.envelope import Sealed


@dataclass(frozen=True)
class _Kind:
    table: Any
    keys: tuple[Any, ...]
    ciphertext: Any
    version: Any
    purpose: str

    def record(self, key: tuple[Any, ...]) -> str:
        return "/".join(str(part) for part in key)

    def live(self, now: datetime) -> list[Any]:
        if self.table is OAuthStateRow:
            return [OAuthStateRow.consumed_at.is_(None), OAuthStateRow.expires_at > now]
        return []

    def fence(self) -> list[Any]:
        if self.table is OAuthStateRow:
            return [OAuthStateRow.consumed_at.is_(None)]
        if self.ciphertext is IntegrationRow.pending_secret_ciphertext:  # never under a worker settling it
            return [or_(IntegrationRow.lease_until.is_(None), IntegrationRow.lease_until <= db_now())]
        return []


R, S, V = IntegrationRow, OAuthStateRow, VaultSecretVersionRow
_KINDS = {
    "access_token": _Kind(R, (R.id,), R.access_token_ciphertext, R.access_token_key_version, "access_token"),
    "pending_refresh_token": _Kind(
        R, (R.id,), R.pending_secret_ciphertext, R.pending_secret_key_version, "pending_refresh_token"
    ),
    "pkce_verifier": _Kind(S, (S.id,), S.code_verifier_ciphertext, S.key_version, "pkce_verifier"),
    "vault_secret": _Kind(V, (V.secret_id, V.version), V.ciphertext, V.key_version, "vault-secret"),
}


class SqlCiphertexts:
    def __init__(self, engine: Engine) -> None:
        self._engine = engine

    def count_by_version(self, now: datetime) -> dict[int, dict[str, int]]:
        """{key version: {kind: ciphertexts}} over every kind (live PKCE verifiers only)."""
        counts: dict[int, dict[str, int]] = {}
        with self._engine.connect() as conn:
            for name, kind in _KINDS.items():
                statement = (
                    select(kind.version, func.count())
                    .where(kind.ciphertext.is_not(None), kind.version.is_not(None), *kind.live(now))
                    .group_by(kind.version)
                )
                for version, count in conn.execute(statement):
                    counts.setdefault(int(version), dict.fromkeys(KINDS, 0))[name] = int(count)
        return counts

    def batch(self, name: str, below: int, after: tuple[Any, ...] | None, limit: int, now: datetime) -> list[Sealed]:
        """Up to `limit` ciphertexts of `name` under a key version below `below`, in key order after `after`."""
        kind = _KINDS[name]
        statement = select(*kind.keys, kind.ciphertext, kind.version).where(
            kind.ciphertext.is_not(None), kind.version.is_not(None), kind.version < below, *kind.live(now)
        )
        if after is not None:
            bound = (literal(value, column.type) for column, value in zip(kind.keys, after, strict=True))
            statement = statement.where(tuple_(*kind.keys) > tuple_(*bound))
        statement = statement.order_by(*kind.keys).limit(limit)
        found = []
        with self._engine.connect() as conn:
            for row in conn.execute(statement):
                key = tuple(row[: len(kind.keys)])
                ciphertext, version = row[len(kind.keys)], row[len(kind.keys) + 1]
                found.append(Sealed(name, key, kind.purpose, kind.record(key), bytes(ciphertext), int(version)))
        return found

    def replace(self, items: Sequence[tuple[Sealed, bytes, int]]) -> list[bool]:
        """Write each (read, new ciphertext, its key version) in one transaction, each fenced on the ciphertext
        read; whether each landed."""
        landed = []
        with self._engine.begin() as conn:
            for sealed, ciphertext, version in items:
                kind = _KINDS[sealed.kind]
                where = and_(
                    *(column == value for column, value in zip(kind.keys, sealed.key, strict=True)),
                    kind.ciphertext == sealed.ciphertext, kind.version == sealed.key_version, *kind.fence(),
                )  # fmt: skip
                values = {kind.ciphertext.key: ciphertext, kind.version.key: version}
                landed.append(conn.execute(update(kind.table).where(where).values(**values)).rowcount == 1)
        return landed
