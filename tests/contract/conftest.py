"""One SecretStore per backend, each on its real server: the embedded vault on PostgreSQL, MySQL and SQLite, Secret
Manager (the local API server, gRPC and REST), OpenBao (a dev server) and AWS Secrets Manager (moto's server).
The contract tests take `store` and run unchanged on every one of them."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from shared.domain.clock import SystemClock
from shared.domain.envelope import Keyring, new_data_key
from shared.domain.ports import SecretStore
from tests.support.postgres import free_port

BACKENDS = ["database-postgresql", "database-mysql", "database-sqlite", "gcp-grpc", "gcp-rest", "openbao", "aws"]


def database_store(url: str) -> Iterator[SecretStore]:
    from shared.adapters.db import engine_for_url
    from shared.adapters.db_secret_store import DatabaseSecretStore

    engine = engine_for_url(url) if url.startswith("sqlite") else engine_for_url(url, pool_size=8)
    yield DatabaseSecretStore(engine, Keyring({1: new_data_key()}), SystemClock())
    engine.dispose()


def gcp_store(endpoint: str, timeout: float = 10.0) -> Iterator[SecretStore]:
    from shared.adapters.gcp_secret_store import GcpSecretManagerStore

    with GcpSecretManagerStore.build_client(endpoint) as client:
        yield GcpSecretManagerStore("contract-project", client, timeout=timeout)


def openbao_store(addr: str, token: str, timeout: float = 10.0) -> SecretStore:
    from shared.adapters.openbao_client import OpenBaoAuth, OpenBaoClient
    from shared.adapters.openbao_secret_store import OpenBaoKvStore

    return OpenBaoKvStore(OpenBaoClient(addr, OpenBaoAuth("token", token=token), timeout=timeout))


def aws_store(endpoint: str, timeout: float = 10.0) -> SecretStore:
    from shared.adapters.aws_secret_store import AwsSecretsManagerStore
    from tests.support import moto

    return AwsSecretsManagerStore(moto.client(endpoint, timeout))


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def store(backend: str, request: pytest.FixtureRequest) -> Iterator[SecretStore]:
    if backend.startswith("database-"):
        url = request.getfixturevalue({"postgresql": "pg_url", "mysql": "mysql_url"}.get(backend[9:], "sqlite_url"))
        yield from database_store(url)
    elif backend.startswith("gcp-"):
        server = request.getfixturevalue("secret_manager")
        yield from gcp_store(server.grpc_endpoint if backend == "gcp-grpc" else server.rest_endpoint)
        server.clear_failures()
    elif backend == "openbao":
        bao = request.getfixturevalue("openbao")
        yield openbao_store(bao.addr, bao.root_token)
    else:
        yield aws_store(request.getfixturevalue("aws_endpoint"))


@pytest.fixture
def unreachable(backend: str) -> Iterator[SecretStore]:
    """The same backend's store pointed at a port nothing listens on (timeouts of 1 s)."""
    nowhere = f"127.0.0.1:{free_port()}"
    if backend == "database-mysql":
        yield from database_store(f"mysql+pymysql://broker:x@{nowhere}/broker")
    elif backend.startswith("database-"):
        yield from database_store(f"postgresql+pg8000://broker:x@{nowhere}/broker")
    elif backend == "gcp-grpc":
        yield from gcp_store(nowhere, timeout=1.0)
    elif backend == "gcp-rest":
        yield from gcp_store(f"http://{nowhere}", timeout=1.0)
    elif backend == "openbao":
        yield openbao_store(f"http://{nowhere}", "any-token", timeout=1.0)
    else:
        yield aws_store(f"http://{nowhere}", timeout=1.0)
