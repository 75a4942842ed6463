"""The composition root builds the real adapters from settings: Secret Manager, data keys, Cloud SQL wiring."""

from __future__ import annotations

import base64
import os
import stat
import subprocess
import sys
from typing import Any

import grpc
import pg8000.dbapi
import pymysql
import pytest
from sqlalchemy import text

from shared.adapters.db import build_engine
from shared.adapters.db_secret_store import DatabaseSecretStore
from shared.adapters.gcp_secret_store import GcpSecretManagerStore
from shared.bootstrap import Container
from shared.config import load_settings
from shared.domain.envelope import KeyUnavailable, new_data_key
from shared.errors import SecretStoreUnavailable
from shared.services.health import readiness
from tests.fakes.secret_manager_server import LocalSecretManager
from tests.support.mariadb import MysqlServer
from tests.support.postgres import Server


@pytest.fixture
def data_key_secret(secret_manager: LocalSecretManager) -> tuple[GcpSecretManagerStore, bytes, bytes]:
    store = GcpSecretManagerStore("keys-project", GcpSecretManagerStore.build_client(secret_manager.grpc_endpoint))
    store.delete("broker-data-key")
    old, new = new_data_key(), new_data_key()
    store.add_version("broker-data-key", old, {})  # raw bytes
    store.add_version("broker-data-key", base64.b64encode(new) + b"\n", {})  # base64 text, as openssl prints
    return store, old, new


def test_an_unreadable_data_key_during_an_outage_is_a_503_and_the_next_request_reads_it(
    secret_manager, data_key_secret, sqlite_url
):
    settings = load_settings(
        secret_backend="gcp", gcp_project="p", secret_manager_endpoint=secret_manager.grpc_endpoint,
        data_key_secret="projects/keys-project/secrets/broker-data-key/versions/2", database_url=sqlite_url,
    )  # fmt: skip
    app = Container(settings)
    secret_manager.fail_next("AccessSecretVersion", grpc.StatusCode.INTERNAL)
    with pytest.raises(SecretStoreUnavailable) as caught:
        app.keyring  # noqa: B018 - built on first use, as a request would
    assert caught.value.http_status == 503
    assert app.keyring.current_version == 2, "a failed build is not kept: the next request builds it"


def test_gcp_backend_and_pinned_data_key(secret_manager, data_key_secret, sqlite_url):
    _, old, _ = data_key_secret
    settings = load_settings(
        secret_backend="gcp",
        gcp_project="p",
        secret_manager_endpoint=secret_manager.grpc_endpoint,
        data_key_secret="projects/keys-project/secrets/broker-data-key/versions/2",
        database_url=sqlite_url,
    )
    app = Container(settings)
    assert isinstance(app.secret_store, GcpSecretManagerStore)
    reads_before = secret_manager.calls["AccessSecretVersion"]
    assert app.keyring.current_version == 2
    sealed, version = app.keyring.seal(b"token", purpose="access_token", record="i1")
    assert app.keyring.open(sealed, key_version=version, purpose="access_token", record="i1") == b"token"
    assert secret_manager.calls["AccessSecretVersion"] - reads_before == 1, "the key is read once per instance"

    # a ciphertext sealed under the older key version opens: version 1 is read on demand, once
    from shared.domain.envelope import Keyring

    legacy, _ = Keyring({1: old}).seal(b"older", purpose="access_token", record="i2")
    assert app.keyring.open(legacy, key_version=1, purpose="access_token", record="i2") == b"older"
    app.keyring.open(legacy, key_version=1, purpose="access_token", record="i2")
    assert secret_manager.calls["AccessSecretVersion"] - reads_before == 2
    assert readiness(app.engine, app.secret_store) == {"database": "ok", "secret_store": "ok"}


def test_unreadable_pinned_key_fails_at_start_up(secret_manager, data_key_secret):
    settings = load_settings(
        gcp_project="p",
        secret_manager_endpoint=secret_manager.grpc_endpoint,
        data_key_secret="projects/keys-project/secrets/broker-data-key/versions/9",
    )
    with pytest.raises(KeyUnavailable, match="version 9 of broker-data-key is not readable"):
        _ = Container(settings).keyring


def test_readiness_reports_an_unreachable_secret_manager(sqlite_url):
    settings = load_settings(
        secret_backend="gcp", gcp_project="p", secret_manager_endpoint="127.0.0.1:9", database_url=sqlite_url
    )
    app = Container(settings, secret_store=GcpSecretManagerStore(
        "p", GcpSecretManagerStore.build_client("127.0.0.1:9"), timeout=0.5
    ))  # fmt: skip
    checks = readiness(app.engine, app.secret_store)
    assert checks["database"] == "ok"
    assert checks["secret_store"].startswith("secret manager unavailable")


def test_development_key_is_generated_once_with_private_permissions(tmp_path):
    settings = load_settings(local_data_dir=str(tmp_path / "data"))
    first = Container(settings)
    assert isinstance(first.secret_store, DatabaseSecretStore)
    key_file = tmp_path / "data" / "data-key"
    assert stat.S_IMODE(os.stat(key_file).st_mode) == 0o600
    sealed, version = first.keyring.seal(b"x", purpose="p", record="r")
    assert Container(settings).keyring.open(sealed, key_version=version, purpose="p", record="r") == b"x"


def test_development_key_can_live_apart_from_the_database(tmp_path):
    """A copy of the data directory (the SQLite file and the embedded vault) should not carry its key with it."""
    key_file = tmp_path / "keys" / "broker-data-key"
    settings = load_settings(local_data_dir=str(tmp_path / "data"), local_data_key_file=str(key_file))
    sealed, version = Container(settings).keyring.seal(b"x", purpose="p", record="r")
    assert stat.S_IMODE(os.stat(key_file).st_mode) == 0o600
    assert not (tmp_path / "data" / "data-key").exists()
    assert Container(settings).keyring.open(sealed, key_version=version, purpose="p", record="r") == b"x"


def test_cloud_sql_connector_is_wired_with_iam_user_and_database(pg_server: Server, pg_url: str):
    calls: list[tuple[Any, ...]] = []
    database = pg_url.rsplit("/", 1)[1]

    class FakeConnector:  # stands in for google.cloud.sql.connector.Connector (no Cloud SQL here)
        def connect(self, instance: str, driver: str, *, user: str, db: str) -> Any:
            calls.append((instance, driver, user, db))
            return pg8000.dbapi.connect(user=pg_server.user, host=pg_server.host, port=pg_server.port, database=db)

    settings = load_settings(instance_connection_name="proj:region:inst", db_user="postgres", db_name=database)
    engine = build_engine(settings, connector_factory=FakeConnector)
    with engine.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM entity_integrations")).scalar() == 0
    engine.dispose()
    assert calls == [("proj:region:inst", "pg8000", "postgres", database)]


def test_cloud_sql_for_mysql_goes_through_the_connectors_pymysql_driver(mysql_server: MysqlServer, mysql_url: str):
    """Up to the connector seam: the real Connector (IAM auth, no Cloud SQL here) is replaced by one that opens a
    PyMySQL connection to the test server; the engine, its dialect and the hot path's choice are the broker's."""
    calls: list[tuple[Any, ...]] = []
    database = mysql_url.rsplit("/", 1)[1]

    class FakeConnector:
        def connect(self, instance: str, driver: str, *, user: str, db: str, client_flag: int) -> Any:
            calls.append((instance, driver, user, db))
            return pymysql.connect(host=mysql_server.host, port=mysql_server.port, user=mysql_server.user,
                                   password=mysql_server.password, database=db, client_flag=client_flag)  # fmt: skip

    settings = load_settings(
        instance_connection_name="proj:region:inst", db_dialect="mysql", db_user="broker-sa", db_name=database
    )
    engine = build_engine(settings, connector_factory=FakeConnector)
    with engine.begin() as conn:
        assert conn.execute(text("SELECT count(*) FROM entity_integrations")).scalar() == 0
        assert conn.get_isolation_level() == "READ COMMITTED"
        conn.execute(
            text("INSERT INTO event_destinations (id, kind, target, updated_at) VALUES ('d', 'w', 't', NOW())")
        )
        same = conn.execute(text("UPDATE event_destinations SET target = 't' WHERE id = 'd'"))
        assert same.rowcount == 1, "rowcount counts the rows matched (FOUND_ROWS), not only those changed"
    assert engine.dialect.name == "mysql"
    engine.dispose()
    assert calls == [("proj:region:inst", "pymysql", "broker-sa", database)]
    container = Container(settings, engine=engine)
    assert container.pg_connect is None, "no raw pg8000 hot path on MySQL"
    assert type(container.token_reads).__name__ == "SqlTokenReads"


def test_the_cloud_sql_connector_is_not_imported_unless_configured(sqlite_url):
    code = (
        "import sys; from shared.bootstrap import Container; from shared.config import load_settings; "
        f"c = Container(load_settings(database_url={sqlite_url!r})); c.engine.connect().close(); "
        "assert 'google.cloud.sql.connector' not in sys.modules, 'imported'"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)


def test_database_errors_never_show_bound_values(db_engine):
    from sqlalchemy.exc import DBAPIError

    with pytest.raises(DBAPIError) as caught, db_engine.connect() as conn:
        conn.execute(text("SELECT * FROM no_such_table WHERE x = :v"), {"v": "a-secret-looking-value"})
    assert "a-secret-looking-value" not in str(caught.value)
