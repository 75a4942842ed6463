"""The fan-out dispatcher against PostgreSQL and the local Cloud Tasks (google-cloud-tasks over gRPC): what it
counts, the tasks it creates (queue, name, body, target, OIDC identity), a repeated dispatch, an outage."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import grpc
import pytest
from sqlalchemy import Engine, insert

from shared.adapters.db import engine_for_url
from shared.adapters.gcp_tasks import CloudTasksQueue
from shared.adapters.orm import IntegrationRow
from shared.adapters.sql_refresh import SqlRefreshStore
from shared.domain.clock import FixedClock
from shared.errors import TaskQueueUnavailable
from shared.services.refresh_fanout import FanoutSettings, RefreshFanout
from shared.services.refresh_job import JobSettings
from tests.fakes.cloud_tasks_server import LocalCloudTasks

NOW = datetime(2027, 1, 15, 12, 0, 30, tzinfo=UTC)
URL = "https://refresh.example.com/refresh/shard"


@pytest.fixture
def engine(pg_url: str) -> Iterator[Engine]:
    engine = engine_for_url(pg_url)
    yield engine
    engine.dispose()


@pytest.fixture
def tasks() -> Iterator[LocalCloudTasks]:
    with LocalCloudTasks.start() as server:
        for provider in ("github", "google"):
            server.add_queue("p", "europe-west1", f"broker-refresh-{provider}")
        yield server


def _row(provider: str, expires_in: timedelta, **extra: Any) -> dict[str, Any]:
    return {
        "id": uuid.uuid4(), "entity_id": f"e-{uuid.uuid4().hex[:8]}", "provider": provider,
        "credential_type": "oauth2", "status": "active", "account_subject": uuid.uuid4().hex, "granted_scopes": [],
        "config": {}, "created_at": NOW, "updated_at": NOW, "secret_ref": "s", "secret_version": 1,
        "token_expires_at": NOW + expires_in, **extra,
    }  # fmt: skip


def _fanout(engine: Engine, tasks: LocalCloudTasks, account: str | None = "sched@p.iam.gserviceaccount.com") -> Any:
    queue = CloudTasksQueue(
        CloudTasksQueue.build_client(tasks.grpc_endpoint), project="p", location="europe-west1", url=URL,
        service_account=account, audience="https://refresh.example.com",
    )  # fmt: skip
    return RefreshFanout(
        store=SqlRefreshStore(engine), refresher=None, catalog=None, clock=FixedClock(NOW), queue=queue,  # type: ignore[arg-type]
        job=JobSettings(horizon=timedelta(minutes=15)),
        settings=FanoutSettings("broker-refresh", shard_size=4, max_shards=2, configured=True),
    )  # fmt: skip


def test_dispatch_counts_due_rows_per_provider_and_enqueues_named_shards(engine: Engine, tasks: LocalCloudTasks):
    soon = timedelta(minutes=5)
    rows = [_row("github", soon) for _ in range(5)] + [_row("google", soon) for _ in range(11)]
    rows += [
        _row("github", timedelta(hours=1)),  # not due yet
        _row("github", soon, status="reauth_required"),
        _row("github", soon, next_attempt_after=NOW + timedelta(minutes=1)),  # backing off
        _row("github", soon, secret_ref=None),  # nothing to refresh with
        _row("slack", soon),  # no queue
    ]
    with engine.begin() as conn:
        for row in rows:  # one by one: an executemany takes its columns from the first row
            conn.execute(insert(IntegrationRow), [row])
    fanout = _fanout(engine, tasks)

    first = fanout.dispatch()
    again = fanout.dispatch()  # the scheduler retried within the minute

    assert first | {"duration_ms": 0} == {
        "due": 5 + 11 + 1, "shards": 2 + 2 + 1, "enqueued": 4, "already_enqueued": 0, "queues_missing": ["slack"],
        "duration_ms": 0,
    }  # fmt: skip
    assert (again["enqueued"], again["already_enqueued"]) == (0, 4)
    queued = tasks.tasks()
    limits = {q: sorted(json.loads(t.http_request.body)["limit"] for t in ts) for q, ts in queued.items()}
    assert limits == {"broker-refresh-github": [1, 4], "broker-refresh-google": [4, 4]}  # google: max_shards
    task = queued["broker-refresh-github"][0]
    assert task.name.startswith("projects/p/locations/europe-west1/queues/broker-refresh-github/tasks/")
    assert task.name.rsplit("/", 1)[1].split("-", 1)[1] in ("github-20270115T1200-0", "github-20270115T1200-1")
    assert task.http_request.url == URL
    assert task.http_request.headers["Content-Type"] == "application/json"
    assert task.http_request.oidc_token.service_account_email == "sched@p.iam.gserviceaccount.com"
    assert task.http_request.oidc_token.audience == "https://refresh.example.com"


def test_a_dispatch_with_the_queue_service_down_fails_and_changes_nothing(engine: Engine, tasks: LocalCloudTasks):
    with engine.begin() as conn:
        conn.execute(insert(IntegrationRow), [_row("github", timedelta(minutes=5))])
    tasks.fail_next(grpc.StatusCode.PERMISSION_DENIED)
    with pytest.raises(TaskQueueUnavailable) as raised:
        _fanout(engine, tasks, account=None).dispatch()
    assert raised.value.http_status == 503
    assert "PermissionDenied" in raised.value.message
    assert tasks.tasks()["broker-refresh-github"] == []
