"""The SecretStore port's contract, run unchanged on every backend (tests/contract/conftest.py builds them)."""

from __future__ import annotations

import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from uuid import uuid4

import pytest

from shared.domain.models import secret_id_for
from shared.domain.ports import SecretStore
from shared.errors import SecretNotFound, SecretStoreUnavailable


@pytest.fixture
def secret_id() -> str:
    return secret_id_for("contract", uuid4())


def test_versions_are_numbered_read_by_number_and_superseded_ones_destroyed(store: SecretStore, secret_id: str):
    assert store.enabled_versions(secret_id) == []
    assert store.add_version(secret_id, b'{"refresh_token": "one"}', {"provider": "oidc-test"}) == 1
    assert store.add_version(secret_id, b'{"refresh_token": "two"}', {"provider": "oidc-test"}) == 2
    assert store.read(secret_id, 1) == b'{"refresh_token": "one"}', "reads are by number, not latest"
    assert store.read(secret_id, 2) == b'{"refresh_token": "two"}'
    assert store.enabled_versions(secret_id) == [1, 2]

    store.destroy_version(secret_id, 1)
    store.destroy_version(secret_id, 1)  # already destroyed: fine
    store.destroy_version(secret_id, 99)  # never existed: fine
    assert store.enabled_versions(secret_id) == [2]
    with pytest.raises(SecretNotFound, match=rf"{secret_id}.*version 1"):
        store.read(secret_id, 1)
    assert store.read(secret_id, 2) == b'{"refresh_token": "two"}', "destroying one version keeps the others"
    assert store.add_version(secret_id, b"three", {}) == 3, "a destroyed number is never reused"

    store.delete(secret_id)
    store.delete(secret_id)  # idempotent
    assert store.enabled_versions(secret_id) == []
    with pytest.raises(SecretNotFound):
        store.read(secret_id, 3)


def test_a_missing_secret_or_version_is_secret_not_found(store: SecretStore, secret_id: str):
    with pytest.raises(SecretNotFound, match=rf"{secret_id}.*version 1\b"):
        store.read(secret_id, 1)
    store.add_version(secret_id, b"one", {})
    with pytest.raises(SecretNotFound, match="version 2"):
        store.read(secret_id, 2)
    store.destroy_version(f"{secret_id}-never", 1)
    store.delete(f"{secret_id}-never")


def test_payloads_are_opaque_bytes(store: SecretStore, secret_id: str):
    payload = bytes(range(256)) + b"\x00 end"
    number = store.add_version(secret_id, payload, {})
    assert store.read(secret_id, number) == payload


def test_labels_are_those_the_secret_was_created_with(store: SecretStore, secret_id: str):
    store.add_version(secret_id, b"one", {"provider": "oidc-test", "entity": "entity-1"})
    store.add_version(secret_id, b"two", {"provider": "other"})
    assert store.labels(secret_id) == {"provider": "oidc-test", "entity": "entity-1"}
    assert store.labels(f"{secret_id}-missing") == {}


def test_concurrent_writers_get_distinct_version_numbers(store: SecretStore, secret_id: str, backend: str):
    if backend == "database-sqlite":
        pytest.skip("SQLite serialises writers by locking the file; the embedded vault runs on PostgreSQL")
    with ThreadPoolExecutor(max_workers=6) as pool:
        numbers = list(pool.map(lambda i: store.add_version(secret_id, f"writer {i}".encode(), {}), range(12)))
    assert sorted(numbers) == list(range(1, 13))
    assert sorted(store.read(secret_id, n) for n in numbers) == sorted(f"writer {i}".encode() for i in range(12))


def test_stale_secrets_are_listed_by_prefix_and_age(store: SecretStore):
    prefix = f"sweep{uuid4().hex[:8]}"
    old, other = secret_id_for(prefix, uuid4()), secret_id_for(f"{prefix}x", uuid4())
    store.add_version(old, b"one", {"provider": "oidc-test"})
    store.add_version(other, b"one", {})
    later = datetime.now(UTC) + timedelta(minutes=5)
    assert store.stale_secret_ids(prefix, later) == [old], "only names under `<prefix>-`"
    assert store.stale_secret_ids(prefix, datetime.now(UTC) - timedelta(hours=1)) == [], "too young"
    # The refresh job's sweep looks only at a window of recent creations (orphans are born when a write is cut
    # short), so that a run's listing stays small however many secrets there are.
    since = datetime.now(UTC) - timedelta(hours=1)
    assert store.stale_secret_ids(prefix, later, created_after=since) == [old], "created within the window"
    assert store.stale_secret_ids(prefix, later, created_after=later) == [], "created before the window"


def test_check_passes_on_a_running_server(store: SecretStore):
    store.check()


def test_an_unreachable_server_is_secret_store_unavailable_on_every_call(unreachable: SecretStore):
    store = unreachable
    calls: list[Callable[[], object]] = [
        lambda: store.add_version("contract-x", b"one", {}), lambda: store.read("contract-x", 1),
        lambda: store.enabled_versions("contract-x"), lambda: store.destroy_version("contract-x", 1),
        lambda: store.delete("contract-x"), store.check, lambda: store.labels("contract-x"),
        lambda: store.stale_secret_ids("contract", datetime.now(UTC)),
    ]  # fmt: skip
    for call in calls:
        started = time.monotonic()
        with pytest.raises(SecretStoreUnavailable) as caught:
            call()
        assert (caught.value.code, caught.value.http_status) == ("secret_store_unavailable", 503)
        assert time.monotonic() - started < 8
