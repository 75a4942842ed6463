"""The embedded vault on PostgreSQL and SQLite: versions, destruction, integrity, concurrency."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import pytest
from sqlalchemy import Engine, select, update

from shared.adapters.db_secret_store import DatabaseSecretStore
from shared.adapters.orm import VaultSecretVersionRow
from shared.domain.clock import FixedClock
from shared.domain.envelope import Keyring, new_data_key
from shared.errors import SecretCorrupted, SecretNotFound, SecretStoreUnavailable
from tests.support.postgres import free_port


@pytest.fixture
def store(db_engine: Engine, keyring: Keyring, clock: FixedClock) -> DatabaseSecretStore:
    return DatabaseSecretStore(db_engine, keyring, clock)


def test_versions_round_trip_and_superseded_ones_are_destroyed(store: DatabaseSecretStore) -> None:
    assert store.enabled_versions("s1") == []
    v1 = store.add_version("s1", b'{"refresh_token": "one"}', {"provider": "google"})
    v2 = store.add_version("s1", b'{"refresh_token": "two"}', {"provider": "google"})
    assert (v1, v2) == (1, 2)
    assert store.read("s1", 1) == b'{"refresh_token": "one"}'
    assert store.read("s1", 2) == b'{"refresh_token": "two"}'
    assert store.enabled_versions("s1") == [1, 2]

    store.destroy_version("s1", 1)
    store.destroy_version("s1", 1)  # idempotent
    assert store.enabled_versions("s1") == [2]
    with pytest.raises(SecretNotFound, match="s1 has no readable version 1"):
        store.read("s1", 1)
    assert store.add_version("s1", b"three", {}) == 3, "destroyed numbers are never reused"

    store.delete("s1")
    assert store.enabled_versions("s1") == []
    with pytest.raises(SecretNotFound):
        store.read("s1", 3)


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


def test_concurrent_writers_get_distinct_version_numbers(pg_url: str, keyring: Keyring, clock: FixedClock) -> None:
    from shared.adapters.db import engine_for_url

    engine = engine_for_url(pg_url, pool_size=8)
    store = DatabaseSecretStore(engine, keyring, clock)
    with ThreadPoolExecutor(max_workers=8) as pool:
        numbers = list(pool.map(lambda i: store.add_version("shared", str(i).encode(), {}), range(16)))
    engine.dispose()
    assert sorted(numbers) == list(range(1, 17))


def test_check_passes_on_a_migrated_database(store: DatabaseSecretStore) -> None:
    store.check()


def test_an_unreachable_database_is_secret_store_unavailable_on_every_call(keyring: Keyring, clock: FixedClock) -> None:
    from shared.adapters.db import engine_for_url

    engine = engine_for_url(f"postgresql+pg8000://broker:x@127.0.0.1:{free_port()}/broker")
    store = DatabaseSecretStore(engine, keyring, clock)
    calls = [
        lambda: store.add_version("s1", b"one", {}), lambda: store.read("s1", 1), lambda: store.enabled_versions("s1"),
        lambda: store.destroy_version("s1", 1), lambda: store.delete("s1"), store.check,
        lambda: store.stale_secret_ids("broker-int", clock.now()), lambda: store.labels("s1"),
    ]  # fmt: skip
    for call in calls:
        with pytest.raises(SecretStoreUnavailable, match="embedded vault unavailable"):
            call()
    engine.dispose()


def test_labels_are_those_the_secret_was_created_with(store: DatabaseSecretStore) -> None:
    store.add_version("s1", b"one", {"provider": "oidc-test", "entity": "Entity.1"})
    store.add_version("s1", b"two", {"provider": "other"})
    assert store.labels("s1") == {"provider": "oidc-test", "entity": "Entity.1"}
    assert store.labels("missing") == {}
