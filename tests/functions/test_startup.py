"""A misconfigured function refuses to start (the revision never becomes ready): functions-framework exits
non-zero with the variable's name, before any request; a problem only a request can find answers a plain 500
that carries no configuration text. `broker serve` refuses the same way."""

from __future__ import annotations

import base64
from pathlib import Path

import pytest
import requests

from tests.fakes.secret_manager_server import LocalSecretManager
from tests.support.processes import framework_args, function_args, serving_function, start_refused

FUNCTIONS = ("oauth_start", "oauth_callback", "integrations", "token_fetch", "token_refresh")
PRODUCTION = {
    "ENVIRONMENT": "production",
    "AUTH_MODE": "oidc",
    "AUTH_ISSUER": "https://securetoken.google.com/p",
    "AUTH_AUDIENCE": "p",
    "INSTANCE_CONNECTION_NAME": "p:r:i",
    "DB_USER": "broker-sa@p.iam",
    "GCP_PROJECT": "p",
    "DATA_KEY_SECRET": "projects/p/secrets/broker-data-key/versions/3",
    "PUBLIC_BASE_URL": "https://broker.example.com",
    "INTERNAL_API_KEYS": "k" * 32,
    "SCHEDULER_SERVICE_ACCOUNT": "scheduler@p.iam.gserviceaccount.com",
    "REFRESH_AUDIENCE": "https://refresh.example.com",
}
SHORT_KEY = "too-short-secret-value"


def development(tmp_path: Path, **extra: str) -> dict[str, str]:
    return {"LOCAL_DATA_DIR": str(tmp_path / "data"), **extra}


@pytest.mark.parametrize("function", FUNCTIONS)
@pytest.mark.parametrize("launcher", [function_args, framework_args], ids=["broker function", "functions-framework"])
def test_a_bad_production_setting_stops_the_function_before_it_serves(function, launcher):
    refused = start_refused(launcher(function), {**PRODUCTION, "INTERNAL_API_KEYS": SHORT_KEY})
    assert refused.returncode == 2
    assert "INTERNAL_API_KEYS: every key must be at least 24 characters" in refused.stderr
    assert SHORT_KEY not in refused.stderr + refused.stdout, "the value of a secret is never printed"
    assert "Traceback" not in refused.stderr, "one line that names the variable, not a stack"


def test_on_cloud_run_the_default_is_production_so_an_open_token_endpoint_cannot_start(tmp_path):
    """K_SERVICE is set on every Cloud Run service: without ENVIRONMENT the token endpoint is not left open."""
    env = {k: v for k, v in PRODUCTION.items() if k not in ("ENVIRONMENT", "INTERNAL_API_KEYS")}
    refused = start_refused(function_args("token_fetch"), {**env, "K_SERVICE": "broker-token-fetch"})
    assert refused.returncode == 2
    assert "INTERNAL_API_KEYS or TOKEN_INVOKERS: the token endpoint needs its callers in production" in refused.stderr


@pytest.mark.parametrize("function", [f for f in FUNCTIONS if f != "token_fetch"])
def test_only_the_token_function_needs_its_callers_configured(function):
    """terraform gives INTERNAL_API_KEYS to token_fetch alone: the other functions start without them."""
    without_keys = {k: v for k, v in PRODUCTION.items() if k != "INTERNAL_API_KEYS"}
    with serving_function(function, without_keys) as base:
        assert base.process.poll() is None


def broken_catalog(tmp_path: Path) -> Path:
    path = tmp_path / "providers.yaml"
    path.write_text(
        "providers:\n  gitlab:\n    display_name: GitLab\n    auth_mode: oauth2\n"
        "    authorization_url: https://gitlab.com/oauth/authorize\n    token_url: https://gitlab.com/oauth/token\n"
        "    scopes: read_user\n",
        encoding="utf-8",
    )
    return path


@pytest.mark.parametrize("launcher", [function_args, framework_args], ids=["broker function", "functions-framework"])
def test_a_broken_providers_file_stops_the_function_naming_the_file_key_and_expectation(tmp_path, launcher):
    path = broken_catalog(tmp_path)
    refused = start_refused(launcher("integrations"), development(tmp_path, PROVIDERS_FILE=str(path)))
    assert refused.returncode == 2
    assert f"{path}: providers.gitlab.scopes: 'read_user' is not of type 'array'" in refused.stderr


def test_a_providers_file_that_is_not_yaml_stops_the_function(tmp_path):
    path = tmp_path / "providers.yaml"
    path.write_text("providers: [unclosed\n", encoding="utf-8")
    refused = start_refused(function_args("oauth_callback"), development(tmp_path, PROVIDERS_FILE=str(path)))
    assert refused.returncode == 2
    assert f"PROVIDERS_FILE: {path}: not valid YAML" in refused.stderr


@pytest.mark.parametrize("function", ["oauth_callback", "integrations", "token_fetch", "token_refresh"])
def test_a_client_id_without_its_secret_stops_the_functions_that_use_the_secret(tmp_path, function):
    refused = start_refused(function_args(function), development(tmp_path, GITHUB_CLIENT_ID="Iv1.0123456789abcdef"))
    assert refused.returncode == 2
    assert "GITHUB_CLIENT_SECRET: required with GITHUB_CLIENT_ID" in refused.stderr


def test_oauth_start_needs_only_client_ids(tmp_path):
    """terraform gives oauth_start the client ids and no secrets: it only builds authorization URLs."""
    with serving_function("oauth_start", development(tmp_path, GITHUB_CLIENT_ID="Iv1.0123456789abcdef")) as base:
        assert requests.options(f"{base}/oauth/start", timeout=10).status_code == 204


def test_a_client_secret_without_its_id_stops_every_function(tmp_path):
    env = development(tmp_path, GITHUB_CLIENT_SECRET="a-real-looking-client-secret")
    refused = start_refused(function_args("oauth_start"), env)
    assert refused.returncode == 2
    assert "GITHUB_CLIENT_SECRET: set without GITHUB_CLIENT_ID" in refused.stderr
    assert "a-real-looking-client-secret" not in refused.stderr


def test_serve_refuses_a_broken_providers_file_and_a_lone_client_id(tmp_path):
    path = broken_catalog(tmp_path)
    refused = start_refused(["shared.cli", "serve"], development(tmp_path, PROVIDERS_FILE=str(path)))
    assert refused.returncode == 2
    assert f"{path}: providers.gitlab.scopes: 'read_user' is not of type 'array'" in refused.stderr
    refused = start_refused(["shared.cli", "serve"], development(tmp_path, GITHUB_CLIENT_ID="Iv1.0123456789abcdef"))
    assert refused.returncode == 2
    assert "GITHUB_CLIENT_SECRET: required with GITHUB_CLIENT_ID" in refused.stderr


def test_a_configuration_problem_found_by_a_request_answers_500_without_configuration_text(
    tmp_path, secret_manager: LocalSecretManager
):
    """The pinned data key version can only be read with a client: the request fails, the caller learns nothing."""
    missing = "projects/keys-project/secrets/no-such-data-key/versions/7"
    env = development(
        tmp_path, DATA_KEY_SECRET=missing, GCP_PROJECT="keys-project",
        SECRET_MANAGER_ENDPOINT=secret_manager.grpc_endpoint, DEMO_CLIENT_ID="demo-client",
        DEMO_CLIENT_SECRET=base64.b64encode(b"s" * 24).decode(),
    )  # fmt: skip
    with serving_function("oauth_start", env) as base:
        answer = requests.post(
            f"{base}/oauth/start", json={"provider": "demo"}, headers={"X-Entity-Id": "user-1"}, timeout=30
        )
        logged = base.output()
    assert answer.status_code == 500
    assert answer.json() == {"error": {"code": "internal_error", "message": "the broker failed to handle this request"}}
    assert "DATA_KEY_SECRET" in logged, "the operator finds the cause in the log"


def test_production_refuses_a_provider_on_a_loopback_or_metadata_host(tmp_path):
    path = tmp_path / "providers.yaml"
    path.write_text(
        "providers:\n  internal:\n    display_name: Internal\n    auth_mode: oauth2\n"
        "    authorization_url: https://metadata.google.internal/authorize\n"
        "    token_url: http://127.0.0.1:8081/token\n    identity: {source: token_response, subject: id}\n",
        encoding="utf-8",
    )
    refused = start_refused(function_args("token_refresh"), {**PRODUCTION, "PROVIDERS_FILE": str(path)})
    assert refused.returncode == 2
    assert "providers.internal.authorization_url: its host is a cloud metadata host" in refused.stderr
    assert "providers.internal.token_url: its host is a loopback address" in refused.stderr
