"""Logs: Cloud Logging's structured JSON in production (severity, message, trace, the request without its query),
readable text locally; configured once per instance by the composition root."""

from __future__ import annotations

import io
import json
import logging
import re
from collections.abc import Iterator
from typing import Any
from uuid import UUID

import flask
import pytest
from functions_framework import create_app

from shared import bootstrap
from shared.config import Settings, get_settings, load_settings
from shared.logs import configure_logging, wants_json

TRACE = "4bf92f3577b34da6a3ce929d0e0e4736"
SAMPLE = """
import logging

import functions_framework

from shared.bootstrap import container


@functions_framework.http
def probe(request):
    container()
    logging.getLogger("broker.probe").info("handled %s", request.path)
    return "ok"
"""


@pytest.fixture(autouse=True)
def restore_root_logger() -> Iterator[None]:
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    yield
    for handler in list(root.handlers):
        if handler not in handlers:
            root.removeHandler(handler)
    root.setLevel(level)


def json_lines(text: str) -> list[dict[str, Any]]:
    entries = [json.loads(line) for line in text.splitlines() if line.startswith("{")]
    return [e for e in entries if isinstance(e.get("message"), str)]  # leave out the library's diagnostic entry


def create_app_for_test() -> flask.Flask:
    return flask.Flask("logs-test")


def production(**overrides: Any) -> Settings:
    return Settings.model_construct(environment="production", **overrides)


@pytest.mark.parametrize(
    ("settings", "expected"),
    [
        (Settings.model_construct(), False),
        (production(), True),
        (production(log_format="text"), False),
        (Settings.model_construct(log_format="json"), True),
    ],
)
def test_json_in_production_or_when_asked(settings, expected):
    assert wants_json(settings) is expected


def test_text_is_readable_locally():
    stream = io.StringIO()
    configure_logging(load_settings(log_format="text"), stream=stream)
    logging.getLogger("broker.test").warning("the %s is %d", "answer", 42)
    assert stream.getvalue() == "WARNING broker.test: the answer is 42\n"


def test_json_carries_severity_message_trace_and_the_request_without_its_query():
    stream = io.StringIO()
    configure_logging(load_settings(log_format="json", gcp_project="my-project"), stream=stream)
    app = create_app_for_test()
    with app.test_request_context(
        "/oauth/callback?code=the-code&state=the-state",
        headers={"X-Cloud-Trace-Context": f"{TRACE}/123;o=1", "User-Agent": "probe/1"},
    ):
        logging.getLogger("broker.test").error("callback failed: %s", "provider_error")
    (entry,) = json_lines(stream.getvalue())
    assert entry["severity"] == "ERROR"
    assert entry["message"] == "callback failed: provider_error"
    assert entry["logging.googleapis.com/trace"] == f"projects/my-project/traces/{TRACE}"
    assert entry["logging.googleapis.com/spanId"] == f"{123:016x}"  # Cloud Logging wants the span id in hex
    assert entry["httpRequest"] == {
        "requestMethod": "GET",
        "requestUrl": "http://localhost/oauth/callback",
        "userAgent": "probe/1",
        "protocol": "HTTP/1.1",
    }
    assert "the-code" not in stream.getvalue()
    assert "the-state" not in stream.getvalue()


def test_json_reads_the_w3c_traceparent_too():
    stream = io.StringIO()
    configure_logging(load_settings(log_format="json", gcp_project="my-project"), stream=stream)
    with create_app_for_test().test_request_context("/", headers={"traceparent": f"00-{TRACE}-00f067aa0ba902b7-01"}):
        logging.getLogger("broker.test").info("hello")
    (entry,) = json_lines(stream.getvalue())
    assert entry["logging.googleapis.com/trace"] == f"projects/my-project/traces/{TRACE}"
    assert entry["logging.googleapis.com/trace_sampled"] is True


def test_outside_a_request_there_is_no_trace():
    stream = io.StringIO()
    configure_logging(load_settings(log_format="json"), stream=stream)
    logging.getLogger("broker.test").info("starting")
    (entry,) = json_lines(stream.getvalue())
    assert entry["logging.googleapis.com/trace"] == ""
    assert entry["httpRequest"] == {}


def test_configuring_again_replaces_the_handler():
    first, second = io.StringIO(), io.StringIO()
    configure_logging(load_settings(log_format="text"), stream=first)
    configure_logging(load_settings(log_format="text"), stream=second)
    logging.getLogger("broker.test").warning("once")
    assert first.getvalue() == ""
    assert second.getvalue() == "WARNING broker.test: once\n"


def test_a_function_logs_json_once_per_line_from_its_first_request(tmp_path, monkeypatch, capsys):
    """A real functions-framework app: the composition root configures logging on first use, once."""
    for name, value in {"LOG_FORMAT": "json", "GCP_PROJECT": "my-project", "LOCAL_DATA_DIR": str(tmp_path)}.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setattr(bootstrap, "_container", None)
    get_settings.cache_clear()
    source = tmp_path / "main.py"
    source.write_text(SAMPLE, encoding="utf-8")
    try:
        client = create_app("probe", str(source)).test_client()
        for _ in range(2):
            response = client.get("/integrations?code=secret-code", headers={"X-Cloud-Trace-Context": f"{TRACE}/1"})
            assert response.status_code == 200
    finally:
        get_settings.cache_clear()
    entries = [e for e in json_lines(capsys.readouterr().err) if e["message"].startswith("handled")]
    assert [e["message"] for e in entries] == ["handled /integrations", "handled /integrations"]
    assert all(e["logging.googleapis.com/trace"] == f"projects/my-project/traces/{TRACE}" for e in entries)
    assert all(e["httpRequest"]["requestUrl"] == "http://localhost/integrations" for e in entries)


# --- The structured fields the log-based metrics read (terraform/monitoring.tf) --------------------------------

# Every jsonPayload field a google_logging_metric filters on or extracts (tests/infra/test_deploy.py checks the
# terraform against this list), and the `event` values they select: both must appear in real JSON log lines.
LOGGED_FIELDS = {
    "event", "provider", "outcome", "failure_class", "error", "method", "status", "duration_ms",
    "claimed", "refreshed", "failed_transient", "reauth_required",
}  # fmt: skip
LOGGED_EVENTS = {"refresh", "reauth_required", "secret_manager_call", "refresh_run"}


@pytest.fixture
def logged_flows(pg_url, secret_manager, tmp_path, monkeypatch) -> list[dict[str, Any]]:
    """JSON log lines of real flows: a connect, a refresh that works, one the secret store refuses (quota), and one
    the provider refuses for good (invalid_grant), against PostgreSQL, the local Secret Manager and oidc-provider."""
    import grpc

    from shared.services.refresh_job import run_refresh_job
    from tests.support.broker_env import (
        CLIENT_ID,
        CLIENT_SECRET,
        broker_env,
        connect,
        in_process_broker,
        provider_file,
    )  # fmt: skip
    from tests.support.engine import expire
    from tests.support.oidc_provider import running_oidc_provider

    client = {
        "client_id": CLIENT_ID,
        "client_secret": CLIENT_SECRET,
        "redirect_uris": ["http://127.0.0.1:9/oauth/callback"],
    }
    stream = io.StringIO()
    with running_oidc_provider([client], access_token_ttl=600) as provider:
        env = broker_env(pg_url, secret_manager, provider_file(tmp_path, provider.issuer), LOG_FORMAT="json")
        secret_manager.clear_failures()
        with in_process_broker(env, monkeypatch) as app:
            configure_logging(app.settings, stream=stream)
            first, second = connect(app, provider, "entity-1"), connect(app, provider, "entity-2")
            expire(app, first)
            run_refresh_job(app.refresh_store, app.refresher, app.clock, app.job_settings)
            secret_manager.fail_always("AddSecretVersion", grpc.StatusCode.RESOURCE_EXHAUSTED, "quota exceeded")
            expire(app, first)
            run_refresh_job(app.refresh_store, app.refresher, app.clock, app.job_settings)
            secret_manager.clear_failures()
            provider.fail_token("invalid_grant")
            expire(app, second)
            app.refresher.refresh(UUID(second), force=True)
    return json_lines(stream.getvalue())


@pytest.mark.postgres
def test_the_fields_the_metrics_read_are_in_the_json_logs(logged_flows):
    seen_fields = {key for entry in logged_flows for key in entry}
    assert seen_fields >= LOGGED_FIELDS, f"never logged: {sorted(LOGGED_FIELDS - seen_fields)}"
    events = {entry.get("event") for entry in logged_flows}
    assert events >= LOGGED_EVENTS, f"never logged: {sorted(LOGGED_EVENTS - events)}"
    refreshes = [e for e in logged_flows if e.get("event") == "refresh"]
    assert {(e["outcome"], e["failure_class"]) for e in refreshes} >= {("refreshed", "none"), ("failed", "permanent")}
    assert all(e["provider"] == "oidc-test" for e in refreshes)
    calls = [e for e in logged_flows if e.get("event") == "secret_manager_call"]
    assert {"CreateSecret", "AddSecretVersion"} <= {e["method"] for e in calls} | {
        "".join(p.title() for p in e["method"].split("_")) for e in calls
    }
    assert any(e["status"] == "RESOURCE_EXHAUSTED" and e["severity"] == "WARNING" for e in calls)
    assert any(e["status"] == "OK" for e in calls)


@pytest.mark.postgres
def test_metric_lines_carry_no_secret(logged_flows):
    from tests.support.broker_env import CLIENT_SECRET

    text = json.dumps(logged_flows)
    assert CLIENT_SECRET not in text
    assert not re.search(r"\beyJ[A-Za-z0-9_-]{10,}\.", text), "a JWT (access or ID token) reached the logs"
    assert "projects/" not in " ".join(str(e.get("method", "")) for e in logged_flows)
