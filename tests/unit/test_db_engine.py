"""The engine's pool follows the settings: pool size and overflow bound the connections each instance opens."""

from __future__ import annotations

import pytest
from sqlalchemy.pool import QueuePool

from shared.adapters.db import build_engine
from shared.config import load_settings


@pytest.mark.parametrize(("pool", "overflow"), [(4, 1), (8, 0)])
def test_pool_size_and_overflow_come_from_the_settings(pool, overflow):
    settings = load_settings(
        database_url="postgresql+pg8000://u:p@127.0.0.1:9/db", db_pool_size=pool, db_max_overflow=overflow
    )
    engine = build_engine(settings)
    assert isinstance(engine.pool, QueuePool)
    assert engine.pool.size() == pool
    assert engine.pool._max_overflow == overflow  # no public reader; the bound the pool enforces


def test_the_connector_engine_uses_the_same_bounds():
    settings = load_settings(instance_connection_name="p:r:i", db_user="u@p.iam", db_pool_size=3, db_max_overflow=1)
    engine = build_engine(settings, connector_factory=lambda: None)
    assert isinstance(engine.pool, QueuePool)
    assert engine.pool.size() == 3
    assert engine.pool._max_overflow == 1
