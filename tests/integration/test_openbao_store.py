"""OpenBaoKvStore beyond the shared contract (tests/contract), against real OpenBao servers: check-and-set, the
three ways to log in, and a server that is sealed, stopped and started again on the same data."""

from __future__ import annotations

import json
from typing import Any
from uuid import uuid4

import pytest
import requests
from requests.adapters import BaseAdapter

from shared.adapters.openbao_client import OpenBaoAuth, OpenBaoClient
from shared.adapters.openbao_secret_store import OpenBaoKvStore
from shared.domain.models import secret_id_for
from shared.errors import SecretStoreUnavailable
from tests.support.openbao import FileServer, OpenBao

POLICY = 'path "secret/data/*" { capabilities = ["create", "read", "update"] }\n' + "".join(
    f'path "secret/{p}/*" {{ capabilities = ["create", "read", "update", "delete", "list"] }}\n'
    for p in ("metadata", "destroy")
) + 'path "secret/metadata/" { capabilities = ["list"] }\n'  # fmt: skip


def _store(bao: OpenBao, auth: OpenBaoAuth | None = None, **kw: Any) -> OpenBaoKvStore:
    return OpenBaoKvStore(OpenBaoClient(bao.addr, auth or OpenBaoAuth("token", token=bao.root_token), **kw))


@pytest.fixture
def secret_id() -> str:
    return secret_id_for("bao", uuid4())


def test_every_write_is_check_and_set(openbao: OpenBao, secret_id: str) -> None:
    store = _store(openbao)
    assert store.add_version(secret_id, b"one", {"provider": "oidc-test"}) == 1
    with pytest.raises(RuntimeError, match="check-and-set"):  # the secret refuses a write without cas
        openbao.api("POST", f"secret/data/{secret_id}", {"data": {"payload": "eA=="}})
    with pytest.raises(RuntimeError, match="check-and-set"):  # and one that did not see version 1
        openbao.api("POST", f"secret/data/{secret_id}", {"data": {"payload": "eA=="}, "options": {"cas": 0}})
    assert store.add_version(secret_id, b"two", {}) == 2
    assert store.read(secret_id, 1) == b"one"
    meta = openbao.api("GET", f"secret/metadata/{secret_id}")["data"]
    assert (meta["cas_required"], meta["custom_metadata"]) == (True, {"provider": "oidc-test"})


def test_approle_logs_in_and_again_when_its_token_is_revoked(openbao: OpenBao, secret_id: str) -> None:
    role_id, role_secret = openbao.approle("broker-test", POLICY)
    client = OpenBaoClient(openbao.addr, OpenBaoAuth("approle", role_id=role_id, secret_id=role_secret))
    store = OpenBaoKvStore(client)
    assert store.add_version(secret_id, b"one", {}) == 1
    token = client.call(lambda c: c.token)
    openbao.api("POST", "auth/token/revoke", {"token": token})
    assert store.read(secret_id, 1) == b"one", "a refused token means: log in again"
    assert client.call(lambda c: c.token) != token
    store.destroy_version(secret_id, 1)
    assert store.enabled_versions(secret_id) == []


def test_a_wrong_token_or_secret_id_is_secret_store_unavailable(openbao: OpenBao, secret_id: str) -> None:
    with pytest.raises(SecretStoreUnavailable, match="openbao unavailable: Forbidden") as caught:
        _store(openbao, OpenBaoAuth("token", token="not-a-token")).read(secret_id, 1)
    assert "not-a-token" not in caught.value.message
    role_id, _ = openbao.approle("broker-test-2", POLICY)
    with pytest.raises(SecretStoreUnavailable, match="openbao unavailable"):
        _store(openbao, OpenBaoAuth("approle", role_id=role_id, secret_id="wrong")).check()


class Recording(BaseAdapter):
    """The HTTP transport seam: answers OpenBao's gcp login and a metadata read, and records every request."""

    def __init__(self) -> None:
        super().__init__()
        self.requests: list[requests.PreparedRequest] = []

    def send(self, request: requests.PreparedRequest, **_kw: Any) -> requests.Response:  # type: ignore[override]
        self.requests.append(request)
        response = requests.Response()
        response.request, response.url = request, str(request.url)
        body: dict[str, Any]
        if str(request.url).endswith("/v1/auth/gcp/login"):
            response.status_code = 200
            body = {"auth": {"client_token": "token-from-gcp-login", "lease_duration": 600}}
        else:
            response.status_code, body = 404, {"errors": []}
        response._content = json.dumps(body).encode()
        response.headers["Content-Type"] = "application/json"
        return response

    def close(self) -> None:
        pass


def test_gcp_auth_logs_in_with_a_jwt_signed_for_the_role() -> None:
    # Google Cloud is not reachable here: the signer (IAM Credentials' signJwt in production) is injected, and
    # OpenBao's side is answered at the HTTP transport, which records what the broker sent.
    claims: list[dict[str, Any]] = []

    def signer(payload: dict[str, Any]) -> str:
        claims.append(payload)
        return "signed.jwt.value"

    transport = Recording()
    session = requests.Session()
    session.mount("http://", transport)
    auth = OpenBaoAuth("gcp", role="broker-run", signer=signer)
    store = OpenBaoKvStore(OpenBaoClient("http://bao.invalid:8200", auth, session=session))
    store.check()
    login, probe = transport.requests
    assert (login.method, login.url) == ("POST", "http://bao.invalid:8200/v1/auth/gcp/login")
    assert json.loads(login.body or b"{}") == {"role": "broker-run", "jwt": "signed.jwt.value"}
    (claim,) = claims
    assert claim["aud"] == "vault/broker-run"
    assert 0 < claim["exp"] - claim["iat"] <= 900, "the gcp auth method refuses JWTs living over 15 minutes"
    assert probe.headers["X-Vault-Token"] == "token-from-gcp-login"


def test_a_sealed_or_stopped_server_is_unavailable_and_loses_nothing(tmp_path, secret_id: str) -> None:
    server = FileServer(tmp_path / "bao")
    server.start()
    try:
        store = _store(server, timeout=2)
        assert [store.add_version(secret_id, f"v{n}".encode(), {"provider": "p"}) for n in (1, 2)] == [1, 2]
        server.seal()
        calls = [lambda: store.read(secret_id, 1), lambda: store.add_version(secret_id, b"x", {}), store.check,
                 lambda: store.enabled_versions(secret_id), lambda: store.destroy_version(secret_id, 1)]  # fmt: skip
        for call in calls:
            with pytest.raises(SecretStoreUnavailable, match="openbao unavailable: VaultDown") as caught:
                call()
            assert (caught.value.code, caught.value.http_status) == ("secret_store_unavailable", 503)
        server.unseal()
        assert store.read(secret_id, 1) == b"v1"
        server.stop()
        with pytest.raises(SecretStoreUnavailable, match="openbao unavailable: ConnectionError"):
            store.read(secret_id, 2)
        server.start()  # the same data, unsealed again
        assert (store.read(secret_id, 1), store.read(secret_id, 2)) == (b"v1", b"v2")
        assert store.enabled_versions(secret_id) == [1, 2]
        assert store.add_version(secret_id, b"v3", {}) == 3
        assert store.labels(secret_id) == {"provider": "p"}
    finally:
        server.stop()
