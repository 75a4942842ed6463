"""`broker migrate --grant-to`: the schema owner lets each function's database user read and write the tables."""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from collections.abc import Iterator

import pytest
from sqlalchemy import Engine, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError

from shared.adapters.db import engine_for_url
from shared.errors import ConfigurationError
from shared.ops import grant_app_privileges


@pytest.fixture
def pg_engine(pg_url: str) -> Iterator[Engine]:
    engine = engine_for_url(pg_url)
    yield engine
    engine.dispose()


@pytest.fixture
def function_user(pg_engine: Engine) -> Iterator[str]:
    """A login-less role named like an IAM database user (cluster-wide, so dropped afterwards)."""
    name = f"fn-{uuid.uuid4().hex[:8]}@my-project.iam"
    with pg_engine.begin() as conn:
        conn.execute(text(f'CREATE ROLE "{name}"'))
    yield name
    with pg_engine.begin() as conn:
        conn.execute(text(f'DROP OWNED BY "{name}"'))
        conn.execute(text(f'DROP ROLE "{name}"'))


def privilege(engine: Engine, role: str, table: str, what: str) -> bool:
    with engine.connect() as conn:
        query = text("SELECT has_table_privilege(:r, :t, :w)")
        return bool(conn.execute(query, {"r": role, "t": table, "w": what}).scalar())


@pytest.mark.postgres
def test_function_users_read_and_write_the_tables_but_change_no_schema(pg_engine, function_user):
    assert not privilege(pg_engine, function_user, "entity_integrations", "SELECT")
    assert grant_app_privileges(pg_engine, [function_user, function_user]) == [function_user]
    for what in ("SELECT", "INSERT", "UPDATE", "DELETE"):
        assert privilege(pg_engine, function_user, "entity_integrations", what), what
    assert not privilege(pg_engine, function_user, "entity_integrations", "TRUNCATE")
    assert privilege(pg_engine, function_user, "alembic_version", "SELECT")
    assert not privilege(pg_engine, function_user, "alembic_version", "UPDATE")
    with pg_engine.connect() as conn:
        can_create = conn.execute(text("SELECT has_schema_privilege(:r, 'public', 'CREATE')"), {"r": function_user})
        assert can_create.scalar() is False


@pytest.mark.postgres
def test_tables_a_later_migration_adds_are_covered(pg_engine, function_user):
    grant_app_privileges(pg_engine, [function_user])
    with pg_engine.begin() as conn:
        conn.execute(text("CREATE TABLE added_later (id integer PRIMARY KEY)"))
    assert privilege(pg_engine, function_user, "added_later", "INSERT")


@pytest.mark.postgres
def test_granting_again_is_harmless(pg_engine, function_user):
    grant_app_privileges(pg_engine, [function_user])
    grant_app_privileges(pg_engine, [function_user])
    assert privilege(pg_engine, function_user, "entity_integrations", "UPDATE")


def test_sqlite_has_no_users_to_grant(sqlite_url):
    engine = engine_for_url(sqlite_url)
    try:
        assert grant_app_privileges(engine, ["fn@my-project.iam"]) == []
    finally:
        engine.dispose()


@pytest.mark.parametrize("name", ['x"; DROP TABLE entity_integrations; --', "", "UPPER@case"])
def test_what_is_not_a_user_name_is_refused(sqlite_url, name):
    engine = engine_for_url(sqlite_url)
    try:
        with pytest.raises(ConfigurationError):
            grant_app_privileges(engine, [name])
    finally:
        engine.dispose()


@pytest.mark.postgres
def test_broker_migrate_grants_to_the_named_users(pg_engine, pg_url, function_user, tmp_path):
    env = {
        "PATH": os.environ.get("PATH", ""),
        "DATABASE_URL": pg_url,
        "LOCAL_DATA_DIR": str(tmp_path),
        "LOG_FORMAT": "json",
    }
    done = subprocess.run(
        [sys.executable, "-m", "shared.cli", "migrate", "--grant-to", function_user],
        env=env, capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert f"granted the application's privileges to {function_user}" in done.stdout
    assert privilege(pg_engine, function_user, "entity_integrations", "INSERT")


def test_on_mysql_function_users_read_and_write_the_database_but_change_no_schema(mysql_url):
    owner = engine_for_url(mysql_url)
    name, password = f"fn-{uuid.uuid4().hex[:8]}", "fn-test-password"  # Cloud SQL's IAM users are 'name'@'%'
    with owner.begin() as conn:
        conn.execute(text(f"CREATE USER '{name}'@'%' IDENTIFIED BY '{password}'"))
    as_function = engine_for_url(make_url(mysql_url).set(username=name, password=password).render_as_string(False))
    try:
        assert grant_app_privileges(owner, [name, name]) == [name]
        grant_app_privileges(owner, [name])  # again: harmless
        with as_function.begin() as conn:
            conn.execute(
                text("INSERT INTO event_destinations (id, kind, target, updated_at) VALUES ('d', 'w', 't', NOW())")
            )
            conn.execute(text("UPDATE event_destinations SET target = 'u' WHERE id = 'd'"))
            conn.execute(text("DELETE FROM event_destinations WHERE id = 'd'"))
        with pytest.raises(DBAPIError, match="denied"), as_function.begin() as conn:
            conn.execute(text("CREATE TABLE added_later (id integer PRIMARY KEY)"))
        with owner.begin() as conn:  # a table a later migration adds is covered: the grant is on the database
            conn.execute(text("CREATE TABLE added_later (id integer PRIMARY KEY)"))
        with as_function.begin() as conn:
            conn.execute(text("INSERT INTO added_later (id) VALUES (1)"))
    finally:
        as_function.dispose()
        with owner.begin() as conn:
            conn.execute(text(f"DROP USER '{name}'@'%'"))
        owner.dispose()
