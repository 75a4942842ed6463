"""The refresh fan-out's pure parts: shards per provider, queue and task names; and its settings' rules."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from shared.config import load_settings
from shared.domain.fanout import Shard, plan_shards, queue_id, task_id
from shared.errors import ConfigurationError
from tests.unit.test_config import PRODUCTION, clean_env, setenv

__all__ = ["clean_env"]  # its autouse fixture clears the broker's settings from the environment


@pytest.mark.parametrize(
    ("due", "size", "most", "expected"),
    [
        ({}, 100, 10, []),
        ({"github": 0}, 100, 10, []),
        ({"github": 1}, 100, 10, [Shard("github", 0, 1)]),
        ({"github": 100}, 100, 10, [Shard("github", 0, 100)]),
        ({"github": 101}, 100, 10, [Shard("github", 0, 100), Shard("github", 1, 1)]),
        ({"github": 10_000}, 100, 2, [Shard("github", 0, 100), Shard("github", 1, 100)]),
        ({"slack": 3, "github": 2}, 2, 5, [Shard("github", 0, 2), Shard("slack", 0, 2), Shard("slack", 1, 1)]),
    ],
)
def test_plan_shards(due, size, most, expected):
    assert plan_shards(due, size, most) == expected


def test_queue_and_task_names_are_in_cloud_tasks_alphabet_and_stable_within_a_minute():
    shard = Shard("microsoft-entra", 7, 100)
    first = task_id(shard, datetime(2027, 1, 15, 12, 0, 1, tzinfo=UTC))
    assert first == task_id(shard, datetime(2027, 1, 15, 12, 0, 59, tzinfo=UTC))
    assert first != task_id(shard, datetime(2027, 1, 15, 12, 1, 0, tzinfo=UTC))
    assert first != task_id(Shard("microsoft-entra", 8, 100), datetime(2027, 1, 15, 12, 0, 1, tzinfo=UTC))
    assert first.endswith("-microsoft-entra-20270115T1200-7")
    assert all(c.isalnum() or c in "-_" for c in first)
    assert len(first) <= 500
    assert queue_id("broker-refresh", "microsoft-entra") == "broker-refresh-microsoft-entra"


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"TASKS_LOCATION": "europe-west1"}, "TASKS_LOCATION: the refresh fan-out needs GCP_PROJECT"),
        ({"TASKS_LOCATION": "europe-west1", "GCP_PROJECT": "p"}, "REFRESH_SHARD_URL"),
        ({"TASKS_LOCATION": "Europe West"}, "TASKS_LOCATION"),
        ({"TASKS_QUEUE_PREFIX": "Refresh_"}, "TASKS_QUEUE_PREFIX"),
        ({"REFRESH_SHARD_SIZE": "0"}, "REFRESH_SHARD_SIZE"),
        ({"REFRESH_SHARD_URL": "ftp://x"}, "REFRESH_SHARD_URL"),
    ],
)
def test_fanout_settings_that_cannot_work_are_refused(monkeypatch, env, message):
    setenv(monkeypatch, env)
    with pytest.raises(ConfigurationError, match=message):
        load_settings()


def test_production_refuses_a_tasks_emulator(monkeypatch):
    setenv(monkeypatch, {**PRODUCTION, "TASKS_ENDPOINT": "127.0.0.1:9999"})
    with pytest.raises(ConfigurationError, match="TASKS_ENDPOINT: an emulator endpoint is refused"):
        load_settings()


def test_a_complete_fanout_configuration_loads(monkeypatch):
    setenv(monkeypatch, {
        "TASKS_LOCATION": "europe-west1", "GCP_PROJECT": "p", "REFRESH_SHARD_URL": "https://r.example/refresh/shard",
    })  # fmt: skip
    settings = load_settings()
    assert (settings.tasks_queue_prefix, settings.refresh_shard_size, settings.refresh_max_shards) == (
        "broker-refresh", 100, 600,
    )  # fmt: skip
