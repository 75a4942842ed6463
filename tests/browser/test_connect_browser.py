"""The connect experience in a real browser: Debian's Chromium driven by playwright-core (tests/browser/run.mjs),
against `broker serve` on PostgreSQL with the demo provider and oidc-provider, the product page on another origin
and a page on an origin the broker does not allow. Screenshots of every page state go to `.test-output/browser/`
(git-ignored).

One Node process runs every scenario in order (one browser start on a loaded machine); each test reads its result.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from uuid import UUID

import pytest
import requests
from sqlalchemy import select, update

from shared.adapters.db import engine_for_url
from shared.adapters.orm import ConnectSessionRow, IntegrationRow
from shared.domain.oauth import digest
from tests.support.broker_env import CLIENT_ID, CLIENT_SECRET, DATA_KEY, provider_file
from tests.support.oidc_provider import running_oidc_provider
from tests.support.postgres import DatabaseFactory, free_port
from tests.support.processes import serving

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
CHROMIUM = "/usr/bin/chromium"
OUTPUT = ROOT / ".test-output" / "browser"
KEY = "internal-key-for-the-browser-tests-0123456789"
NODE_TIMEOUT = 420
# The module's one browser run happens in the first test's setup, under pytest's per-test timeout: 120 s by default,
# which a loaded machine exceeds (77 s at a load average of 8; at 12-15 every test of the module errored on it).
pytestmark = pytest.mark.timeout(NODE_TIMEOUT + 120)


class _Quiet(SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture(scope="module")
def pages_servers() -> Iterator[tuple[str, str]]:
    """The product page (an allowed origin) and another page (not allowed), on two loopback origins."""
    servers = []
    for _ in range(2):
        server = ThreadingHTTPServer(("127.0.0.1", 0), partial(_Quiet, directory=str(HERE / "pages")))
        threading.Thread(target=server.serve_forever, daemon=True).start()
        servers.append(server)
    yield tuple(f"http://localhost:{s.server_address[1]}" for s in servers)  # type: ignore[misc]
    for server in servers:
        server.shutdown()


def _require_browser() -> str:
    node = shutil.which("node")
    missing = [what for what, ok in (
        (CHROMIUM, os.access(CHROMIUM, os.X_OK)), ("node", node is not None),
        ("tests/browser/node_modules", (HERE / "node_modules" / "playwright-core").is_dir()),
    ) if not ok]  # fmt: skip
    if missing:
        message = f"missing {', '.join(missing)}: run `make browser-deps` (make test does)"
        if os.environ.get("CI") == "true":
            pytest.fail(message)
        pytest.skip(message)
    assert node is not None
    return node


@pytest.fixture(scope="module")
def results(
    pg_databases: DatabaseFactory, pages_servers: tuple[str, str], tmp_path_factory
) -> Iterator[dict[str, Any]]:
    node = _require_browser()
    product, evil = pages_servers
    name = pg_databases.create()
    port = free_port()
    broker = f"http://127.0.0.1:{port}"
    client = {"client_id": CLIENT_ID, "client_secret": CLIENT_SECRET, "redirect_uris": [f"{broker}/oauth/callback"]}
    with running_oidc_provider([client], access_token_ttl=600) as provider:
        directory = Path(tmp_path_factory.mktemp("browser"))
        env = {
            "DATABASE_URL": pg_databases.server.url(name), "SECRET_BACKEND": "database", "DATA_KEYS": f"1:{DATA_KEY}",
            "ENVIRONMENT": "development", "AUTH_MODE": "dev", "INTERNAL_API_KEYS": KEY, "PUBLIC_BASE_URL": broker,
            "ALLOWED_ORIGINS": product, "PROVIDERS_FILE": str(provider_file(directory, provider.issuer)),
            "OIDC_TEST_CLIENT_ID": CLIENT_ID, "OIDC_TEST_CLIENT_SECRET": CLIENT_SECRET, "LOCAL_REFRESH_INTERVAL": "0",
            "LOG_LEVEL": "WARNING",
        }  # fmt: skip
        engine = engine_for_url(env["DATABASE_URL"])
        with serving(["shared.cli", "serve"], env, port=port):
            sessions = {entity: _mint(broker, product, entity) for entity in ("a", "b", "expired")}
            with engine.begin() as conn:
                expired = ConnectSessionRow.token_hash == digest(sessions["expired"])
                past = datetime.now(UTC) - timedelta(minutes=1)
                conn.execute(update(ConnectSessionRow).where(expired).values(expires_at=past))
            config = {
                "broker": broker, "product": product, "evil": evil, "apiKey": KEY, "sessions": sessions,
                "outDir": str(OUTPUT), "chromium": CHROMIUM,
            }  # fmt: skip
            config_file = directory / "config.json"
            config_file.write_text(json.dumps(config), encoding="utf-8")
            done = subprocess.run([node, str(HERE / "run.mjs"), str(config_file)], capture_output=True, text=True,
                                  timeout=NODE_TIMEOUT, cwd=HERE, check=False)  # fmt: skip
            assert done.returncode == 0, done.stderr[-4000:]
            found: dict[str, Any] = json.loads(done.stdout)
            (OUTPUT / "results.json").write_text(json.dumps(found, indent=2), encoding="utf-8")
            with engine.connect() as conn:
                found["__rows"] = [(str(r.id), r.entity_id, r.provider) for r in conn.execute(select(IntegrationRow))]
            yield found
        engine.dispose()
    pg_databases.drop(name)


def _mint(broker: str, origin: str, entity: str) -> str:
    minted = requests.post(f"{broker}/connect/sessions", headers={"Authorization": f"Bearer {KEY}"}, timeout=10,
                           json={"entity_id": f"entity-{entity}", "allowed_origin": origin})  # fmt: skip
    assert minted.status_code == 201, minted.text
    return str(minted.json()["token"])


def _connect_messages(found: dict[str, Any]) -> list[dict[str, Any]]:
    return [m for m in found["messages"] if isinstance(m["data"], dict) and m["data"].get("type") == "broker:connect"]


def _ok(results: dict[str, Any], scenario: str) -> dict[str, Any]:
    result: dict[str, Any] = results[scenario]
    assert "failed" not in result, result.get("failed")
    return result


def test_popup_flow_with_the_demo_provider_resolves_and_the_connect_page_lists_it(results):
    found = _ok(results, "popup_demo")
    assert found["result"]["ok"], found["result"]
    integration_id = found["result"]["value"]["integrationId"]
    UUID(integration_id)
    assert found["result"]["value"]["status"] == "connected"
    assert found["popupClosed"], "the result page closes itself"
    messages = [
        m for m in found["messages"] if isinstance(m["data"], dict) and m["data"].get("type") == "broker:connect"
    ]
    assert messages, "the result page posted its message to the opener"
    assert messages[0]["data"]["integration_id"] == integration_id
    assert integration_id in found["listed"]
    assert found["listed"].count(integration_id) == 1


def test_popup_flow_against_oidc_provider_resolves_and_is_listed(results):
    found = _ok(results, "popup_oidc")
    assert found["result"]["ok"], found["result"]
    assert found["result"]["value"]["integrationId"] in found["listed"]
    assert found["popupClosed"]


def test_the_hosted_connect_page_in_a_popup_resolves_open_connect_page(results):
    found = _ok(results, "hosted_page_popup")
    assert found["result"]["ok"], found["result"]
    assert "broker:flow" in found["messages"], "the page told its opener which flow to follow"


def test_full_page_mode_ends_on_a_result_page_that_leads_back_to_the_connect_page(results):
    found = _ok(results, "full_page")
    assert found["title"] == "Connected"
    assert found["listed"], "back on the Connect page, the new integration is listed"


def test_closing_the_popup_before_consent_rejects_cancelled_within_seconds(results):
    found = _ok(results, "cancel")
    assert found["result"] == {**found["result"], "ok": False, "code": "cancelled"}
    assert found["afterClose"] < 5000


def test_a_severed_opener_is_resolved_by_the_status_endpoint(results):
    found = _ok(results, "severed_opener")
    assert found["result"]["ok"], found["result"]
    assert not [
        m for m in found["messages"] if isinstance(m["data"], dict) and m["data"].get("type") == "broker:connect"
    ]


def test_a_page_on_another_origin_gets_no_message_no_status_and_cannot_frame_the_page(results):
    found = _ok(results, "other_origin")
    assert found["messages"] == [], "postMessage targets the session's origin only"
    assert found["status"].startswith("blocked"), found["status"]
    assert found["evilFrame"]["heading"] != "Connect an account", "frame-ancestors refuses another origin"
    assert found["evilFrame"]["url"].startswith("chrome-error:"), found["evilFrame"]
    assert found["productFrame"]["heading"] == "Connect an account", "the session's own origin may frame it"


def test_a_session_for_entity_a_cannot_see_entity_bs_flow_or_integrations(results):
    found = _ok(results, "cross_entity")
    assert (found["withA"], found["withB"]) == (404, 200)
    rows_a = {r[0] for r in results["__rows"] if r[1] == "entity-a"}
    assert rows_a
    assert not rows_a & set(found["listedForB"])


def test_an_expired_session_gets_a_clear_page_and_no_redirect(results):
    found = _ok(results, "expired")
    assert found["status"] == 401
    assert "/connect?session=" in found["url"], "no redirect"
    assert "This link has expired" in found["text"]


def test_reconnect_keeps_the_integration_id(results):
    found = _ok(results, "reconnect")
    assert found["result"]["ok"], found["result"]
    assert found["result"]["value"]["integrationId"] == found["before"]


def test_disconnect_removes_it(results):
    found = _ok(results, "disconnect")
    assert found["target"]
    assert found["target"] not in found["after"]
    assert found["target"] not in [r[0] for r in results["__rows"]]


def test_static_credentials_are_stored_from_the_schema_form(results):
    found = _ok(results, "static_credentials")
    assert "OpenAI" in found["providers"]
    assert any(r[2] == "openai" and r[1] == "entity-a" for r in results["__rows"])


def test_the_connect_page_has_no_serious_accessibility_violations_and_works_by_keyboard(results):
    found = _ok(results, "accessibility")
    serious = {page: [v for v in found_ if v["impact"] in ("serious", "critical")]
               for page, found_ in found["violations"].items()}  # fmt: skip
    assert serious == {page: [] for page in found["violations"]}, serious
    assert len(found["violations"]) == 4
    assert found["keyboard"].startswith("provider:"), found["keyboard"]


def test_the_demo_consent_page_pattern_works_in_chromium(results):
    found = _ok(results, "consent_pattern")
    assert found["patternMismatch"] is True, "Chromium applies the pattern (it ignored the invalid one)"
    assert found["validLogin"] is True
    assert not [e for e in found["consoleErrors"] if "pattern" in e.lower()], found["consoleErrors"]


def test_screenshots_of_every_page_state_are_written():
    names = {p.stem for p in OUTPUT.glob("*.png")}
    expected = {"demo-consent-page", "connect-page-after-connect", "connect-page-in-popup", "result-page-full",
                "connect-page-expired", "connect-page-confirm-disconnect", "connect-page-static-form",
                "connect-page-light", "connect-page-dark", "demo-consent-page-styled"}  # fmt: skip
    assert expected <= names, expected - names
