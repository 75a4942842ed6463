"""SIGTERM during a refresh job, as Cloud Run sends it before killing the instance: nothing a provider already
answered is lost. The provider here processes each refresh (rotating the token) and answers 1.5 s later; the
instance is killed 4 s after SIGTERM (Cloud Run allows about 10 s)."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import threading
import time
from collections.abc import Iterator
from uuid import UUID

import pytest
import requests

from shared.services.refresh_job import run_refresh_job
from tests.support.broker_env import BROKER_CLIENT, broker_env, connect, in_process_broker, provider_file
from tests.support.engine import current, expire, refresh_grants
from tests.support.oidc_provider import OidcProvider, running_oidc_provider
from tests.support.processes import serving_function

INTEGRATIONS = 50
GRACE = 4.0  # seconds between SIGTERM and SIGKILL


@pytest.fixture(scope="module")
def provider() -> Iterator[OidcProvider]:
    with running_oidc_provider([BROKER_CLIENT], access_token_ttl=600) as running:
        yield running


@pytest.mark.timeout(180)
def test_sigterm_during_a_refresh_job_loses_no_grant(pg_url, secret_manager, provider, tmp_path, monkeypatch):
    env = broker_env(
        pg_url, secret_manager, provider_file(tmp_path, provider.issuer),
        REFRESH_CONCURRENCY="16", REFRESH_BATCH_SIZE="50", REFRESH_LEASE="30",
    )  # fmt: skip
    with in_process_broker(env, monkeypatch) as app:
        ids = [UUID(connect(app, provider, entity=f"entity-{i}")) for i in range(INTEGRATIONS)]
        for integration_id in ids:
            expire(app, integration_id)
        provider.reset_stats()
        provider.fail_token("timeout", count=10_000, delay_ms=1500, after_processing=True)
        with serving_function("token_refresh", env) as base:

            def run_job() -> None:
                with contextlib.suppress(requests.RequestException):  # the answer may never come: killed
                    requests.post(f"{base}/refresh", timeout=60)

            job = threading.Thread(target=run_job, daemon=True)
            job.start()
            _wait_for_refreshes_in_flight(provider)
            base.process.send_signal(signal.SIGTERM)  # to the server's main process, as Cloud Run does
            with contextlib.suppress(subprocess.TimeoutExpired):
                base.process.wait(timeout=GRACE)
            with contextlib.suppress(ProcessLookupError):  # then the whole container goes (if anything is left)
                os.killpg(base.process.pid, signal.SIGKILL)
            base.process.wait()
            job.join(timeout=10)
        provider.fail_token("none")
        for _ in range(3):  # the next runs finish the work
            run_refresh_job(app.refresh_store, app.refresher, app.clock, app.job_settings)
        statuses = {current(app, i).status.value for i in ids}
        pending = [i for i in ids if current(app, i).pending_secret_ciphertext is not None]
        unrefreshed = [i for i in ids if app.refresher.refresh(i, force=True).outcome != "refreshed"]
    assert statuses == {"active"}
    assert (pending, unrefreshed) == ([], [])
    assert refresh_grants(provider)["errors"] == {}, "a refresh the provider answered was lost"


def _wait_for_refreshes_in_flight(provider: OidcProvider) -> None:
    """Until the provider holds a refresh (its injected delay counts a request as it starts): a fixed second could
    pass on a loaded machine before the job had even claimed, and the SIGTERM would then test nothing."""
    deadline = time.monotonic() + 60
    while provider.stats()["injected"]["timeout"] == 0:
        assert time.monotonic() < deadline, "the refresh job sent no refresh to the provider within 60 s"
        time.sleep(0.05)
    time.sleep(0.2)  # and a few more join it (concurrency 16)
