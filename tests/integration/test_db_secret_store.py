"""The embedded vault beyond the shared contract (tests/contract): sealing, integrity, key rotation."""

from __future__ import annotations

import pytest
from sqlalchemy import Engine, select, update

from shared.adapters.db_secret_store import DatabaseSecretStore
from shared.adapters.orm import VaultSecretVersionRow
from shared.domain.clock import FixedClock
from shared.domain.envelope import Keyring, new_data_key
from shared.errors import SecretCorrupted


@pytest.fixture
def store(db_engine: Engine, keyring: Keyring, clock: FixedClock) -> DatabaseSecretStore:
    return DatabaseSecretStore(db_engine, keyring, clock)


def test_payload_is_sealed_not_stored_in_clear(store: DatabaseSecretStore, db_engine: Engine) -> None:
    store.add_version("s1", b"refresh-token-value", {})
    with db_engine.connect() as conn:
        raw = conn.execute(select(VaultSecretVersionRow.ciphertext)).scalar_one()
    assert raw is not None
    assert b"refresh-token-value" not in raw


def test_ciphertext_moved_to_another_version_fails_its_integrity_check(
    store: DatabaseSecretStore, db_engine: Engine
) -> None:
    store.add_version("s1", b"first", {})
    store.add_version("s1", b"second", {})
    with db_engine.begin() as conn:
        first = conn.execute(
            select(VaultSecretVersionRow.ciphertext).where(VaultSecretVersionRow.version == 1)
        ).scalar_one()
        conn.execute(update(VaultSecretVersionRow).where(VaultSecretVersionRow.version == 2).values(ciphertext=first))
    with pytest.raises(SecretCorrupted, match="integrity"):
        store.read("s1", 2)


def test_rotated_data_key_still_opens_old_versions(db_engine: Engine, clock: FixedClock) -> None:
    old = {1: new_data_key()}
    DatabaseSecretStore(db_engine, Keyring(old), clock).add_version("s1", b"sealed with key 1", {})
    rotated = DatabaseSecretStore(db_engine, Keyring({**old, 2: new_data_key()}), clock)
    rotated.add_version("s1", b"sealed with key 2", {})
    assert rotated.read("s1", 1) == b"sealed with key 1"
    assert rotated.read("s1", 2) == b"sealed with key 2"
    with db_engine.connect() as conn:
        versions = conn.execute(select(VaultSecretVersionRow.key_version).order_by("version")).scalars().all()
    assert versions == [1, 2]
