"""The token hot path's read on PostgreSQL (PgTokenReads: one prepared statement on raw pg8000) and SQLite
(SqlTokenReads): the same row as the repositories read, and an audit row exactly when the token is servable as is.
Also the raw pool: a connection killed server-side is replaced, a refusal is a 503, and the engines' pools
replace a killed connection at checkout without pinging."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta
from uuid import UUID, uuid4

import pg8000.native
import pytest
from sqlalchemy import Engine, select, text

from shared.adapters.db import engine_for_url
from shared.adapters.orm import AuditEventRow
from shared.adapters.pg_pool import PgConnections, url_connect
from shared.adapters.pg_token_reads import PgTokenReads
from shared.adapters.sql_repositories import SqlIntegrationRepository, load_integration
from shared.adapters.sql_token_reads import SqlTokenReads
from shared.domain.clock import FixedClock
from shared.domain.models import CredentialType, Integration, Status
from shared.domain.ports import TokenReads
from shared.errors import DependencyUnavailable
from tests.support.postgres import Server
from tests.support.roundtrips import CountingProxy, proxied_url, upstream_of

EVERY = timedelta(seconds=60)


def _url(engine: Engine) -> str:
    return engine.url.render_as_string(hide_password=False)


@pytest.fixture
def reads(db_engine: Engine) -> TokenReads:
    if db_engine.dialect.name == "postgresql":
        return PgTokenReads(PgConnections(url_connect(_url(db_engine)), 2))
    return SqlTokenReads(db_engine)


def add(engine: Engine, clock: FixedClock, **fields) -> Integration:
    now = clock.now()
    values = {
        "status": Status.ACTIVE, "credential_type": CredentialType.OAUTH2, "secret_ref": "s", "secret_version": 1,
        "access_token_ciphertext": b"\x00sealed\xff", "access_token_key_version": 1, "granted_scopes": ["a", "b"],
        "token_expires_at": now + timedelta(hours=1), "config": {"k": [1, "ü"]}, "label": "mine", **fields,
    }  # fmt: skip
    integration = Integration(id=uuid4(), entity_id="e1", provider="google", created_at=now, updated_at=now, **values)
    SqlIntegrationRepository(engine, clock).add(integration)
    return integration


def audit_actors(engine: Engine, integration_id: UUID) -> list[str]:
    with engine.connect() as conn:
        rows = conn.execute(select(AuditEventRow).where(AuditEventRow.integration_id == integration_id))
        return [f"{r.actor}/{r.action}/{r.outcome}/{r.entity_id}/{r.provider}" for r in rows]


def test_a_servable_token_is_read_audited_and_stamped_in_one_go(db_engine, reads):
    clock = FixedClock()
    stored = add(db_engine, clock)
    now, until = clock.now(), clock.now() + timedelta(minutes=10)
    integration, audited = reads.read_for_use(stored.id, "apikey:1234", now, until, EVERY)
    assert audited
    assert audit_actors(db_engine, stored.id) == ["apikey:1234/token.read/success/e1/google"]
    assert (stamped := load_integration(db_engine, stored.id)) is not None
    assert stamped.last_used_at == now
    assert integration == replace(stamped, last_used_at=None), "the row as the repositories read it, before the stamp"
    clock.advance(seconds=30)
    _, again = reads.read_for_use(stored.id, "apikey:1234", clock.now(), until, EVERY)
    assert again
    assert len(audit_actors(db_engine, stored.id)) == 2, "every read is audited"
    assert (same := load_integration(db_engine, stored.id)) is not None
    assert same.last_used_at == now, "last_used_at at most once per minute"


@pytest.mark.parametrize(
    "fields",
    [
        {"token_expires_at": None},
        {"status": Status.INACTIVE},
        {"status": Status.REAUTH_REQUIRED},
        {"credential_type": CredentialType.API_KEY, "access_token_ciphertext": None},
        {"access_token_ciphertext": None},
        {"expiring": True},
    ],
)
def test_a_token_not_servable_as_is_is_read_without_an_audit_row(db_engine, reads, fields):
    clock = FixedClock()
    if fields.pop("expiring", False):
        fields["token_expires_at"] = clock.now() + timedelta(minutes=5)
    stored = add(db_engine, clock, **fields)
    integration, audited = reads.read_for_use(stored.id, "c", clock.now(), clock.now() + timedelta(minutes=10), EVERY)
    assert not audited
    assert integration == load_integration(db_engine, stored.id)
    assert audit_actors(db_engine, stored.id) == []


def test_a_missing_integration_reads_as_none(db_engine, reads):
    clock = FixedClock()
    assert reads.read_for_use(uuid4(), "c", clock.now(), clock.now(), EVERY) == (None, False)


def _terminate_others(server: Server, database: str) -> int:
    admin = server.admin()
    try:
        rows = admin.run(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = :db AND pid <> pg_backend_pid()",
            db=database,
        )
        for _ in range(100):  # until the killed backends are gone
            if not admin.run("SELECT 1 FROM pg_stat_activity WHERE datname = :db", db=database):
                break
    finally:
        admin.close()
    return len(rows)


def test_the_raw_pool_retries_once_on_a_connection_killed_server_side(pg_server, pg_url):
    pool = PgConnections(url_connect(pg_url), 2)
    first = pool.run("SELECT pg_backend_pid()", {})[0][0]
    assert _terminate_others(pg_server, pg_url.rsplit("/", 1)[1]) == 1
    second = pool.run("SELECT pg_backend_pid()", {})[0][0]
    assert second != first
    pool.close()


def test_the_raw_pool_turns_a_refusal_into_a_503_without_its_text(pg_url):
    pool = PgConnections(url_connect(pg_url), 1)
    with pytest.raises(DependencyUnavailable) as refused:
        pool.run("SELECT * FROM no_such_table WHERE x = :v", {"v": "a-secret-looking-value"})
    assert refused.value.code == "database_unavailable"
    assert "a-secret-looking-value" not in refused.value.message
    assert "42P01" in refused.value.message
    assert pool.run("SELECT 1", {}) == ([1],), "the connection survives a refusal"
    pool.close()


def test_the_raw_pool_cannot_reach_a_database_is_a_503(pg_url):
    pool = PgConnections(url_connect("postgresql+pg8000://nobody@127.0.0.1:9/nowhere"), 1)
    with pytest.raises(DependencyUnavailable) as unreachable:
        pool.run("SELECT 1", {})
    assert unreachable.value.code == "database_unavailable"


def test_an_engine_replaces_a_connection_killed_server_side_at_checkout_without_pinging(pg_server, pg_url):
    with CountingProxy.running(upstream_of(pg_url)) as proxy:
        engine = engine_for_url(proxied_url(pg_url, proxy))
        with engine.connect() as conn:
            conn.execute(text("SELECT 1"))
        before = proxy.flights
        with engine.connect() as conn:
            assert conn.execute(text("SELECT 1")).scalar() == 1
        assert proxy.flights - before <= 5, "BEGIN, the statement, pg8000's three-step ROLLBACK: no ping"
        assert _terminate_others(pg_server, pg_url.rsplit("/", 1)[1]) >= 1
        with engine.connect() as conn:
            assert conn.execute(text("SELECT 1")).scalar() == 1
        engine.dispose()


def test_the_raw_pool_reads_timestamps_as_pg8000_does(pg_server, pg_url):
    sql = (
        "SELECT CAST('2026-01-01 01:02:03.5+02' AS timestamptz), CAST('infinity' AS timestamptz), "
        "CAST('0044-03-15 12:00:00 BC' AS timestamptz), CAST(NULL AS timestamptz)"
    )
    pool = PgConnections(url_connect(pg_url), 1)
    plain = pg8000.native.Connection(pg_server.user, host=pg_server.host, port=pg_server.port,
                                     database=pg_url.rsplit("/", 1)[1])  # fmt: skip
    try:
        assert list(pool.run(sql, {})[0]) == plain.run(sql)[0]
    finally:
        plain.close()
        pool.close()
