"""SECRET_BACKEND=openbao over real HTTP, against a real OpenBao server that is sealed mid-way: every endpoint that
needs the secret store answers 503 `secret_store_unavailable` (never a 500), stores nothing it cannot finish, and
works again, with nothing lost, once the server is unsealed."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
from sqlalchemy import func, select

from shared.adapters.db import engine_for_url
from shared.adapters.orm import IntegrationRow
from tests.support.broker_env import broker_env, provider_file
from tests.support.id_tokens import TestIssuer, running_issuer
from tests.support.openapi import assert_conforms
from tests.support.openbao import FileServer
from tests.support.postgres import DatabaseFactory
from tests.support.processes import Served, serving_function

INTERNAL_KEY = "internal-key-for-the-openbao-tests-0123"
API_KEY = "sk-live-abcdefghijklmnopqrstuvwxyz012345"


class Stack:
    def __init__(self, served: dict[str, Served], issuer: TestIssuer, bao: FileServer, url: str) -> None:
        self.served, self.issuer, self.bao, self.url = served, issuer, bao, url

    def call(self, method: str, path: str, template: str, **kwargs: Any) -> requests.Response:
        headers = {"Authorization": f"Bearer {self.issuer.mint('alice')}"}
        response = requests.request(method, self.served["integrations"] + path, headers=headers, timeout=30, **kwargs)
        assert_conforms(response, method, template)
        return response

    def fetch(self, integration_id: str) -> requests.Response:
        url = f"{self.served['token_fetch']}/token/{integration_id}"
        response = requests.get(url, headers={"Authorization": f"Bearer {INTERNAL_KEY}"}, timeout=30)
        assert_conforms(response, "GET", "/token/{integration_id}")
        return response

    def rows(self) -> int:
        engine = engine_for_url(self.url)
        try:
            with engine.connect() as conn:
                return int(conn.execute(select(func.count()).select_from(IntegrationRow)).scalar_one())
        finally:
            engine.dispose()


@pytest.fixture(scope="module")
def stack(pg_databases: DatabaseFactory, secret_manager, tmp_path_factory) -> Iterator[Stack]:
    bao = FileServer(Path(tmp_path_factory.mktemp("bao")))
    bao.start()
    name = pg_databases.create()
    try:
        with running_issuer() as issuer:
            providers = provider_file(Path(tmp_path_factory.mktemp("catalog")), "http://127.0.0.1:9")
            env = broker_env(
                pg_databases.server.url(name), secret_manager, providers, AUTH_MODE="oidc", AUTH_ISSUER=issuer.url,
                AUTH_AUDIENCE="broker-frontend", INTERNAL_API_KEYS=INTERNAL_KEY, SECRET_BACKEND="openbao",
                OPENBAO_ADDR=bao.addr, OPENBAO_TOKEN=bao.root_token,
            )  # fmt: skip
            with (
                serving_function("integrations", env) as integrations,
                serving_function("token_fetch", env) as token_fetch,
            ):
                yield Stack(
                    {"integrations": integrations, "token_fetch": token_fetch}, issuer, bao, env["DATABASE_URL"]
                )
    finally:
        bao.stop()
        pg_databases.drop(name)


def _unavailable(response: requests.Response) -> None:
    assert (response.status_code, response.json()["error"]["code"]) == (503, "secret_store_unavailable"), response.text


def test_a_sealed_openbao_is_503_everywhere_and_loses_nothing(stack: Stack) -> None:
    body = {"provider": "openai", "credentials": {"api_key": API_KEY}}
    created = stack.call("POST", "/integrations", "/integrations", json=body)
    assert created.status_code == 201, created.text
    integration_id = created.json()["id"]
    path = f"/integrations/{integration_id}"

    stack.bao.seal()
    try:
        rows = stack.rows()
        _unavailable(stack.call("POST", "/integrations", "/integrations", json=body))
        assert stack.rows() == rows, "nothing stored"
        _unavailable(stack.fetch(integration_id))  # not read before the seal: nothing cached
        _unavailable(stack.call("POST", f"{path}/test", "/integrations/{integration_id}/test"))
        ready = requests.get(stack.served["integrations"] + "/ready", timeout=30)
        assert ready.status_code == 503
        assert "openbao unavailable: VaultDown" in ready.text
        assert stack.bao.root_token not in ready.text
    finally:
        stack.bao.unseal()

    fetched = stack.fetch(integration_id)
    assert fetched.status_code == 200, fetched.text
    assert fetched.json()["credentials"] == {"api_key": API_KEY}, "nothing lost"
    assert stack.call("GET", path, "/integrations/{integration_id}").json()["status"] == "active"
    assert stack.call("DELETE", path, "/integrations/{integration_id}").status_code == 200
    with pytest.raises(RuntimeError, match="404"):  # deleted: metadata and every version
        stack.bao.api("GET", f"secret/metadata/broker-int-{integration_id}")
