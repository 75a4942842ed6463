"""GcpSecretManagerStore beyond the shared contract (tests/contract), through the real client library against the
local Secret Manager (gRPC and REST): labels, checksums, concurrent creation, every failure of every RPC."""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from uuid import uuid4

import grpc
import pytest
from google.api_core import exceptions as gexc
from google.cloud import secretmanager_v1 as sm

from shared.adapters.gcp_secret_store import GcpSecretManagerStore, sanitise_label_value
from shared.domain.models import secret_id_for
from shared.errors import SecretCorrupted, SecretStoreUnavailable
from tests.fakes.secret_manager_server import LocalSecretManager

PROJECT = "test-project"


@pytest.fixture
def server(secret_manager: LocalSecretManager) -> LocalSecretManager:
    return secret_manager


@pytest.fixture(scope="module", params=["grpc", "rest"])
def transport(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture(scope="module")
def client(secret_manager: LocalSecretManager, transport: str) -> Iterator[sm.SecretManagerServiceClient]:
    endpoint = secret_manager.grpc_endpoint if transport == "grpc" else secret_manager.rest_endpoint
    with GcpSecretManagerStore.build_client(endpoint) as built:
        yield built


@pytest.fixture
def store(client: sm.SecretManagerServiceClient, server: LocalSecretManager) -> Iterator[GcpSecretManagerStore]:
    yield GcpSecretManagerStore(PROJECT, client)
    server.clear_failures()  # a failed test must not leave an injected error for the next one


@pytest.fixture
def secret_id() -> str:
    return secret_id_for("broker-int", uuid4())


def _name(secret_id: str, version: int | str | None = None) -> str:
    name = f"projects/{PROJECT}/secrets/{secret_id}"
    return name if version is None else f"{name}/versions/{version}"


def test_the_fake_serves_latest_and_refuses_a_wrong_checksum(
    store: GcpSecretManagerStore, client: sm.SecretManagerServiceClient, secret_id: str
) -> None:
    store.add_version(secret_id, b"one", {})
    store.add_version(secret_id, b"two", {})
    assert client.access_secret_version(name=_name(secret_id, "latest")).payload.data == b"two"
    with pytest.raises(gexc.BadRequest, match="Checksum mismatch"):
        client.add_secret_version(parent=_name(secret_id), payload=sm.SecretPayload(data=b"three", data_crc32c=1))


def test_labels_are_sanitised_onto_the_secret(
    store: GcpSecretManagerStore, client: sm.SecretManagerServiceClient, secret_id: str
) -> None:
    labels = {"provider": "Google.Workspace", "tenant": "x" * 80, "plain": "acme_io-1"}
    store.add_version(secret_id, b"payload", labels)

    stored = dict(client.get_secret(name=_name(secret_id)).labels)
    assert stored == {key: sanitise_label_value(value) for key, value in labels.items()}
    assert re.fullmatch(r"google_workspace-[0-9a-f]{8}", stored["provider"])
    assert len(stored["tenant"]) == 63
    assert stored["plain"] == "acme_io-1", "a valid value is kept as it is"
    assert sanitise_label_value("Acme.io") != sanitise_label_value("acme_io"), "cleaning must not collide"


def test_a_bad_label_key_is_refused_before_any_call(store: GcpSecretManagerStore, secret_id: str) -> None:
    store.add_version(secret_id, b"one", {})
    with pytest.raises(ValueError, match="label key"):
        store.add_version(f"{secret_id}-new", b"one", {"Provider": "google"})


def test_a_concurrently_created_secret_is_reused(
    store: GcpSecretManagerStore,
    server: LocalSecretManager,
    client: sm.SecretManagerServiceClient,
    secret_id: str,
) -> None:
    client.create_secret(
        request={
            "parent": f"projects/{PROJECT}",
            "secret_id": secret_id,
            "secret": {"replication": {"automatic": {}}},
        }
    )
    server.fail_next("AddSecretVersion", grpc.StatusCode.NOT_FOUND)  # as if we looked before the other writer
    assert store.add_version(secret_id, b"mine", {}) == 1
    assert store.read(secret_id, 1) == b"mine"


def test_a_payload_that_fails_its_checksum_is_corrupted(
    store: GcpSecretManagerStore, server: LocalSecretManager, secret_id: str
) -> None:
    store.add_version(secret_id, b"refresh-token-value", {})
    server.tamper(_name(secret_id, 1), b"refresh-token-valuf")
    with pytest.raises(SecretCorrupted, match="CRC32C") as caught:
        store.read(secret_id, 1)
    assert "refresh-token" not in str(caught.value)


def test_permission_denied_is_unavailable_and_never_leads_to_creating_the_secret(
    store: GcpSecretManagerStore, server: LocalSecretManager, secret_id: str
) -> None:
    store.add_version(secret_id, b"one", {})
    server.fail_next("AccessSecretVersion", grpc.StatusCode.PERMISSION_DENIED, "caller lacks accessor")
    with pytest.raises(SecretStoreUnavailable, match="PERMISSION_DENIED") as caught:
        store.read(secret_id, 1)
    assert "caller lacks accessor" not in caught.value.message, "the service's own words can echo request data"

    creates = server.calls["CreateSecret"]
    server.fail_next("AddSecretVersion", grpc.StatusCode.PERMISSION_DENIED)
    with pytest.raises(SecretStoreUnavailable, match="PERMISSION_DENIED"):
        store.add_version(secret_id, b"two", {})
    assert server.calls["CreateSecret"] == creates, "only NOT_FOUND leads to creating the secret"


# Each RPC the store makes, and a call of the store that makes it (the secret exists with version 1).
CALLS: list[tuple[str, Callable[[GcpSecretManagerStore, str], object]]] = [
    ("AddSecretVersion", lambda store, sid: store.add_version(sid, b"two", {})),
    ("CreateSecret", lambda store, sid: store.add_version(f"{sid}-new", b"one", {})),
    ("AccessSecretVersion", lambda store, sid: store.read(sid, 1)),
    ("ListSecretVersions", lambda store, sid: store.enabled_versions(sid)),
    ("DestroySecretVersion", lambda store, sid: store.destroy_version(sid, 1)),
    ("DeleteSecret", lambda store, sid: store.delete(sid)),
    ("ListSecrets", lambda store, sid: store.stale_secret_ids("broker-int", datetime.now(UTC))),
    ("GetSecret", lambda store, sid: store.labels(sid)),
    ("GetSecret", lambda store, sid: store.check()),
]
OUTAGES = [grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.PERMISSION_DENIED, grpc.StatusCode.INTERNAL]


@pytest.mark.parametrize("code", OUTAGES)
@pytest.mark.parametrize(("rpc", "call"), CALLS, ids=[f"{rpc}-{n}" for n, (rpc, _) in enumerate(CALLS)])
def test_every_failure_of_the_service_is_secret_store_unavailable_within_the_timeout(
    client: sm.SecretManagerServiceClient, server: LocalSecretManager, secret_id: str, rpc: str, call, code: object
) -> None:
    store = GcpSecretManagerStore(PROJECT, client, timeout=1.0)
    store.add_version(secret_id, b"one", {})
    if rpc == "CreateSecret":
        server.fail_next("AddSecretVersion", grpc.StatusCode.NOT_FOUND)  # the secret is missing: create it
    server.fail_always(rpc, code, "request detail the caller must not see")  # an outage, not a blip
    started = time.monotonic()
    try:
        with pytest.raises(SecretStoreUnavailable) as caught:
            call(store, secret_id)
    finally:
        server.clear_failures()
    assert time.monotonic() - started < 5, "api_core's own retries must not outlast the store's timeout"
    assert (caught.value.code, caught.value.http_status) == ("secret_store_unavailable", 503)
    assert "request detail" not in caught.value.message


def test_check_reports_an_unavailable_service(store: GcpSecretManagerStore, server: LocalSecretManager) -> None:
    server.fail_next("GetSecret", grpc.StatusCode.UNAVAILABLE)
    with pytest.raises(SecretStoreUnavailable, match="secret manager unavailable: ServiceUnavailable"):
        store.check()


def test_labels_are_read_back_and_a_missing_secret_has_none(store: GcpSecretManagerStore, secret_id: str) -> None:
    store.add_version(secret_id, b"one", {"provider": "oidc-test", "entity": "Entity.1"})
    assert store.labels(secret_id) == {"provider": "oidc-test", "entity": sanitise_label_value("Entity.1")}
    assert store.labels(f"{secret_id}-missing") == {}


def test_credentials_that_cannot_be_found_are_secret_store_unavailable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GOOGLE_APPLICATION_CREDENTIALS", "/nonexistent/credentials.json")
    with pytest.raises(SecretStoreUnavailable, match="DefaultCredentialsError"):
        GcpSecretManagerStore.build_client()
