"""The engines' pg8000 dialect: a statement prepared once per connection (one round trip after that), COMMIT in one,
pg8000's error classes kept, and a statement prepared again after the schema changed under it."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from sqlalchemy import Column, Integer, MetaData, Table, insert, select, text
from sqlalchemy.exc import DBAPIError, IntegrityError

from shared.adapters.db import engine_for_url
from tests.support.roundtrips import CountingProxy, proxied_url, upstream_of

things = Table("bench_things", MetaData(), Column("id", Integer, primary_key=True), Column("n", Integer))


@pytest.fixture
def engine(pg_url):
    engine = engine_for_url(pg_url)
    things.create(engine)
    yield engine
    engine.dispose()


def test_a_repeated_statement_costs_one_round_trip_and_commit_one(pg_url, engine):
    with CountingProxy.running(upstream_of(pg_url)) as proxy:
        proxied = engine_for_url(proxied_url(pg_url, proxy))
        for i in range(2):
            with proxied.begin() as conn:
                conn.execute(insert(things).values(id=i, n=i))
        before = proxy.flights
        with proxied.begin() as conn:
            conn.execute(insert(things).values(id=7, n=7))
        assert proxy.flights - before == 3, "BEGIN, the prepared INSERT, COMMIT"
        with proxied.connect() as conn:
            assert conn.execute(select(things.c.n).where(things.c.id == 7)).scalar_one() == 7
        proxied.dispose()


def test_a_duplicate_key_is_still_an_integrity_error(engine):
    with engine.begin() as conn:
        conn.execute(insert(things).values(id=1, n=1))
    with pytest.raises(IntegrityError), engine.begin() as conn:
        conn.execute(insert(things).values(id=1, n=2))


def test_a_statement_is_prepared_again_after_its_result_type_changed(engine):
    query = select(things.c.n).where(things.c.id == 1)
    with engine.begin() as conn:
        conn.execute(insert(things).values(id=1, n=1))
        assert conn.execute(query).scalar_one() == 1
    with engine.begin() as conn:
        conn.execute(text("ALTER TABLE bench_things ALTER COLUMN n TYPE bigint"))
    with pytest.raises(DBAPIError), engine.connect() as conn:  # the one statement that finds its plan stale
        conn.execute(query)
    with engine.connect() as conn:
        assert conn.execute(query).scalar_one() == 1


VALUES = ("2027-01-15 12:00:30.123456+00", "2027-01-15 12:00:30+00", "2027-01-15 13:00:00+01")


VALUES = ("2027-01-15 12:00:30.123456+00", "2027-01-15 12:00:30+00", "2027-01-15 13:00:00+01")


def test_timestamptz_is_read_without_strptime_and_reads_the_same(engine, monkeypatch):
    """pg8000 parses timestamptz with strptime (~17 µs a column; a refresh reads rows of seven of them): the
    engines read PostgreSQL's output with fromisoformat, and anything else (infinity, BC) as pg8000 does."""
    import _strptime  # type: ignore[import-not-found]  # what datetime.strptime calls, looked up per call

    calls: list[object] = []
    original = _strptime._strptime_datetime

    def counted(*args: object) -> datetime:
        calls.append(args)
        return original(*args)  # type: ignore[no-any-return]

    monkeypatch.setattr(_strptime, "_strptime_datetime", counted)
    sql = "SELECT " + ", ".join(f"CAST('{value}' AS timestamptz)" for value in VALUES)
    with engine.connect() as conn:
        read = list(conn.execute(text(sql)).one())
    assert read == [
        datetime(2027, 1, 15, 12, 0, 30, 123456, tzinfo=UTC), datetime(2027, 1, 15, 12, 0, 30, tzinfo=UTC),
        datetime(2027, 1, 15, 12, 0, tzinfo=UTC),
    ]  # fmt: skip
    assert all(value.utcoffset() is not None for value in read)
    assert calls == [], "pg8000's strptime parser read a timestamptz"
