"""Settings: typed, read once, failing fast with the variable's name."""

from __future__ import annotations

import base64

import pytest

from shared.config import load_settings
from shared.config_values import parse_data_keys, provider_env_prefix
from shared.errors import ConfigurationError

KEY = base64.b64encode(b"k" * 32).decode()
PRODUCTION = {
    "ENVIRONMENT": "production",
    "AUTH_MODE": "oidc",
    "INSTANCE_CONNECTION_NAME": "p:r:i",
    "DB_USER": "broker-sa@p.iam",
    "PUBLIC_BASE_URL": "https://broker.example.com",
    "DATA_KEY_SECRET": "projects/p/secrets/broker-data-key/versions/3",
    "GCP_PROJECT": "p",
    "AUTH_ISSUER": "https://securetoken.google.com/p",
    "AUTH_AUDIENCE": "p",
    "INTERNAL_API_KEYS": "k" * 32,
    "SCHEDULER_SERVICE_ACCOUNT": "scheduler@p.iam.gserviceaccount.com",
    "REFRESH_AUDIENCE": "https://refresh.example.com",
}


@pytest.fixture(autouse=True)
def clean_env(monkeypatch):
    import os

    for name in list(os.environ):
        if name.endswith(("_CLIENT_ID", "_CLIENT_SECRET")) or name in PRODUCTION or name in {
            "DATABASE_URL", "SECRET_BACKEND", "DATA_KEYS", "PORT", "ALLOWED_RETURN_URLS", "INTERNAL_API_KEYS",
            "SECRET_PREFIX", "SECRET_MANAGER_ENDPOINT", "K_SERVICE", "CLOUD_RUN_JOB",
        }:  # fmt: skip
            monkeypatch.delenv(name)


def setenv(monkeypatch, values):
    for name, value in values.items():
        monkeypatch.setenv(name, value)


def test_embedded_defaults_need_nothing():
    settings = load_settings()
    assert settings.environment == "development"
    assert settings.secret_backend == "database"
    assert settings.port == 8080
    assert settings.base_url == "http://127.0.0.1:8080"
    assert settings.return_urls == ["http://127.0.0.1:8080/"]


@pytest.mark.parametrize("marker", ["K_SERVICE", "CLOUD_RUN_JOB"])
def test_on_cloud_run_the_environment_defaults_to_production(monkeypatch, marker):
    """Cloud Run sets K_SERVICE on every service (CLOUD_RUN_JOB on jobs): unset ENVIRONMENT is not development."""
    setenv(monkeypatch, {**PRODUCTION, marker: "broker-token-fetch"})
    monkeypatch.delenv("ENVIRONMENT")
    assert load_settings().is_production
    monkeypatch.delenv("INTERNAL_API_KEYS")
    assert load_settings().token_caller_problems() == [
        "INTERNAL_API_KEYS or TOKEN_INVOKERS: the token endpoint needs its callers in production"
    ]
    monkeypatch.setenv("ENVIRONMENT", "development")
    assert not load_settings().is_production, "an explicit ENVIRONMENT still decides"


def test_a_complete_production_configuration_loads(monkeypatch):
    setenv(monkeypatch, PRODUCTION)
    settings = load_settings()
    assert settings.is_production
    assert settings.return_urls == []


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"PORT": "eighty"}, "PORT: Input should be a valid integer"),
        ({"ENVIRONMENT": "staging"}, "ENVIRONMENT: Input should be 'development' or 'production'"),
        ({"SECRET_BACKEND": "gcp"}, "GCP_PROJECT: required when SECRET_BACKEND=gcp"),
        ({"DATABASE_URL": "postgresql://x/y"}, "DATABASE_URL: must start with postgresql+pg8000://"),
        ({"SECRET_PREFIX": "1bad/prefix"}, "SECRET_PREFIX: must start with a letter"),
        (
            {"PUBLIC_BASE_URL": "http://broker.example.com"},
            "PUBLIC_BASE_URL: http is accepted only for loopback",
        ),
        ({"ALLOWED_RETURN_URLS": "https://ok.example/,http://evil.example/"}, "ALLOWED_RETURN_URLS: entry"),
        ({"INTERNAL_API_KEYS": "changeme"}, "INTERNAL_API_KEYS: every key must be at least 24 characters"),
        ({"DATA_KEYS": "1:changeme"}, "DATA_KEYS: key version 1 is a placeholder"),
        ({"DATA_KEYS": "1:" + base64.b64encode(b"short").decode()}, "must decode to 32 bytes, found 5"),
        ({"DATA_KEY_SECRET": "projects/p/secrets/k/versions/latest"}, "DATA_KEY_SECRET: must be projects/"),
        ({"GOOGLE_CLIENT_ID": "<your client id>"}, "GOOGLE_CLIENT_ID/GOOGLE_CLIENT_SECRET: a placeholder"),
        ({"DATABASE_URL": "sqlite:///x.db", "INSTANCE_CONNECTION_NAME": "p:r:i"}, "set one, not both"),
        ({"DATABASE_URL": "mysql://u:p@h/db"}, "DATABASE_URL: must start with postgresql+pg8000://, mysql+pymysql://"),
        ({"DB_DIALECT": "oracle"}, "DB_DIALECT: Input should be 'postgresql' or 'mysql'"),
        (
            {"DATABASE_URL": "postgresql+pg8000://u:p@h/db", "DB_DIALECT": "mysql"},
            "DB_DIALECT: mysql contradicts DATABASE_URL (postgresql)",
        ),
        ({"PROVIDER_TIMEOUT": "30", "REFRESH_LEASE": "35"}, "REFRESH_LEASE: must exceed PROVIDER_TIMEOUT by at least"),
        ({"SECRET_BACKEND": "vault"}, "SECRET_BACKEND: Input should be 'database', 'gcp', 'openbao' or 'aws'"),
        ({"SECRET_BACKEND": "openbao"}, "OPENBAO_ADDR: required with SECRET_BACKEND=openbao or DATA_KEY_TRANSIT"),
        ({"SECRET_BACKEND": "openbao", "OPENBAO_ADDR": "http://127.0.0.1:8200"}, "OPENBAO_TOKEN: required (or"),
        (
            {"SECRET_BACKEND": "openbao", "OPENBAO_ADDR": "http://127.0.0.1:8200", "OPENBAO_ROLE_ID": "r"},
            "OPENBAO_ROLE_ID and OPENBAO_SECRET_ID: both are required for AppRole",
        ),
        (
            {"DATA_KEY_TRANSIT": "transit/broker", "OPENBAO_ADDR": "http://127.0.0.1:8200", "OPENBAO_AUTH": "gcp"},
            "OPENBAO_ROLE: required with OPENBAO_AUTH=gcp",
        ),
        ({"OPENBAO_ADDR": "ftp://bao"}, "OPENBAO_ADDR:"),
        ({"OPENBAO_AUTH": "kerberos"}, "OPENBAO_AUTH: Input should be 'token', 'approle' or 'gcp'"),
        ({"DATA_KEY_TRANSIT": "broker"}, "DATA_KEY_TRANSIT: String should match pattern"),
        (
            {
                "DATA_KEY_TRANSIT": "transit/broker",
                "DATA_KEYS": "1:" + base64.b64encode(b"k" * 32).decode(),
                "OPENBAO_ADDR": "http://127.0.0.1:8200",
                "OPENBAO_TOKEN": "t",
            },
            "DATA_KEY_TRANSIT: set one source for the data key",
        ),
        ({"SECRET_BACKEND": "aws"}, "AWS_REGION: required when SECRET_BACKEND=aws"),
        ({"SECRET_BACKEND": "aws", "AWS_REGION": "Europe"}, "AWS_REGION: String should match pattern"),
    ],
)
def test_bad_values_fail_fast_naming_the_variable(monkeypatch, env, message):
    setenv(monkeypatch, env)
    with pytest.raises(ConfigurationError) as caught:
        load_settings()
    assert message in caught.value.message


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ({"AUTH_MODE": "dev"}, "AUTH_MODE: 'dev' is refused when ENVIRONMENT=production"),
        ({"DATA_KEY_SECRET": ""}, "DATA_KEY_SECRET: a data key is required in production"),
        ({"INSTANCE_CONNECTION_NAME": "", "DATABASE_URL": "sqlite:///x.db"}, "production needs PostgreSQL"),
        ({"PUBLIC_BASE_URL": "http://127.0.0.1:8080"}, "PUBLIC_BASE_URL: production needs"),
        (
            {"SECRET_MANAGER_ENDPOINT": "127.0.0.1:9999"},
            "SECRET_MANAGER_ENDPOINT: an emulator endpoint is refused",
        ),
        ({"TOKEN_INVOKERS": "backend@p.iam.gserviceaccount.com"}, "TOKEN_AUDIENCE: required with TOKEN_INVOKERS"),
        ({"REFRESH_AUDIENCE": ""}, "SCHEDULER_SERVICE_ACCOUNT and REFRESH_AUDIENCE"),
        (
            {"SECRET_BACKEND": "openbao", "OPENBAO_ADDR": "http://127.0.0.1:8200", "OPENBAO_TOKEN": "t" * 30},
            "OPENBAO_ADDR: production reaches OpenBao over https only",
        ),
    ],
)
def test_production_contradictions_are_refused(monkeypatch, override, message):
    setenv(monkeypatch, {**PRODUCTION, **override})
    with pytest.raises(ConfigurationError, match=message):
        load_settings()


@pytest.mark.parametrize(
    "database",
    [{"DB_DIALECT": "mysql"}, {"INSTANCE_CONNECTION_NAME": "", "DATABASE_URL": "mysql+pymysql://u:p@10.0.0.5/broker"}],
)
def test_production_accepts_mysql(monkeypatch, database):
    setenv(monkeypatch, {**PRODUCTION, **database})
    settings = load_settings()
    assert settings.is_production
    assert settings.dialect == "mysql"


def test_the_dialect_follows_the_url_or_the_connector_setting():
    assert load_settings().dialect == "sqlite"
    assert load_settings(database_url="mysql+pymysql://u:p@h/db").dialect == "mysql"
    assert load_settings(database_url="postgresql+pg8000://u:p@h/db").dialect == "postgresql"
    connector = {"instance_connection_name": "p:r:i", "db_user": "u"}
    assert load_settings(**connector).dialect == "postgresql"
    assert load_settings(**connector, db_dialect="mysql").dialect == "mysql"


GOOD_KEY = "k" * 32


@pytest.mark.parametrize(
    "value",
    [f" {GOOD_KEY}", f"{GOOD_KEY} ", f"{GOOD_KEY}\n", f"{GOOD_KEY}, {'m' * 32}", f"{GOOD_KEY},\t{'m' * 32}",
     f"{GOOD_KEY[:12]} {GOOD_KEY[12:]}", f"{GOOD_KEY}\u00a0", f"{GOOD_KEY}\u200b", f"{GOOD_KEY},,{'m' * 32}"],
)  # fmt: skip
def test_api_keys_with_whitespace_or_invisible_characters_are_refused_not_trimmed(monkeypatch, value):
    setenv(monkeypatch, {"INTERNAL_API_KEYS": value})
    with pytest.raises(ConfigurationError) as caught:
        load_settings()
    assert "INTERNAL_API_KEYS" in caught.value.message
    assert GOOD_KEY[:12] not in caught.value.message


def test_api_keys_are_comma_separated_visible_characters(monkeypatch):
    setenv(monkeypatch, {"INTERNAL_API_KEYS": f"{GOOD_KEY},{'m' * 32}"})
    keys = [key.get_secret_value() for key in load_settings().internal_api_keys]
    assert keys == [GOOD_KEY, "m" * 32]


def test_secret_values_never_appear_in_errors(monkeypatch):
    secret = base64.b64encode(b"s" * 31).decode()
    setenv(monkeypatch, {"DATA_KEYS": f"1:{secret}", "INTERNAL_API_KEYS": "short-but-secret"})
    with pytest.raises(ConfigurationError) as caught:
        load_settings()
    assert secret not in str(caught.value)
    assert "short-but-secret" not in str(caught.value)


def test_provider_client_credentials_use_the_upper_cased_id(monkeypatch):
    setenv(monkeypatch, {"JIRA_CLOUD_CLIENT_ID": "cid", "JIRA_CLOUD_CLIENT_SECRET": "csecret"})
    settings = load_settings()
    creds = settings.provider_credentials("jira-cloud")
    assert creds is not None
    assert (creds.client_id, creds.client_secret) == ("cid", "csecret")
    assert "csecret" not in repr(creds)
    assert settings.provider_credentials("github") is None
    assert provider_env_prefix("google-workspace") == "GOOGLE_WORKSPACE"


def test_comma_lists_and_data_key_versions(monkeypatch):
    other = base64.b64encode(b"o" * 32).decode()
    setenv(
        monkeypatch,
        {
            "ALLOWED_RETURN_URLS": "https://app.example/a, http://localhost:3000/",
            "DATA_KEYS": f"1:{KEY},2:{other}",
        },
    )
    settings = load_settings()
    assert settings.allowed_return_urls == ["https://app.example/a", "http://localhost:3000/"]
    assert parse_data_keys(f"1:{KEY},2:{other}") == {1: b"k" * 32, 2: b"o" * 32}
