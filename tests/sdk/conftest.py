"""One live stack for the client's tests: oidc-provider, PostgreSQL, the local Secret Manager, and `token_fetch`
served as deployed (`broker function`); the in-process broker connects accounts and edits rows."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from uuid import UUID

import httpx
import pytest
import requests
from broker_client import BrokerClient
from sqlalchemy import func, select

from shared.adapters.orm import AuditEventRow
from shared.bootstrap import Container
from shared.services.credentials import ACCESS_TOKEN_PURPOSE
from tests.support.broker_env import CLIENT_ID, CLIENT_SECRET, broker_env, connect, in_process_broker, provider_file
from tests.support.engine import set_row
from tests.support.oidc_provider import OidcProvider, running_oidc_provider
from tests.support.postgres import DatabaseFactory
from tests.support.processes import Served, serving_function

API_KEY = "sdk-test-internal-key-0123456789abcdef"
LONG_AGO = datetime(2026, 1, 1, tzinfo=UTC)  # past the broker's 5 s quiet period for forced refreshes


class Live:
    def __init__(self, app: Container, provider: OidcProvider, url: Served) -> None:
        self.app, self.provider, self.url = app, provider, url
        self.sent: list[httpx.Request] = []  # every request a client from `client()` sent to the broker

    def client(self, **options: object) -> BrokerClient:
        http = httpx.Client(timeout=30, event_hooks={"request": [self.sent.append]})
        return BrokerClient(self.url, api_key=API_KEY, http_client=http, **options)  # type: ignore[arg-type]

    def connect(self, entity: str, *, settled: bool = True) -> str:
        """A connected integration; `settled`: its last refresh long ago, so a forced refresh really refreshes."""
        integration_id = connect(self.app, self.provider, entity=entity)
        if settled:
            set_row(self.app, integration_id, last_refreshed_at=LONG_AGO)
        return integration_id

    def forced(self) -> list[httpx.Request]:
        return [r for r in self.sent if r.url.params.get("force_refresh") == "true"]

    def reads(self, integration_id: str) -> int:
        """Tokens the broker handed out for the integration (its audit log: one `token.read` per answer)."""
        query = select(func.count()).where(
            AuditEventRow.integration_id == UUID(integration_id), AuditEventRow.action == "token.read"
        )
        with self.app.engine.connect() as conn:
            return int(conn.execute(query).scalar_one())

    def plant(self, integration_id: str, access_token: str) -> None:
        """The broker holds `access_token` (sealed as it seals every token) with its expiry unchanged: a token the
        provider does not accept although its grant lives on (revoked early, a lifetime shorter than announced).
        oidc-provider's revocation endpoint cannot stage that: revoking an access token there revokes every token
        of its grant, the refresh token included."""
        sealed, version = self.app.keyring.seal(
            access_token.encode(), purpose=ACCESS_TOKEN_PURPOSE, record=integration_id
        )
        set_row(self.app, integration_id, access_token_ciphertext=sealed, access_token_key_version=version)

    def revoke(self, access_token: str) -> None:
        """The grant ends at the provider (RFC 7009 on an access token: oidc-provider revokes all its tokens)."""
        answer = requests.post(
            self.provider.revocation_endpoint, auth=(CLIENT_ID, CLIENT_SECRET),
            data={"token": access_token, "token_type_hint": "access_token"}, timeout=10,
        )  # fmt: skip
        assert answer.status_code == 200, answer.text

    def userinfo_status(self, access_token: str) -> int:
        headers = {"Authorization": f"Bearer {access_token}"}
        return requests.get(self.provider.userinfo_endpoint, headers=headers, timeout=10).status_code


@pytest.fixture(scope="package")
def live(pg_databases: DatabaseFactory, secret_manager, tmp_path_factory) -> Iterator[Live]:
    name = pg_databases.create()
    client = {
        "client_id": CLIENT_ID,
        "client_secret": CLIENT_SECRET,
        "redirect_uris": ["http://127.0.0.1:9/oauth/callback"],
    }
    with running_oidc_provider([client], access_token_ttl=600) as provider, pytest.MonkeyPatch.context() as mp:
        providers = provider_file(tmp_path_factory.mktemp("sdk-catalog"), provider.issuer)
        env = broker_env(pg_databases.server.url(name), secret_manager, providers, INTERNAL_API_KEYS=API_KEY)
        with in_process_broker(env, mp) as app, serving_function("token_fetch", env) as url:
            yield Live(app, provider, url)
    pg_databases.drop(name)


@pytest.fixture
def stack(live: Live) -> Live:
    live.provider.reset()
    live.sent.clear()
    return live
