"""The composition root's secrets part (a base of shared.bootstrap.Container): the data keyring and the secret
stores, each built lazily, once per instance. `store_for(backend)` is the one place that knows how to build a
backend by its SECRET_BACKEND name (the service's own store, and `broker migrate-secrets`' target)."""

from __future__ import annotations

from functools import cached_property
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from sqlalchemy import Engine

    from shared.adapters.openbao_client import OpenBaoClient
    from shared.config import Settings
    from shared.domain.envelope import Keyring
    from shared.domain.ports import Clock, SecretStore, SecretStores


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
    def openbao_client(self) -> OpenBaoClient:
        """One logged-in OpenBao client per instance (KV store and Transit share it); ConfigurationError when the
        settings cannot reach OpenBao."""
        from shared.adapters.openbao_client import OpenBaoAuth, OpenBaoClient, iam_signer
        from shared.config_rules import openbao_auth_method, openbao_problems
        from shared.errors import ConfigurationError

        settings = self.settings
        problems = openbao_problems(settings)
        if problems:
            raise ConfigurationError("; ".join(problems))
        assert settings.openbao_addr is not None
        token, secret_id = settings.openbao_token, settings.openbao_secret_id
        method = openbao_auth_method(settings)
        auth = OpenBaoAuth(
            method, token=token.get_secret_value() if token else None, role_id=settings.openbao_role_id,
            secret_id=secret_id.get_secret_value() if secret_id else None, role=settings.openbao_role,
            signer=iam_signer() if method == "gcp" else None,
        )  # fmt: skip
        return OpenBaoClient(settings.openbao_addr, auth)

    @cached_property
    def keyring(self) -> Keyring:
        from shared.adapters.keys import load_keyring

        return load_keyring(self.settings, self.gcp_store, lambda: (self.openbao_client, self.engine))

    @cached_property
    def secret_stores(self) -> SecretStores:
        """Each row's store by the row's backend (SECRET_BACKEND for new secrets and unmarked rows)."""
        from shared.adapters.secret_stores import StoresByBackend

        default = self.settings.secret_backend
        return StoresByBackend(default, lambda name: self.secret_store if name == default else self.store_for(name))

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
        if backend == "openbao":
            from shared.adapters.openbao_secret_store import OpenBaoKvStore

            probe = f"{self.settings.secret_prefix}-readiness-probe"
            return OpenBaoKvStore(self.openbao_client, self.settings.openbao_mount, probe_secret_id=probe)
        if backend == "aws":
            from shared.adapters.aws_secret_store import AwsSecretsManagerStore

            if not self.settings.aws_region:
                raise ConfigurationError("AWS_REGION: required for the aws backend (the region of the secrets)")
            client = AwsSecretsManagerStore.build_client(self.settings.aws_region, self.settings.aws_endpoint_url)
            return AwsSecretsManagerStore(client, probe_secret_id=f"{self.settings.secret_prefix}-readiness-probe")
        raise ConfigurationError(f"SECRET_BACKEND: no backend named {backend!r}")
