"""POST /integrations/{id}/sync's "one request per 10 s" under real concurrency on PostgreSQL: the check and the
write are one conditional UPDATE, so concurrent callers cannot all pass the check before any of them writes."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
from sqlalchemy import func, select

from shared.adapters.orm import AuditEventRow
from shared.bootstrap import Container
from shared.config import load_settings
from shared.domain.clock import FixedClock
from shared.errors import BrokerError
from shared.services.integrations import NewStaticIntegration
from tests.support.broker_env import DATA_KEY
from tests.support.mariadb import ALSO_ON_MYSQL

KEY = "sk-live-abcdefghijklmnopqrstuvwxyz012345"
CALLERS = 8
ROUNDS = 5


@pytest.fixture
def app(database_url: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[Container]:
    for name, value in {
        "DATABASE_URL": database_url,
        "SECRET_BACKEND": "database",
        "DATA_KEYS": f"1:{DATA_KEY}",
    }.items():
        monkeypatch.setenv(name, value)
    built = Container(load_settings(db_pool_size=CALLERS))
    yield built
    built.engine.dispose()


def _race(app: Container, integration_id: Any) -> list[str]:
    barrier = threading.Barrier(CALLERS)

    def sync(_: int) -> str:
        barrier.wait()
        try:
            app.integration_service.sync("racer", integration_id)
        except BrokerError as error:
            return error.code
        return "accepted"

    with ThreadPoolExecutor(max_workers=CALLERS) as pool:
        return sorted(pool.map(sync, range(CALLERS)))


@ALSO_ON_MYSQL
def test_concurrent_sync_requests_accept_exactly_one(app):
    for _ in range(ROUNDS):
        created = app.integration_service.create("racer", NewStaticIntegration("openai", {"api_key": KEY}))
        outcomes = _race(app, created.id)
        assert outcomes == ["accepted"] + ["sync_rate_limited"] * (CALLERS - 1)
        with app.engine.connect() as conn:
            requested = conn.execute(
                select(func.count())
                .select_from(AuditEventRow)
                .where(AuditEventRow.integration_id == created.id, AuditEventRow.action == "integration.sync_requested")
            ).scalar_one()
        assert requested == 1


def test_the_window_reopens_after_ten_seconds_and_retry_after_says_when(pg_url, monkeypatch):
    clock = FixedClock()
    for name, value in {"DATABASE_URL": pg_url, "SECRET_BACKEND": "database", "DATA_KEYS": f"1:{DATA_KEY}"}.items():
        monkeypatch.setenv(name, value)
    app = Container(load_settings(), clock=clock)
    try:
        created = app.integration_service.create("racer", NewStaticIntegration("openai", {"api_key": KEY}))
        first = app.integration_service.sync("racer", created.id)
        assert first.last_sync_at == clock.now()
        clock.advance(seconds=4)
        with pytest.raises(BrokerError) as caught:
            app.integration_service.sync("racer", created.id)
        assert (caught.value.code, caught.value.details["retry_after"]) == ("sync_rate_limited", 6.0)
        clock.advance(seconds=6)
        assert app.integration_service.sync("racer", created.id).last_sync_at == clock.now()
        with pytest.raises(BrokerError) as missing:
            app.integration_service.sync("someone-else", created.id)
        assert missing.value.code == "integration_not_found"
    finally:
        app.engine.dispose()
