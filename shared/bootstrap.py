"""The composition root: builds the real adapters lazily, once per instance (never at import time).

Entry points call `container()`; tests build a `Container` with their own settings, fakes or local servers.
"""

from __future__ import annotations

import threading
from functools import cached_property
from typing import TYPE_CHECKING, Any

from sqlalchemy import Engine

from shared.config import Settings, get_settings
from shared.domain.clock import SystemClock
from shared.domain.envelope import Keyring
from shared.domain.ports import (
    AuditLog,
    Authenticator,
    Clock,
    IntegrationRepository,
    OAuthStateRepository,
    ProviderDirectory,
    SecretStore,
)
from shared.providers.catalog import Catalog, load_catalog

if TYPE_CHECKING:
    from shared.adapters.http_oauth import HttpTokenEndpoint
    from shared.services.connect import ConnectFlow


class Container:
    def __init__(self, settings: Settings, **overrides: Any) -> None:
        self.settings = settings
        for name, value in overrides.items():  # a test's fake or local server replaces the real adapter
            if name not in type(self).__dict__:
                raise TypeError(f"Container has no component {name!r}")
            self.__dict__[name] = value

    @cached_property
    def clock(self) -> Clock:
        return SystemClock()

    @cached_property
    def engine(self) -> Engine:
        from shared.adapters.db import build_engine

        return build_engine(self.settings)

    @cached_property
    def catalog(self) -> Catalog:
        return load_catalog(self.settings.providers_file)

    @cached_property
    def secret_manager_client(self) -> Any:
        from shared.adapters.gcp_secret_store import GcpSecretManagerStore

        return GcpSecretManagerStore.build_client(self.settings.secret_manager_endpoint)

    def gcp_store(self, project: str) -> SecretStore:
        from shared.adapters.gcp_secret_store import GcpSecretManagerStore

        return GcpSecretManagerStore(project, self.secret_manager_client)

    @cached_property
    def keyring(self) -> Keyring:
        from shared.adapters.keys import load_keyring

        return load_keyring(self.settings, self.gcp_store)

    @cached_property
    def integrations(self) -> IntegrationRepository:
        from shared.adapters.sql_repositories import SqlIntegrationRepository

        return SqlIntegrationRepository(self.engine, self.clock)

    @cached_property
    def states(self) -> OAuthStateRepository:
        from shared.adapters.sql_repositories import SqlOAuthStateRepository

        return SqlOAuthStateRepository(self.engine)

    @cached_property
    def audit(self) -> AuditLog:
        from shared.adapters.sql_repositories import SqlAuditLog

        return SqlAuditLog(self.engine, self.clock)

    @cached_property
    def token_endpoint(self) -> HttpTokenEndpoint:
        from shared.adapters.http_oauth import HttpTokenEndpoint

        return HttpTokenEndpoint(timeout=self.settings.provider_timeout)

    @cached_property
    def directory(self) -> ProviderDirectory:
        from shared.adapters.oidc import OidcProviders

        return OidcProviders(self.token_endpoint, timeout=self.settings.provider_timeout)

    @cached_property
    def authenticator(self) -> Authenticator:
        from shared.adapters.caller_auth import DevHeaderAuthenticator

        return DevHeaderAuthenticator()

    @cached_property
    def connect_flow(self) -> ConnectFlow:
        from shared.services.connect import ConnectFlow

        return ConnectFlow(
            settings=self.settings, catalog=self.catalog, states=self.states, integrations=self.integrations,
            secrets=self.secret_store, keyring=self.keyring, clock=self.clock, token_endpoint=self.token_endpoint,
            directory=self.directory, audit=self.audit,
        )  # fmt: skip

    @cached_property
    def secret_store(self) -> SecretStore:
        if self.settings.secret_backend == "gcp":
            assert self.settings.gcp_project is not None  # settings validation guarantees it
            return self.gcp_store(self.settings.gcp_project)
        from shared.adapters.db_secret_store import DatabaseSecretStore

        return DatabaseSecretStore(self.engine, self.keyring, self.clock)


_lock = threading.Lock()
_container: Container | None = None


def container() -> Container:
    """This instance's container, built on first use from the environment."""
    global _container
    if _container is None:
        with _lock:
            if _container is None:
                _container = Container(get_settings())
    return _container
