"""The token hot path over real HTTP (`broker function`) on PostgreSQL: round trips counted at the socket, a
connection killed server-side, and audit-or-refuse when the audit row cannot be written."""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from uuid import UUID

import pg8000.native
import pytest
import requests
from sqlalchemy import func, select

from shared.adapters.orm import AuditEventRow
from shared.bootstrap import Container
from tests.support.broker_env import DATA_KEY, in_process_broker
from tests.support.postgres import DatabaseFactory
from tests.support.processes import Served, serving_function
from tests.support.roundtrips import CountingProxy, proxied_url, upstream_of
from tests.support.seed import seed_integration

API_KEY = "internal-key-for-the-hot-path-0123456789"
HEADERS = {"Authorization": f"Bearer {API_KEY}"}
ACCESS_TOKEN = "at-hot-path-value"


@dataclass
class HotPath:
    app: Container
    database: str
    proxy: CountingProxy
    fetcher: Served

    def fetch(self, integration_id: str) -> requests.Response:
        return requests.get(f"{self.fetcher}/token/{integration_id}", headers=HEADERS, timeout=30)

    def audit_rows(self, integration_id: str) -> int:
        with self.app.engine.connect() as conn:
            count = select(func.count()).where(
                AuditEventRow.integration_id == UUID(integration_id), AuditEventRow.action == "token.read"
            )
            return int(conn.execute(count).scalar_one())

    def admin(self) -> pg8000.native.Connection:
        url = self.app.settings.database_url or ""
        host, port = upstream_of(url)
        return pg8000.native.Connection("postgres", host=host, port=port, database=self.database)


@pytest.fixture(scope="module")
def hot(pg_databases: DatabaseFactory, secret_manager, tmp_path_factory) -> Iterator[HotPath]:
    name = pg_databases.create()
    url = pg_databases.server.url(name)
    providers: Path = tmp_path_factory.mktemp("catalog") / "providers.yaml"
    providers.write_text(  # `wide` makes the catalog's largest margin 900 s: `hot` tokens within it take the slow path
        "providers:\n  hot:\n    display_name: Hot\n    auth_mode: oauth2\n"
        "    authorization_url: https://hot.example/authorize\n    token_url: https://hot.example/token\n"
        "  wide:\n    display_name: Wide\n    auth_mode: oauth2\n    refresh_margin: 900\n"
        "    authorization_url: https://wide.example/authorize\n    token_url: https://wide.example/token\n",
        encoding="utf-8",
    )
    env = {
        "DATABASE_URL": url, "SECRET_BACKEND": "gcp", "GCP_PROJECT": "hot-path",
        "SECRET_MANAGER_ENDPOINT": secret_manager.grpc_endpoint, "DATA_KEYS": f"1:{DATA_KEY}",
        "PROVIDERS_FILE": str(providers), "INTERNAL_API_KEYS": API_KEY, "HOT_CLIENT_ID": "hot",
        "HOT_CLIENT_SECRET": "hot-secret",
    }  # fmt: skip
    with (
        pytest.MonkeyPatch.context() as mp,
        in_process_broker(env, mp) as app,
        CountingProxy.running(upstream_of(url)) as proxy,
        serving_function("token_fetch", {**env, "DATABASE_URL": proxied_url(url, proxy)}) as fetcher,
    ):
        yield HotPath(app, name, proxy, fetcher)
    pg_databases.drop(name)


def valid(hot: HotPath, entity: str, lifetime: timedelta = timedelta(hours=2)) -> str:
    now = datetime.now(UTC)
    integration_id = seed_integration(
        hot.app, "hot", entity, refresh_token="rt-hot", access_token=ACCESS_TOKEN, expires_at=now + lifetime,
        refreshed_at=now,
    )  # fmt: skip
    return str(integration_id)


class RefusedAudit:
    """A trigger that makes every audit INSERT fail, as a full disk or a revoked grant would."""

    def __init__(self, hot: HotPath) -> None:
        self.admin = hot.admin()

    def __enter__(self) -> None:
        self.admin.run(
            "CREATE FUNCTION refuse_audit() RETURNS trigger LANGUAGE plpgsql AS "
            "$$ BEGIN RAISE EXCEPTION 'audit storage refused'; END $$"
        )
        self.admin.run(
            "CREATE TRIGGER refuse_audit BEFORE INSERT ON audit_events FOR EACH ROW EXECUTE FUNCTION refuse_audit()"
        )

    def __exit__(self, *_: object) -> None:
        self.admin.run("DROP TRIGGER refuse_audit ON audit_events")
        self.admin.run("DROP FUNCTION refuse_audit()")
        self.admin.close()


def test_a_valid_token_fetch_makes_at_most_four_round_trips_and_one_audit_row_each(hot: HotPath) -> None:
    integration_id = valid(hot, "round-trips")
    for _ in range(5):  # warm: the connections are open and the statement prepared
        assert hot.fetch(integration_id).status_code == 200
    before, audited = hot.proxy.flights, hot.audit_rows(integration_id)
    for _ in range(20):
        response = hot.fetch(integration_id)
        assert response.status_code == 200, response.text
        assert response.json()["access_token"] == ACCESS_TOKEN
    per_fetch = (hot.proxy.flights - before) / 20
    assert per_fetch <= 4, f"{per_fetch} round trips per fetch"
    assert hot.audit_rows(integration_id) - audited == 20


def test_a_connection_killed_server_side_is_replaced_and_the_fetch_still_answers(hot: HotPath) -> None:
    integration_id = valid(hot, "killed")
    assert hot.fetch(integration_id).status_code == 200
    admin = hot.admin()
    try:
        killed = admin.run(  # in the select list: evaluated only for the rows the WHERE kept (never this session)
            "SELECT pid, pg_terminate_backend(pid) FROM pg_stat_activity "
            "WHERE datname = :db AND pid <> pg_backend_pid()",
            db=hot.database,
        )
        for _ in range(200):  # pg_terminate_backend only signals: wait until the backends are gone
            if not admin.run("SELECT 1 FROM pg_stat_activity WHERE pid = ANY(:pids)", pids=[pid for pid, _ in killed]):
                break
            time.sleep(0.01)
    finally:
        admin.close()
    assert killed, "the function's connections were there to kill"
    audited = hot.audit_rows(integration_id)
    response = hot.fetch(integration_id)
    assert response.status_code == 200, response.text
    assert hot.audit_rows(integration_id) == audited + 1


@pytest.mark.parametrize(
    "lifetime",
    [timedelta(hours=2), timedelta(minutes=10)],
    ids=["hot path: read and audit in one statement", "slow path: inside the catalog's largest margin"],
)
def test_a_fetch_whose_audit_row_cannot_be_written_is_refused(hot: HotPath, lifetime: timedelta) -> None:
    integration_id = valid(hot, f"audit-refused-{lifetime.total_seconds():.0f}", lifetime)
    with RefusedAudit(hot):
        response = hot.fetch(integration_id)
    assert (response.status_code, response.json()["error"]["code"]) == (503, "database_unavailable")
    assert ACCESS_TOKEN not in response.text
    assert "audit storage refused" not in response.text
    assert hot.audit_rows(integration_id) == 0
    assert hot.fetch(integration_id).status_code == 200, "the next fetch, audited again, answers"
