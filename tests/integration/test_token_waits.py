"""A token fetch that waited for another worker's lease: when that worker lets go without writing new credentials
(the refresh job only moved a pending token into the secret store, or gave the lease back), the fetch refreshes
itself instead of answering 503 with an expired token in hand."""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from typing import Any
from uuid import UUID

from tests.support.broker_env import connect
from tests.support.engine import expire, refresh_grants
from tests.support.mariadb import ALSO_ON_MYSQL


@ALSO_ON_MYSQL
def test_a_fetch_whose_lease_holder_lets_go_without_refreshing_refreshes_itself(app, provider):
    integration_id = UUID(connect(app, provider))
    expire(app, integration_id)
    assert app.refresh_store.claim(integration_id, "job-elsewhere", timedelta(seconds=60), app.clock.now())
    outcome: dict[str, Any] = {}

    def fetch() -> None:
        try:
            outcome["token"] = app.token_service.fetch(integration_id, "test")
        except Exception as exc:  # noqa: BLE001 - the assertion below names it
            outcome["error"] = exc

    waiting = threading.Thread(target=fetch)
    waiting.start()
    time.sleep(0.5)  # the fetch is waiting for the holder
    app.refresh_store.release(integration_id, "job-elsewhere")  # e.g. it only settled a pending token
    waiting.join(timeout=30)
    assert "error" not in outcome, repr(outcome.get("error"))
    assert outcome["token"]["access_token"]
    assert refresh_grants(provider) == {"success": 1, "errors": {}}


@ALSO_ON_MYSQL
def test_twenty_fetches_of_an_expired_token_at_once_refresh_it_once(app, provider):
    """The lease decides among concurrent fetches in one process (the functions tier has two processes on
    PostgreSQL): one refreshes, the others wait and read what it wrote."""
    integration_id = UUID(connect(app, provider))
    expire(app, integration_id)
    barrier = threading.Barrier(20)

    def fetch(_: int) -> str:
        barrier.wait()
        return str(app.token_service.fetch(integration_id, "test")["access_token"])

    with ThreadPoolExecutor(max_workers=20) as pool:
        tokens = set(pool.map(fetch, range(20)))
    assert len(tokens) == 1
    assert refresh_grants(provider) == {"success": 1, "errors": {}}
