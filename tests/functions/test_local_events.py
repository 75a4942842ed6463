"""`make run` (`broker serve`) delivers events in process: a signed webhook within 5 s of the change."""

from __future__ import annotations

import os
import subprocess
import sys
import time

import requests

from tests.support.events import SECRET
from tests.support.processes import serving
from tests.support.webhook_receiver import running_receiver


def test_make_run_delivers_a_change_within_five_seconds(tmp_path):
    with running_receiver(SECRET) as receiver:
        env = {
            "LOCAL_DATA_DIR": str(tmp_path / "data"), "ENVIRONMENT": "development", "SECRET_BACKEND": "database",
            "WEBHOOK_URLS": receiver.url, "WEBHOOK_SECRETS": SECRET, "LOCAL_REFRESH_INTERVAL": "0",
        }  # fmt: skip
        subprocess.run([sys.executable, "-m", "shared.cli", "migrate"], env={**os.environ, **env}, check=True)
        with serving(["shared.cli", "serve"], env) as base:
            headers = {"X-Entity-Id": "user-1", "Content-Type": "application/json"}
            body = {"provider": "openai", "credentials": {"api_key": "sk-" + "a" * 40}}
            created = requests.post(f"{base}/integrations", json=body, headers=headers, timeout=10)
            assert created.status_code == 201, created.text
            changed = time.monotonic()
            integration_id = created.json()["id"]
            while not receiver.accepted() and time.monotonic() - changed < 10:
                time.sleep(0.05)
            waited = time.monotonic() - changed
            synced = requests.post(f"{base}/integrations/{integration_id}/sync", headers=headers, timeout=10)
            assert synced.status_code == 202
            while len(receiver.accepted()) < 2 and time.monotonic() - changed < 20:
                time.sleep(0.05)
    assert waited < 5, f"delivered after {waited:.1f} s"
    events = list(receiver.accepted().values())
    assert [e["type"] for e in events] == ["integration.connected", "integration.sync_requested"]
    assert all(e["data"]["integration_id"] == integration_id for e in events)
    assert "sk-" not in str(receiver.received), "no secret in any delivery"
