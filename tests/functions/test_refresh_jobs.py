"""Two refresh jobs at once over 500 due integrations: each integration is refreshed exactly once.

The provider is the project's own demo authorization server (rotating refresh tokens, a used one is rejected)
served over HTTP in this process, so 500 grants can be minted directly; the jobs run in two functions-framework
processes against one PostgreSQL (or MySQL) database.
"""

from __future__ import annotations

from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import requests
from sqlalchemy import func, select

from shared.adapters.orm import IntegrationRow
from shared.local.demo_oauth import DemoAuthServer
from tests.support.broker_env import in_process_broker
from tests.support.demo_provider import demo_broker_env, serving_demo_provider
from tests.support.mariadb import ALSO_ON_MYSQL
from tests.support.processes import serving_function
from tests.support.seed import seed_integration

COUNT = 500


@pytest.fixture
def demo_provider() -> Iterator[tuple[DemoAuthServer, str]]:
    with serving_demo_provider() as served:
        yield served


@ALSO_ON_MYSQL
def test_two_jobs_at_once_refresh_each_integration_exactly_once(
    database_url, demo_provider, tmp_path: Path, monkeypatch
):
    server, base = demo_provider
    env = demo_broker_env(base, database_url, tmp_path, REFRESH_CONCURRENCY="8", REFRESH_BATCH_SIZE="25")
    with in_process_broker(env, monkeypatch) as app:
        now = datetime.now(UTC)

        def seed(i: int) -> None:
            tokens = server._issue(f"user{i}", "profile")
            seed_integration(
                app, "remote-demo", f"entity-{i}", refresh_token=tokens["refresh_token"],
                access_token=tokens["access_token"], expires_at=now + timedelta(seconds=60),
                refreshed_at=now - timedelta(hours=1),
            )  # fmt: skip

        with ThreadPoolExecutor(max_workers=8) as pool:
            list(pool.map(seed, range(COUNT)))

        with serving_function("token_refresh", env) as one, serving_function("token_refresh", env) as two:
            with ThreadPoolExecutor(max_workers=2) as pool:
                runs = list(pool.map(lambda url: requests.post(f"{url}/refresh", timeout=300), [one, two]))
            logs = one.output() + two.output()
        counts = [run.json() for run in runs]
        with app.engine.connect() as conn:
            versions: dict[int, int] = dict(
                conn.execute(
                    select(IntegrationRow.credential_version, func.count()).group_by(IntegrationRow.credential_version)
                ).all()
            )
    assert [run.status_code for run in runs] == [200, 200]
    assert sum(c["claimed"] for c in counts) == COUNT, counts
    assert sum(c["refreshed"] for c in counts) == COUNT, counts
    assert all(c["claimed"] > 0 for c in counts), f"both jobs worked: {counts}"
    assert server.grants["refresh_token"] == COUNT, "one grant per integration, no duplicate and no reuse"
    assert versions == {1: COUNT}, "every row was written exactly once"
    assert not any(t.refresh_token in logs for t in list(server.refresh.values())[:20])
