"""The refresh fan-out end to end: POST /refresh/dispatch enqueues shards on per-provider queues of a local Cloud
Tasks (google-cloud-tasks against tests/fakes/cloud_tasks_server.py), the fake posts each task to /refresh/shard of
token_refresh served as deployed, and every due integration is refreshed exactly once.

The provider is the project's demo authorization server (rotating refresh tokens, a used one is rejected), under
three catalog ids: two with a queue, one without (its integrations wait and the dispatch names it).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import requests
from sqlalchemy import select

from shared.adapters.orm import IntegrationRow
from shared.local.demo_oauth import DEMO_CLIENT_ID, DEMO_CLIENT_SECRET, DemoAuthServer
from tests.fakes.cloud_tasks_server import LocalCloudTasks
from tests.support.broker_env import DATA_KEY, in_process_broker
from tests.support.demo_provider import serving_demo_provider
from tests.support.postgres import free_port
from tests.support.processes import serving_function
from tests.support.seed import seed_integration

DUE = {"demo-a": 60, "demo-b": 7, "demo-c": 5}  # demo-c has no queue
LATER = 4  # demo-a integrations that are not due


@pytest.fixture
def demo_provider() -> Iterator[tuple[DemoAuthServer, str]]:
    with serving_demo_provider() as served:
        yield served


@pytest.fixture
def cloud_tasks() -> Iterator[LocalCloudTasks]:
    with LocalCloudTasks.start() as tasks:
        yield tasks


def _env(pg_url: str, base: str, tmp_path: Path, tasks: LocalCloudTasks, port: int) -> dict[str, str]:
    providers = tmp_path / "providers.yaml"
    entries = "".join(
        f"  {name}:\n    display_name: {name}\n    auth_mode: oauth2\n"
        f"    authorization_url: {base}/demo/oauth/authorize\n    token_url: {base}/demo/oauth/token\n"
        "    refresh_token_rotates: true\n"
        for name in DUE
    )
    providers.write_text("providers:\n" + entries, encoding="utf-8")
    clients: dict[str, str] = {}
    for name in DUE:
        prefix = name.upper().replace("-", "_")
        clients |= {f"{prefix}_CLIENT_ID": DEMO_CLIENT_ID, f"{prefix}_CLIENT_SECRET": DEMO_CLIENT_SECRET}
    return {
        "DATABASE_URL": pg_url, "SECRET_BACKEND": "database", "DATA_KEYS": f"1:{DATA_KEY}",
        "PROVIDERS_FILE": str(providers), "REFRESH_CONCURRENCY": "4", "REFRESH_BATCH_SIZE": "10",
        "TASKS_LOCATION": "europe-west1", "GCP_PROJECT": "fanout-test", "TASKS_ENDPOINT": tasks.grpc_endpoint,
        "TASKS_QUEUE_PREFIX": "broker-refresh", "REFRESH_SHARD_SIZE": "25",
        "REFRESH_SHARD_URL": f"http://127.0.0.1:{port}/refresh/shard", **clients,
    }  # fmt: skip


def test_dispatch_enqueues_shards_per_provider_queue_and_the_shards_refresh_each_due_integration_once(
    pg_url, demo_provider, cloud_tasks: LocalCloudTasks, tmp_path: Path, monkeypatch
):
    server, base = demo_provider
    port = free_port()
    env = _env(pg_url, base, tmp_path, cloud_tasks, port)
    for queue in ("broker-refresh-demo-a", "broker-refresh-demo-b"):
        cloud_tasks.add_queue("fanout-test", "europe-west1", queue)
    with in_process_broker(env, monkeypatch) as app:
        now = datetime.now(UTC)
        due_ids: dict[str, list[str]] = {}
        for provider, count in DUE.items():
            for i in range(count + (LATER if provider == "demo-a" else 0)):
                tokens = server._issue(f"{provider}-user{i}", "profile")
                # demo-c's expire soonest: a shard that ignored its provider would claim them first
                soon = timedelta(seconds={"demo-a": 90, "demo-b": 60, "demo-c": 30}[provider])
                expires = now + (soon if i < count else timedelta(hours=2))
                integration_id = seed_integration(
                    app, provider, f"{provider}-{i}", refresh_token=tokens["refresh_token"],
                    access_token=tokens["access_token"], expires_at=expires, refreshed_at=now - timedelta(hours=1),
                )  # fmt: skip
                if i < count:
                    due_ids.setdefault(provider, []).append(str(integration_id))

        with serving_function("token_refresh", env, port=port) as served:
            dispatched = requests.post(f"{served}/refresh/dispatch", timeout=120)
            queued = cloud_tasks.tasks()
            deliveries = cloud_tasks.deliver(concurrency=4)
            answers = [d.status for d in deliveries]
            again = requests.post(f"{served}/refresh/dispatch", timeout=120)
        with app.engine.connect() as conn:
            rows = conn.execute(
                select(IntegrationRow.id, IntegrationRow.provider, IntegrationRow.credential_version)
            ).all()

    assert dispatched.status_code == 200, dispatched.text
    dispatch = dispatched.json()["dispatch"]
    assert dispatch["due"] == sum(DUE.values())
    assert dispatch["queues_missing"] == ["demo-c"]
    assert dispatch["enqueued"] == 3 + 1  # demo-a: 25, 25, 10; demo-b: 7
    bodies = {q: sorted(json.loads(task.http_request.body)["limit"] for task in ts) for q, ts in queued.items()}
    assert bodies == {"broker-refresh-demo-a": [10, 25, 25], "broker-refresh-demo-b": [7]}
    for task in queued["broker-refresh-demo-a"]:
        assert json.loads(task.http_request.body)["provider"] == "demo-a"
        assert task.http_request.url == env["REFRESH_SHARD_URL"]
        assert "/queues/broker-refresh-demo-a/tasks/" in task.name
    assert answers == [200] * 4
    assert cloud_tasks.tasks() == {"broker-refresh-demo-a": [], "broker-refresh-demo-b": []}
    versions = {str(row.id): (row.provider, row.credential_version) for row in rows}
    for provider in ("demo-a", "demo-b"):
        assert all(versions[i] == (provider, 1) for i in due_ids[provider]), "each due one refreshed once"
    assert all(versions[i] == ("demo-c", 0) for i in due_ids["demo-c"]), "no queue: not refreshed"
    assert sum(1 for p, v in versions.values() if p == "demo-a" and v == 0) == LATER, "what is not due waits"
    assert server.grants["refresh_token"] == DUE["demo-a"] + DUE["demo-b"], "one grant each, no reuse"
    assert again.status_code == 200
    assert again.json()["dispatch"] | {"duration_ms": 0} == {
        "due": DUE["demo-c"], "shards": 1, "enqueued": 0, "already_enqueued": 0, "queues_missing": ["demo-c"],
        "duration_ms": 0,
    }  # fmt: skip


def test_shard_and_dispatch_refuse_what_they_cannot_serve(
    pg_url, demo_provider, cloud_tasks: LocalCloudTasks, tmp_path: Path, monkeypatch
):
    _server, base = demo_provider
    port = free_port()
    env = _env(pg_url, base, tmp_path, cloud_tasks, port)
    unconfigured = {k: v for k, v in env.items() if k not in ("TASKS_LOCATION", "TASKS_ENDPOINT")}
    with serving_function("token_refresh", unconfigured, port=port) as served:
        url = f"{served}/refresh/shard"

        def post(body: str, content_type: str = "application/json") -> requests.Response:
            return requests.post(url, data=body, headers={"Content-Type": content_type}, timeout=60)

        answers = {
            "malformed": post("{"),
            "no_limit": post('{"provider": "demo-a"}'),
            "zero": post('{"provider": "demo-a", "limit": 0}'),
            "too_many": post('{"provider": "demo-a", "limit": 1001}'),
            "string_limit": post('{"provider": "demo-a", "limit": "5"}'),
            "extra": post('{"provider": "demo-a", "limit": 5, "owner": "x"}'),
            "bad_id": post('{"provider": "Demo A", "limit": 5}'),
            "unknown": post('{"provider": "nobody", "limit": 5}'),
            "text": post("provider=demo-a", "text/plain"),
        }
        nothing_due = post('{"provider": "demo-a", "limit": 5}')
        dispatch = requests.post(f"{served}/refresh/dispatch", timeout=60)
    codes = {name: (r.status_code, r.json()["error"]["code"]) for name, r in answers.items()}
    assert codes == {
        "malformed": (400, "malformed_json"), "no_limit": (422, "validation_failed"),
        "zero": (422, "validation_failed"), "too_many": (422, "validation_failed"),
        "string_limit": (422, "validation_failed"), "extra": (422, "validation_failed"),
        "bad_id": (422, "validation_failed"), "unknown": (404, "unknown_provider"),
        "text": (415, "unsupported_media_type"),
    }  # fmt: skip
    assert nothing_due.status_code == 200
    assert nothing_due.json()["claimed"] == 0
    assert nothing_due.json()["provider"] == "demo-a"
    assert (dispatch.status_code, dispatch.json()["error"]["code"]) == (409, "fanout_not_configured")
    assert cloud_tasks.calls["CreateTask"] == 0
