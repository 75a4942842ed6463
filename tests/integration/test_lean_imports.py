"""A cold function imports what its first request needs and nothing more (its cold start pays for each module):
the token function's valid-token fetch, and each other function's first answer as the cold-start benchmark asks
for it (tests/bench/p3.py), as deployed (`broker function`'s app, the Secret Manager backend)."""

from __future__ import annotations

import base64
import json
import subprocess
import sys
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from uuid import uuid4

import pytest

from shared.adapters.db import engine_for_url
from shared.adapters.sql_repositories import SqlIntegrationRepository
from shared.domain.clock import SystemClock
from shared.domain.envelope import Keyring
from shared.domain.models import CredentialType, Integration, Status
from shared.services.credentials import ACCESS_TOKEN_PURPOSE

KEY = b"k" * 32
NOT_ON_THE_HOT_PATH = (
    "sqlalchemy", "jsonschema", "yaml", "oauthlib", "jwt", "requests", "google.cloud.secretmanager",
    "pydantic_settings", "google.cloud.sql", "shared.services.connect", "shared.services.refresh",
    "shared.adapters.oidc",
)  # fmt: skip
RECORD = """
import sys
from pathlib import Path
import shared.providers.sources as sources
sources.RECORDS = Path(sys.argv[1])
from shared.providers.catalog import record_validated
record_validated(None)  # as the image build does
"""

FETCH = """
import sys, uuid
from pathlib import Path
import shared.providers.sources as sources
sources.RECORDS = Path(sys.argv[1])
from shared.function_server import create_function_app
create_function_app("token_fetch", "functions/token_fetch.py")  # as `broker function` loads it, probes included
from shared.bootstrap import container
view = container().token_service.fetch(uuid.UUID(sys.argv[2]), "apikey:test")
assert view["access_token"] == "at-lean", view
print(" ".join(sorted(n for n in sys.modules if n.startswith(NOT_ON_THE_HOT_PATH))))
""".replace("NOT_ON_THE_HOT_PATH", repr(NOT_ON_THE_HOT_PATH))


def test_a_valid_token_fetch_loads_no_sqlalchemy_schema_validator_or_oauth_machinery(pg_url, tmp_path):
    engine = engine_for_url(pg_url)
    keyring = Keyring({1: KEY})
    now = datetime.now(UTC)
    integration_id = uuid4()
    sealed, version = keyring.seal(b"at-lean", purpose=ACCESS_TOKEN_PURPOSE, record=str(integration_id))
    SqlIntegrationRepository(engine, SystemClock()).add(
        Integration(
            id=integration_id, entity_id="lean", provider="google", credential_type=CredentialType.OAUTH2,
            status=Status.ACTIVE, created_at=now, updated_at=now, account_subject="lean", secret_ref="s",
            secret_version=1, token_expires_at=now + timedelta(hours=2), access_token_ciphertext=sealed,
            access_token_key_version=version, last_refreshed_at=now,
        )
    )  # fmt: skip
    engine.dispose()
    env = {"DATABASE_URL": pg_url, "DATA_KEYS": f"1:{base64.b64encode(KEY).decode()}", "LOG_LEVEL": "WARNING"}
    records = str(tmp_path / "records")
    subprocess.run([sys.executable, "-c", RECORD, records], env={"PATH": "/usr/bin:/bin"}, check=True, timeout=60)
    done = subprocess.run(
        [sys.executable, "-c", FETCH, records, str(integration_id)],
        env={"PATH": "/usr/bin:/bin", **env}, capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip() == "", f"imported on the hot path: {done.stdout.strip()}"


# Never on any function's first answer: the catalog's validator (the image build recorded it), ID-token and OIDC
# machinery and `requests` (dev auth; no entry needs discovery), Secret Manager's gRPC client (nothing here reads a
# master secret), the Cloud SQL connector, the terminal UI.
NEVER = (
    "jsonschema", "yaml", "jwt", "requests", "shared.adapters.oidc", "google.cloud.secretmanager", "grpc",
    "google.cloud.sql", "pydantic_settings", "rich",
)  # fmt: skip
# What a function may not import before its first request (its module, settings and catalog checked).
AT_IMPORT = ("sqlalchemy", "cryptography", "oauthlib", "pg8000", "shared.adapters.db", "shared.adapters.sql")
FIRST_ANSWERS = {  # function: (method, path, JSON body, status, what its first answer must not load beyond NEVER)
    "token_refresh": ("POST", "/refresh", None, 200, ("oauthlib", "shared.services.connect", "shared.connect_page")),
    "integrations": ("GET", "/integrations", None, 200, ("oauthlib", "shared.services.connect", "cryptography")),
    "oauth_start": ("POST", "/oauth/start", {"provider": "steady"}, 200, ("shared.connect_page",)),
    "oauth_callback": ("GET", "/oauth/callback?state=unknown&code=c", None, 400, ("oauthlib", "cryptography")),
}
FIRST_ANSWER = """
import json, sys
from pathlib import Path
import shared.providers.sources as sources
sources.RECORDS = Path(sys.argv[1])
from shared.function_server import create_function_app
target, method, path, body, status, watched = json.loads(sys.argv[2])
app = create_function_app(target, f"functions/{target}.py")
imported = sorted(n for n in sys.modules if n.startswith(tuple(watched)))
answer = app.test_client().open(path, method=method, json=body, headers={"X-Entity-Id": "lean"})
assert answer.status_code == status, (answer.status_code, answer.get_data(as_text=True)[:500])
print(json.dumps([imported, sorted(n for n in sys.modules if n.startswith(tuple(watched)))]))
"""
STEADY = """providers:
  steady:
    display_name: Steady
    auth_mode: oauth2
    authorization_url: http://127.0.0.1:9/authorize
    token_url: http://127.0.0.1:9/token
"""


@pytest.mark.parametrize("target", sorted(FIRST_ANSWERS))
def test_each_functions_first_answer_loads_only_what_it_needs(target, pg_url, secret_manager, tmp_path):
    providers = tmp_path / "providers.yaml"
    providers.write_text(STEADY, encoding="utf-8")
    records = str(tmp_path / "records")
    record = RECORD.replace("record_validated(None)", f"record_validated({str(providers)!r})")
    subprocess.run([sys.executable, "-c", record, records], env={"PATH": "/usr/bin:/bin"}, check=True, timeout=60)
    method, path, body, status, not_needed = FIRST_ANSWERS[target]
    watched = (*NEVER, *AT_IMPORT, *not_needed)
    env = {
        "PATH": "/usr/bin:/bin", "DATABASE_URL": pg_url, "DATA_KEYS": f"1:{base64.b64encode(KEY).decode()}",
        "SECRET_BACKEND": "gcp", "GCP_PROJECT": "lean", "SECRET_MANAGER_ENDPOINT": secret_manager.grpc_endpoint,
        "PROVIDERS_FILE": str(providers), "STEADY_CLIENT_ID": "lean", "STEADY_CLIENT_SECRET": "lean-secret",
        "LOG_LEVEL": "WARNING",
    }  # fmt: skip
    done = subprocess.run(
        [sys.executable, "-c", FIRST_ANSWER, records, json.dumps([target, method, path, body, status, watched])],
        env=env, capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-2000:]
    at_import, answered = json.loads(done.stdout.strip().splitlines()[-1])
    assert _packages(at_import) == [], f"{target} imports these at start-up"
    assert _packages(n for n in answered if n.startswith((*NEVER, *not_needed))) == [], f"{target}'s first answer"


def _packages(modules: Iterable[str]) -> list[str]:
    return sorted({".".join(name.split(".")[:3]) for name in modules})
