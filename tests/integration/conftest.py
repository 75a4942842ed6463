"""Fixtures for the refresh engine's tests: oidc-provider (strict rotation), a broker on PostgreSQL (and on MySQL
for a test marked ALSO_ON_MYSQL) and the local Secret Manager API server (or a real OpenBao server, where a module
sets `backend`)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from shared.bootstrap import Container
from tests.support.broker_env import BROKER_CLIENT, broker_env, in_process_broker, provider_file
from tests.support.oidc_provider import OidcProvider, running_oidc_provider


@pytest.fixture(scope="package")
def provider() -> Iterator[OidcProvider]:
    with running_oidc_provider([BROKER_CLIENT], access_token_ttl=600) as running:
        yield running


@pytest.fixture
def backend() -> str:
    """The master-secret backend of `env` (a module parametrises it to run its tests on OpenBao too)."""
    return "gcp"


@pytest.fixture
def env(database_url, secret_manager, provider, tmp_path, backend, request) -> dict[str, str]:
    provider.reset()
    secret_manager.clear_failures()
    environment = broker_env(database_url, secret_manager, provider_file(tmp_path, provider.issuer))
    if backend == "openbao":
        bao = request.getfixturevalue("openbao")
        environment |= {"SECRET_BACKEND": "openbao", "OPENBAO_ADDR": bao.addr, "OPENBAO_TOKEN": bao.root_token}
    return environment


@pytest.fixture
def app(env, monkeypatch) -> Iterator[Container]:
    with in_process_broker(env, monkeypatch) as built:
        yield built
