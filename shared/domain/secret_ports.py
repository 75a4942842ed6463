"""The secret-store ports: versioned master secrets (SecretStore) and the stores by backend name (SecretStores)."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Protocol


class SecretStore(Protocol):
    """Versioned master secrets (refresh tokens, API keys, basic-auth pairs), one secret per integration.

    Versions are positive integers that only grow. Reads are always by number (never `latest`), so a read
    right after a write is consistent. Payloads are opaque bytes; callers serialise. Besides the errors named
    below, a method raises only SecretStoreUnavailable (503: the store is down, over quota or refuses this
    instance), never its technology's own exceptions.
    """

    def add_version(self, secret_id: str, payload: bytes, labels: Mapping[str, str]) -> int:
        """Store `payload` as a new version, creating the secret (with `labels`) when missing; return its number."""
        ...

    def read(self, secret_id: str, version: int) -> bytes:
        """Return the payload of `version`; SecretNotFound when the secret or version is missing or destroyed."""
        ...

    def enabled_versions(self, secret_id: str) -> list[int]:
        """Numbers of the versions that still hold a payload, ascending; [] when the secret does not exist."""
        ...

    def destroy_version(self, secret_id: str, version: int) -> None:
        """Destroy one version's payload for good. Idempotent: a missing or destroyed version is fine."""
        ...

    def delete(self, secret_id: str) -> None:
        """Remove the secret and every version. Idempotent."""
        ...

    def check(self) -> None:
        """Raise DependencyUnavailable (with a reason, no secret) when the store cannot serve requests."""
        ...

    def stale_secret_ids(
        self, prefix: str, created_before: datetime, created_after: datetime | None = None
    ) -> list[str]:
        """Ids of the secrets named `<prefix>-…` created before `created_before` and, when given, after
        `created_after` (the sweeper; the refresh job looks only at a window of recent creations)."""
        ...

    def labels(self, secret_id: str) -> dict[str, str]:
        """The labels the secret was created with (as stored: Secret Manager's are sanitised); {} when missing."""
        ...


class SecretStores(Protocol):
    """The master-secret stores by SECRET_BACKEND name. A row's secret lives in `of(row.secret_backend)` (None:
    the configured backend); new secrets go to `default`, named `default_name`. A backend this instance has no
    settings for is SecretStoreUnavailable (503) on use."""

    @property
    def default_name(self) -> str: ...

    @property
    def default(self) -> SecretStore: ...

    def of(self, backend: str | None) -> SecretStore: ...


def within(created: datetime, created_before: datetime, created_after: datetime | None) -> bool:
    """Whether a secret created at `created` is in the window `stale_secret_ids` asks for."""
    return created < created_before and (created_after is None or created > created_after)
