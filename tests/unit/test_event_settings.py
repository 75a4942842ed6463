"""Events settings: WEBHOOK_URLS, WEBHOOK_SECRETS, PUBSUB_TOPIC, EVENTS_RETRY_HOURS, and the production rules
for outbound webhook URLs (https only, never a private, link-local, loopback or metadata host)."""

from __future__ import annotations

import base64

import pytest

from shared import startup
from shared.config import load_settings
from shared.errors import ConfigurationError
from shared.providers.catalog import load_catalog
from tests.unit.test_config import PRODUCTION, clean_env, setenv  # noqa: F401 - the fixture is used

SECRET = "whsec_" + base64.b64encode(b"w" * 32).decode()


def test_defaults_deliver_nowhere_and_retry_for_a_day():
    settings = load_settings()
    assert (settings.webhook_urls, settings.webhook_secrets, settings.pubsub_topic) == ([], [], None)
    assert settings.events_retry_hours == 24


def test_urls_and_secrets_are_read_comma_separated(monkeypatch):
    other = "whsec_" + base64.b64encode(b"o" * 40).decode()
    setenv(monkeypatch, {
        "WEBHOOK_URLS": "https://a.example.com/hooks,http://127.0.0.1:9000/in",
        "WEBHOOK_SECRETS": f"{SECRET},{other}",
        "PUBSUB_TOPIC": "projects/my-project/topics/broker-events",
        "EVENTS_RETRY_HOURS": "48",
    })  # fmt: skip
    settings = load_settings()
    assert settings.webhook_urls == ["https://a.example.com/hooks", "http://127.0.0.1:9000/in"]
    assert settings.webhook_keys == [b"w" * 32, b"o" * 40]
    assert settings.pubsub_topic == "projects/my-project/topics/broker-events"
    assert settings.events_retry_hours == 48


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({"WEBHOOK_URLS": "https://a.example.com/x"}, "WEBHOOK_SECRETS: required with WEBHOOK_URLS"),
        ({"WEBHOOK_URLS": "http://hooks.example.com/x", "WEBHOOK_SECRETS": SECRET}, "loopback"),
        ({"WEBHOOK_URLS": "https://user:pw@hooks.example.com/x", "WEBHOOK_SECRETS": SECRET}, "credentials"),
        ({"WEBHOOK_URLS": "ftp://hooks.example.com/x", "WEBHOOK_SECRETS": SECRET}, "http"),
        ({"WEBHOOK_URLS": "https://a.example.com,https://a.example.com", "WEBHOOK_SECRETS": SECRET}, "twice"),
        ({"WEBHOOK_SECRETS": "whsec_c2hvcnQ="}, "WEBHOOK_SECRETS: secret 1 of 1 must decode to 24-64 bytes"),
        ({"WEBHOOK_SECRETS": f"{SECRET}, {SECRET}"}, "WEBHOOK_SECRETS"),
        ({"PUBSUB_TOPIC": "broker-events"}, "PUBSUB_TOPIC: must be projects/<project id>/topics/<topic name>"),
        ({"PUBSUB_TOPIC": "projects/p/topics/goog-x"}, "PUBSUB_TOPIC"),
        ({"EVENTS_RETRY_HOURS": "0"}, "EVENTS_RETRY_HOURS"),
    ],
)
def test_bad_values_stop_the_start_naming_the_variable_never_a_secret(monkeypatch, values, message):
    setenv(monkeypatch, values)
    with pytest.raises(ConfigurationError, match=message) as caught:
        load_settings()
    assert SECRET[6:] not in caught.value.message


def production(monkeypatch, **values: str):
    setenv(monkeypatch, {**PRODUCTION, "WEBHOOK_SECRETS": SECRET, **values})
    settings = load_settings()
    return startup.problems(settings, load_catalog(None), {}, client_secrets=True, token_callers=False)


@pytest.mark.parametrize(
    ("url", "reason"),
    [
        ("https://10.0.0.5/hooks", "a private address"),
        ("https://192.168.1.20/hooks", "a private address"),
        ("https://169.254.169.254/computeMetadata/v1/", "a cloud metadata address"),
        ("https://[fe80::1]/hooks", "a link-local address"),
        ("https://metadata.google.internal/hooks", "a cloud metadata host"),
        ("https://[::ffff:10.0.0.5]/hooks", "a private address"),
    ],
)
def test_production_refuses_webhook_hosts_that_are_private_link_local_or_metadata(monkeypatch, url, reason):
    (problem,) = production(monkeypatch, WEBHOOK_URLS=url)
    assert problem.startswith(f"WEBHOOK_URLS: the host of endpoint 1 is {reason}")


def test_production_delivers_over_https_only_and_never_to_loopback(monkeypatch):
    with pytest.raises(ConfigurationError, match="WEBHOOK_URLS: production delivers over https only"):
        production(monkeypatch, WEBHOOK_URLS="http://127.0.0.1:9000/hooks")
    (problem,) = production(monkeypatch, WEBHOOK_URLS="https://localhost/hooks")
    assert "a loopback host" in problem
    assert production(monkeypatch, WEBHOOK_URLS="https://hooks.example.com/in") == []


def test_production_refuses_the_pubsub_emulator(monkeypatch):
    setenv(monkeypatch, {**PRODUCTION, "PUBSUB_TOPIC": "projects/my-project/topics/events"})
    found = startup.problems(
        load_settings(), load_catalog(None), {"PUBSUB_EMULATOR_HOST": "127.0.0.1:8085"}, client_secrets=True,
        token_callers=False,
    )  # fmt: skip
    assert found == ["PUBSUB_EMULATOR_HOST: an emulator is refused in production (PUBSUB_TOPIC is set)"]
