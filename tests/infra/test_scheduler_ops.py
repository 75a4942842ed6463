"""`broker scheduler status|run|pause|resume`: the real google-cloud-scheduler client against a local gRPC fake."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from shared.cli import main
from shared.errors import ConfigurationError
from shared.ops import build_scheduler_client, job_name, scheduler_job
from tests.infra.fake_scheduler import LocalScheduler

JOB = "projects/my-project/locations/europe-west1/jobs/broker-refresh"
URI = "https://broker-token-refresh-123.europe-west1.run.app/refresh"


@pytest.fixture
def scheduler() -> Iterator[LocalScheduler]:
    with LocalScheduler.start() as running:
        running.add_job(JOB, uri=URI)
        yield running


def broker(scheduler: LocalScheduler, *args: str) -> int:
    return main(["scheduler", *args, "--endpoint", scheduler.endpoint])


def test_status_shows_the_job(scheduler, capsys):
    assert broker(scheduler, "status", "--job", JOB) == 0
    out = capsys.readouterr().out
    assert f"job:       {JOB}" in out
    assert "state:     ENABLED" in out
    assert "schedule:  */5 * * * * (Etc/UTC)" in out
    assert f"target:    POST {URI}" in out
    assert "(never ran)" in out
    assert scheduler.calls == {"GetJob": 1}


def test_pause_then_resume(scheduler, capsys):
    assert broker(scheduler, "pause", "--job", JOB) == 0
    assert "state:     PAUSED" in capsys.readouterr().out
    assert broker(scheduler, "status", "--job", JOB) == 0
    assert "state:     PAUSED" in capsys.readouterr().out
    assert broker(scheduler, "resume", "--job", JOB) == 0
    assert "state:     ENABLED" in capsys.readouterr().out
    assert scheduler.calls == {"PauseJob": 1, "GetJob": 1, "ResumeJob": 1}


def test_run_now(scheduler, capsys):
    assert broker(scheduler, "run", "--job", JOB) == 0
    assert "(ok)" in capsys.readouterr().out
    assert scheduler.calls == {"RunJob": 1}


def test_a_job_id_with_project_and_location(scheduler, capsys):
    args = ["status", "--job", "broker-refresh", "--project", "my-project", "--location", "europe-west1"]
    assert broker(scheduler, *args) == 0
    assert f"job:       {JOB}" in capsys.readouterr().out


def test_an_unknown_job_is_an_error_not_a_trace(scheduler, capsys):
    missing = JOB.replace("broker-refresh", "nope")
    assert broker(scheduler, "status", "--job", missing) == 1
    err = capsys.readouterr().err
    assert err.startswith(f"broker: scheduler status {missing}: ")
    assert "not found" in err.lower()
    assert "Traceback" not in err


def test_a_job_id_without_a_location_is_refused(scheduler, capsys):
    assert broker(scheduler, "status", "--job", "broker-refresh", "--project", "p") == 2
    assert "--location" in capsys.readouterr().err
    assert not scheduler.calls


@pytest.mark.parametrize(
    ("job", "project", "location", "expected"),
    [
        (JOB, None, None, JOB),
        ("broker-refresh", "p", "us-central1", "projects/p/locations/us-central1/jobs/broker-refresh"),
    ],
)
def test_job_name(job, project, location, expected):
    assert job_name(job, project, location) == expected


@pytest.mark.parametrize("job", ["projects/p/jobs/x", "a/b", "projects/p/locations/l/jobs/"])
def test_job_name_refuses_what_is_not_a_job(job):
    with pytest.raises(ConfigurationError):
        job_name(job, "p", "l")


def test_the_client_is_built_only_when_a_command_runs(scheduler):
    client = build_scheduler_client(scheduler.endpoint)
    assert scheduler.calls == {}  # building talks to nobody
    assert scheduler_job(client, "status", JOB).state == "ENABLED"
