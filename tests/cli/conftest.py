"""The operators' CLI against real parts: PostgreSQL, the embedded vault (or the local Secret Manager API server),
and oidc-provider. Commands run through `shared.cli.main` in process (output captured), or as a subprocess where a
test kills one."""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest

from shared.bootstrap import Container
from shared.cli import main
from shared.config import get_settings
from shared.logs import configure_logging
from tests.support.broker_env import CLIENT_ID, CLIENT_SECRET, broker_env, in_process_broker, provider_file
from tests.support.oidc_provider import OidcProvider, running_oidc_provider


@pytest.fixture(scope="package")
def provider() -> Iterator[OidcProvider]:
    client = {
        "client_id": CLIENT_ID,
        "client_secret": CLIENT_SECRET,
        "redirect_uris": ["http://127.0.0.1:9/oauth/callback"],
    }
    with running_oidc_provider([client], access_token_ttl=600) as running:
        yield running


@pytest.fixture
def env(database_url, secret_manager, provider, tmp_path) -> dict[str, str]:
    """The embedded defaults on PostgreSQL (or MySQL, marked ALSO_ON_MYSQL): master secrets in the embedded vault
    (SECRET_BACKEND=database)."""
    provider.reset()
    secret_manager.clear_failures()
    environment = broker_env(database_url, secret_manager, provider_file(tmp_path, provider.issuer))
    return {**environment, "SECRET_BACKEND": "database", "LOCAL_DATA_DIR": str(tmp_path)}


@pytest.fixture
def app(env, monkeypatch) -> Iterator[Container]:
    with in_process_broker(env, monkeypatch) as built:
        yield built


@dataclass(frozen=True)
class Ran:
    code: int
    out: str
    err: str

    def json(self) -> Any:
        return json.loads(self.out)


@pytest.fixture
def broker(capsys, app) -> Any:
    """`broker(*args)`: run one command with the test's environment; returns its exit code and output."""

    def run(*args: str) -> Ran:
        capsys.readouterr()
        try:
            code = main(list(args))
        finally:  # the command's log handler wrote to the captured stderr: point logging back at the real one
            configure_logging(get_settings(), stream=sys.__stderr__)
        captured = capsys.readouterr()
        return Ran(code, captured.out, captured.err)

    return run
