"""Rows for tests and benchmarks: an active OAuth integration holding given tokens, written as the broker would."""

from __future__ import annotations

from datetime import datetime
from uuid import UUID, uuid4

from shared.bootstrap import Container
from shared.domain.models import CredentialType, Integration, Status, secret_id_for
from shared.services.credentials import ACCESS_TOKEN_PURPOSE, master_secret_payload


def seed_integration(
    app: Container, provider: str, entity: str, *, refresh_token: str, access_token: str, expires_at: datetime,
    refreshed_at: datetime,
) -> UUID:  # fmt: skip
    integration_id = uuid4()
    ref = secret_id_for(app.settings.secret_prefix, integration_id)
    version = app.secret_store.add_version(ref, master_secret_payload(refresh_token), {})
    sealed, key_version = app.keyring.seal(
        access_token.encode(), purpose=ACCESS_TOKEN_PURPOSE, record=str(integration_id)
    )
    app.integrations.add(
        Integration(
            id=integration_id, entity_id=entity, provider=provider, credential_type=CredentialType.OAUTH2,
            status=Status.ACTIVE, created_at=refreshed_at, updated_at=refreshed_at, account_subject=entity,
            secret_ref=ref, secret_version=version, token_expires_at=expires_at, access_token_ciphertext=sealed,
            access_token_key_version=key_version, last_refreshed_at=refreshed_at,
        )
    )  # fmt: skip
    return integration_id
