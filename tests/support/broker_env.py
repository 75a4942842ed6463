"""A broker wired to real parts for integration tests: PostgreSQL, the local Secret Manager, oidc-provider."""

from __future__ import annotations

import base64
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import requests

from shared.bootstrap import Container
from shared.config import load_settings
from tests.fakes.secret_manager_server import LocalSecretManager
from tests.support.oidc_provider import OidcProvider

CLIENT_ID = "broker"
CLIENT_SECRET = "broker-test-secret-value"
PROJECT = "refresh-test"
DATA_KEY = base64.b64encode(b"r" * 32).decode()
BASE = "http://127.0.0.1:9"  # the callback is never requested: tests hand its query to the flow directly
# The broker's client at oidc-provider (running_oidc_provider([BROKER_CLIENT], ...)).
BROKER_CLIENT = {"client_id": CLIENT_ID, "client_secret": CLIENT_SECRET, "redirect_uris": [BASE + "/oauth/callback"]}


def provider_file(directory: Path, issuer: str, *, lifetime: int = 3600, extra: dict[str, str] | None = None) -> Path:
    """A PROVIDERS_FILE with `oidc-test` (the oidc-provider at `issuer`) and, from `extra`, entries of the same
    server with other settings: {provider id: extra YAML lines, each indented by four spaces}."""
    entries = {
        "oidc-test": "    scopes: [openid, email]\n    identity: {source: id_token, subject: sub, email: email}\n"
    }
    for provider_id, lines in (extra or {}).items():
        entries[provider_id] = lines + (
            "" if "identity:" in lines else "    identity: {source: id_token, subject: sub}\n"
        )
    text = "providers:\n" + "".join(
        f"  {provider_id}:\n    display_name: {provider_id}\n    auth_mode: oauth2\n    issuer: {issuer}\n"
        f"    refresh_token_rotates: true\n    default_token_lifetime: {lifetime}\n    refresh_margin: 120\n{lines}"
        for provider_id, lines in entries.items()
    )
    path = directory / "providers.yaml"
    path.write_text(text, encoding="utf-8")
    return path


def broker_env(
    database_url: str, sm: LocalSecretManager, providers: Path, *, clients_for: tuple[str, ...] = ("oidc-test",),
    **extra: str,
) -> dict[str, str]:  # fmt: skip
    """The environment a broker process (or in-process settings) needs to run against the test servers; the
    providers in `clients_for` use the oidc-provider client `broker` (`extra` can override any variable)."""
    clients: dict[str, str] = {}
    for provider_id in clients_for:
        prefix = provider_id.upper().replace("-", "_")
        clients |= {f"{prefix}_CLIENT_ID": CLIENT_ID, f"{prefix}_CLIENT_SECRET": CLIENT_SECRET}
    return {
        **clients,
        "DATABASE_URL": database_url,
        "SECRET_BACKEND": "gcp",
        "GCP_PROJECT": PROJECT,
        "SECRET_MANAGER_ENDPOINT": sm.grpc_endpoint,
        "DATA_KEYS": f"1:{DATA_KEY}",
        "PROVIDERS_FILE": str(providers),
        "PUBLIC_BASE_URL": BASE,
        "ALLOWED_RETURN_URLS": f"{BASE}/app/",
        "PROVIDER_TIMEOUT": "2",
        **extra,
    }


@contextmanager
def in_process_broker(env: dict[str, str], monkeypatch: Any, **components: Any) -> Iterator[Container]:
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    app = Container(load_settings(), **components)
    try:
        yield app
    finally:
        app.engine.dispose()
        reads = app.__dict__.get("token_reads")
        if reads is not None and hasattr(reads, "close"):
            reads.close()


def connect(app: Container, provider: OidcProvider, entity: str = "entity-1", provider_id: str = "oidc-test") -> str:
    """Run the real connect flow in process (the browser played by a cookie jar); return the integration id."""
    from shared.services.connect import StartRequest

    started = app.connect_flow.start(entity, StartRequest(provider_id))
    with requests.Session() as browser:
        callback = provider.follow_to_callback(started.authorization_url, BASE + "/oauth/callback", browser)
    params = {k: v[0] for k, v in parse_qs(urlsplit(callback).query).items()}
    location = app.connect_flow.complete(params, {started.cookie_name: started.binding or ""})
    query = parse_qs(urlsplit(location).query)
    assert query.get("status") == ["connected"], location
    return query["integration_id"][0]
