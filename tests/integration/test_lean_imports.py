"""A cold token function imports what a valid-token fetch needs and nothing more (its cold start pays for each)."""

from __future__ import annotations

import base64
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from uuid import uuid4

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
