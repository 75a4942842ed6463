"""What each deployed function answers besides its own routes, served exactly as deployed (`broker function`):
`/health` for Cloud Run's startup and liveness probes, `/ready` for operators; and the network check
(`ALLOWED_CIDRS`) on token_fetch only, never on the refresh job (Cloud Scheduler is not in the VPC)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import requests

from tests.support.broker_env import DATA_KEY
from tests.support.processes import Served, serving_function

FUNCTIONS = ("oauth_start", "oauth_callback", "integrations", "token_fetch", "token_refresh")
API_KEY = "internal-key-for-the-route-tests-0123456789"
ELSEWHERE = "10.8.0.0/24"  # the callers' subnet: the test client (127.0.0.1) is outside it


def env_for(database_url: str, tmp: str, **extra: str) -> dict[str, str]:
    return {
        "DATABASE_URL": database_url, "SECRET_BACKEND": "database", "DATA_KEYS": f"1:{DATA_KEY}",
        "LOCAL_DATA_DIR": tmp, "INTERNAL_API_KEYS": API_KEY, **extra,
    }  # fmt: skip


@pytest.fixture(scope="module")
def served(pg_databases, tmp_path_factory) -> Iterator[dict[str, Served]]:
    """The five functions, each in its own `broker function` process, with ALLOWED_CIDRS set."""
    name = pg_databases.create()
    env = env_for(pg_databases.server.url(name), str(tmp_path_factory.mktemp("data")), ALLOWED_CIDRS=ELSEWHERE)
    with (
        serving_function("oauth_start", env) as start,
        serving_function("oauth_callback", env) as callback,
        serving_function("integrations", env) as integrations,
        serving_function("token_fetch", env) as fetch,
        serving_function("token_refresh", env) as refresh,
    ):
        yield dict(zip(FUNCTIONS, (start, callback, integrations, fetch, refresh), strict=True))
    pg_databases.drop(name)


@pytest.mark.parametrize("function", FUNCTIONS)
def test_every_function_answers_health_without_credentials(served, function):
    response = requests.get(f"{served[function]}/health", timeout=10)
    assert response.status_code == 200, response.text
    assert response.json() == {"status": "ok"}
    assert response.headers["Cache-Control"] == "no-store"


@pytest.mark.parametrize("function", FUNCTIONS)
def test_every_function_answers_ready_with_its_dependencies(served, function):
    response = requests.get(f"{served[function]}/ready", timeout=20)
    assert response.status_code == 200, response.text
    assert response.json() == {"status": "ok", "checks": {"database": "ok", "secret_store": "ok"}}


def test_health_and_ready_answer_get_only(served):
    response = requests.post(f"{served['token_fetch']}/health", timeout=10)
    assert response.status_code == 405
    assert response.json()["error"]["code"] == "method_not_allowed"
    assert response.headers["Allow"] == "GET, HEAD, OPTIONS"
    # POST /health on token_refresh is the probe's 405, never a refresh job run
    response = requests.post(f"{served['token_refresh']}/ready", timeout=10)
    assert response.status_code == 405


def test_ready_says_what_is_unavailable_and_answers_503(pg_databases, tmp_path):
    """A database that is not migrated: /ready is 503 with the reason; /health still 200 (the instance lives)."""
    name = pg_databases.create()
    url = pg_databases.server.url(name)
    from sqlalchemy import create_engine, text

    engine = create_engine(url)
    with engine.begin() as conn:
        conn.execute(text("DROP TABLE entity_integrations CASCADE"))
    engine.dispose()
    try:
        with serving_function("token_fetch", env_for(url, str(tmp_path))) as base:
            assert requests.get(f"{base}/health", timeout=10).status_code == 200
            response = requests.get(f"{base}/ready", timeout=20)
    finally:
        pg_databases.drop(name)
    assert response.status_code == 503
    body = response.json()
    assert body["status"] == "unavailable"
    assert body["checks"]["secret_store"] == "ok"
    assert body["checks"]["database"].startswith("unavailable")


def test_the_refresh_job_is_not_subject_to_allowed_cidrs(served):
    """Cloud Scheduler calls from Google's network, not the VPC: ALLOWED_CIDRS must not stop it."""
    response = requests.post(f"{served['token_refresh']}/refresh", json={}, timeout=60)
    assert response.status_code == 200, response.text
    assert response.json()["claimed"] == 0


def test_token_fetch_still_checks_allowed_cidrs(served):
    response = requests.get(
        f"{served['token_fetch']}/token/00000000-0000-0000-0000-000000000000",
        headers={"Authorization": f"Bearer {API_KEY}"}, timeout=10,
    )  # fmt: skip
    assert response.status_code == 403
    assert response.json()["error"]["code"] == "network_not_allowed"
