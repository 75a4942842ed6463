"""Ports: the small, use-case shaped interfaces the services need. Adapters implement them."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Protocol


class SecretStore(Protocol):
    """Versioned master secrets (refresh tokens, API keys, basic-auth pairs), one secret per integration.

    Versions are positive integers that only grow. Reads are always by number (never `latest`), so a read
    right after a write is consistent. Payloads are opaque bytes; callers serialise.
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


class Clock(Protocol):
    def now(self) -> datetime:
        """The current time, timezone-aware UTC."""
        ...
