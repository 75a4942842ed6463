"""Alembic migrations on each dialect (PostgreSQL, MySQL on MariaDB, SQLite): up, down, up again, and the result
matches the ORM tables."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta, timezone

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import Engine, create_engine, insert, inspect, select
from sqlalchemy.exc import DBAPIError, IntegrityError

from shared.adapters import schema
from shared.adapters.db import engine_for_url
from shared.adapters.orm import Base, IntegrationRow
from tests.support.mariadb import MysqlDatabaseFactory
from tests.support.postgres import DatabaseFactory


@pytest.fixture(params=["postgresql", "mysql", "sqlite"])
def empty_engine(request, tmp_path):
    if request.param == "postgresql":
        factory: DatabaseFactory = request.getfixturevalue("pg_databases")
        name = factory.create(template="template0")
        engine = engine_for_url(factory.server.url(name))
        yield engine
        engine.dispose()
        factory.drop(name)
    elif request.param == "mysql":
        mysql: MysqlDatabaseFactory = request.getfixturevalue("mysql_databases")
        name = mysql.empty()
        engine = engine_for_url(mysql.server.url(name))
        yield engine
        engine.dispose()
        mysql.drop(name)
    else:
        engine = create_engine(f"sqlite:///{tmp_path}/m.db")
        yield engine
        engine.dispose()


def _tables(engine: Engine) -> set[str]:
    return set(inspect(engine).get_table_names()) - {"alembic_version"}


def test_upgrade_downgrade_upgrade(empty_engine: Engine) -> None:
    schema.upgrade(empty_engine)
    assert schema.current_revision(empty_engine) == schema.head_revision()
    assert _tables(empty_engine) == set(Base.metadata.tables)
    schema.downgrade(empty_engine)
    assert schema.current_revision(empty_engine) is None
    assert _tables(empty_engine) == set()
    schema.upgrade(empty_engine)
    with empty_engine.connect() as conn:
        assert compare_metadata(MigrationContext.configure(conn), Base.metadata) == []


def _row(entity: str, subject: str | None, **extra: object) -> dict[str, object]:
    now = datetime.now(UTC)
    return {
        "id": uuid.uuid4(),
        "entity_id": entity,
        "provider": "google",
        "credential_type": "oauth2",
        "status": "active",
        "account_subject": subject,
        "granted_scopes": ["openid"],
        "config": {},
        "created_at": now,
        "updated_at": now,
        **extra,
    }


def test_timestamps_round_trip_as_aware_utc(db_engine: Engine) -> None:
    expires = datetime(2026, 5, 1, 12, 30, 5, 123456, tzinfo=timezone(timedelta(hours=2)))  # to the microsecond
    row = _row("e1", "sub-1", token_expires_at=expires)
    with db_engine.begin() as conn:
        conn.execute(insert(IntegrationRow), [row])
    with db_engine.connect() as conn:
        stored = conn.execute(select(IntegrationRow.token_expires_at)).scalar_one()
    assert stored is not None
    assert stored.tzinfo is not None
    assert stored.utcoffset() == timedelta(0)
    assert stored == expires


def test_naive_datetimes_are_refused(db_engine: Engine) -> None:
    with pytest.raises(Exception, match="naive datetime"), db_engine.begin() as conn:
        conn.execute(insert(IntegrationRow), [_row("e1", "s", token_expires_at=datetime(2026, 1, 1))])


def test_one_account_per_entity_and_provider_but_two_accounts_allowed(db_engine: Engine) -> None:
    with db_engine.begin() as conn:
        conn.execute(insert(IntegrationRow), [_row("e1", "alice"), _row("e1", "bob"), _row("e2", "alice")])
    with pytest.raises(IntegrityError), db_engine.begin() as conn:
        conn.execute(insert(IntegrationRow), [_row("e1", "alice")])


def test_identifiers_compare_exactly(db_engine: Engine) -> None:
    """Entity ids, subjects and hashes are compared byte for byte: MySQL's default collations would make `Alice`,
    `alice` and `alice ` one entity (case-insensitive, trailing spaces padded), letting one see another's rows."""
    with db_engine.begin() as conn:
        conn.execute(insert(IntegrationRow), [_row("alice", "s"), _row("Alice", "s"), _row("alice ", "s")])
    with db_engine.connect() as conn:
        found = conn.execute(select(IntegrationRow.entity_id).where(IntegrationRow.entity_id == "alice")).all()
    assert [row.entity_id for row in found] == ["alice"]


def test_status_outside_the_enum_is_rejected(db_engine: Engine) -> None:
    # pg8000 reports a CHECK violation (SQLSTATE 23514) as ProgrammingError, SQLite as IntegrityError, PyMySQL as
    # OperationalError (4025 on MariaDB, 3819 on MySQL).
    with (
        pytest.raises(DBAPIError, match=r"ck_entity_integrations_status|CHECK constraint failed"),
        db_engine.begin() as conn,
    ):
        conn.execute(insert(IntegrationRow), [_row("e1", "x", status="exploded")])


def test_expiring_scan_uses_its_index_on_postgres(pg_url: str) -> None:
    engine = engine_for_url(pg_url)
    with engine.begin() as conn:
        conn.exec_driver_sql("SET enable_seqscan = off")
        plan = conn.exec_driver_sql(
            "EXPLAIN SELECT id FROM entity_integrations WHERE status = 'active' "
            "AND token_expires_at IS NOT NULL AND token_expires_at < now() + interval '10 minutes'"
        ).all()
    engine.dispose()
    # On an empty table both expiry indexes cost the same to the planner; at 1M rows `make bench-scale` shows
    # which one each claim uses (EXPLAIN ANALYZE). Here: an index on the expiry, never a sequential scan.
    text = "\n".join(r[0] for r in plan)
    assert "ix_entity_integrations_expiring" in text or "ix_entity_integrations_provider_expiring" in text


def test_a_shards_claim_uses_the_provider_expiry_index_on_postgres(pg_url: str) -> None:
    engine = engine_for_url(pg_url)
    with engine.begin() as conn:
        conn.exec_driver_sql("SET enable_seqscan = off")
        plan = conn.exec_driver_sql(
            "EXPLAIN SELECT id FROM entity_integrations WHERE status = 'active' AND provider = 'github' "
            "AND token_expires_at IS NOT NULL AND token_expires_at < now() + interval '10 minutes' "
            "ORDER BY token_expires_at LIMIT 100"
        ).all()
    engine.dispose()
    text = "\n".join(r[0] for r in plan)
    assert "Index Scan using ix_entity_integrations_provider_expiring" in text, text
    assert "Sort" not in text, text


def test_on_mysql_every_time_keeps_microseconds_and_every_table_compares_text_exactly(mysql_url: str) -> None:
    """What the ORM comparison cannot see (Alembic does not compare DATETIME's precision or a table's collation):
    every migration's time columns are DATETIME(6), every table binary and no-pad."""
    engine = engine_for_url(mysql_url)
    with engine.connect() as conn:
        coarse = conn.exec_driver_sql(
            "SELECT table_name, column_name FROM information_schema.columns WHERE table_schema = DATABASE() "
            "AND data_type IN ('datetime', 'timestamp') AND datetime_precision <> 6"
        ).all()
        collations = (
            conn.exec_driver_sql(
                "SELECT DISTINCT table_collation FROM information_schema.tables WHERE table_schema = DATABASE() "
                "AND table_name <> 'alembic_version'"
            )
            .scalars()
            .all()
        )
    engine.dispose()
    assert coarse == []
    assert set(collations) <= {"utf8mb4_nopad_bin", "utf8mb4_0900_bin"}, collations
