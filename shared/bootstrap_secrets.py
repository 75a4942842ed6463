"""The composition root's secrets part (a base of shared.bootstrap.Container): the data keyring and the secret
stores, each built lazily, once per instance. `store_for(backend)` is the one place that knows how to build a
backend by its SECRET_BACKEND name (the service's own store, and `broker migrate-secrets`' target)."""

from __future__ import annotations

from functools import cached_property
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from sqlalchemy import Engine

    from shared.config import Settings
    from shared.domain.envelope import Keyring
    from shared.domain.ports import Clock, SecretStore


class SecretComponents:
    settings: Settings

    if TYPE_CHECKING:  # what the Container provides

        @property
        def engine(self) -> Engine: ...

        @property
        def clock(self) -> Clock: ...

    @cached_property
    def secret_manager_client(self) -> Any:
        from shared.adapters.gcp_secret_store import GcpSecretManagerStore

        return GcpSecretManagerStore.build_client(self.settings.secret_manager_endpoint)

    def gcp_store(self, project: str) -> SecretStore:
        from shared.adapters.gcp_secret_store import GcpSecretManagerStore

        probe = f"{self.settings.secret_prefix}-readiness-probe"
        return GcpSecretManagerStore(project, self.secret_manager_client, probe_secret_id=probe)

    @cached_property
    def keyring(self) -> Keyring:
        from shared.adapters.keys import load_keyring

        return load_keyring(self.settings, self.gcp_store)

    @cached_property
    def secret_store(self) -> SecretStore:
        return self.store_for(self.settings.secret_backend)

    def store_for(self, backend: str) -> SecretStore:
        """The master-secret store of `backend` under these settings; ConfigurationError when they lack what it
        needs (settings validation already guarantees it for SECRET_BACKEND itself)."""
        from shared.errors import ConfigurationError

        if backend == "gcp":
            if not self.settings.gcp_project:
                raise ConfigurationError("GCP_PROJECT: required for the gcp backend (the project of the secrets)")
            return self.gcp_store(self.settings.gcp_project)
        if backend == "database":
            from shared.adapters.db_secret_store import DatabaseSecretStore

            return DatabaseSecretStore(self.engine, self.keyring, self.clock)
        raise ConfigurationError(f"SECRET_BACKEND: no backend named {backend!r}")
