"""The composition root: builds the real adapters lazily, once per instance (never at import time).

Entry modules call `check()` when they load (settings and catalog, no client) and `container()` per request;
tests build a `Container` with their own settings, fakes or local servers.
"""

from __future__ import annotations

import os
import sys
import threading
from collections.abc import Callable
from datetime import timedelta
from functools import cached_property
from typing import TYPE_CHECKING, Any

from shared.bootstrap_callers import CallerComponents
from shared.bootstrap_connect import ConnectComponents
from shared.bootstrap_data import DataComponents
from shared.bootstrap_events import EventComponents
from shared.bootstrap_fanout import FanoutComponents
from shared.bootstrap_secrets import SecretComponents
from shared.config import Settings, get_settings
from shared.domain.clock import SystemClock
from shared.errors import CatalogError, ConfigurationError
from shared.logs import configure_logging

if TYPE_CHECKING:  # annotations only: the ports' modules would bring the crypto envelope and the events domain
    import requests

    from shared.adapters.http_oauth import HttpTokenEndpoint
    from shared.domain.ports import Clock, ProviderDirectory
    from shared.providers.catalog import Catalog, Provider
    from shared.services.connect import ConnectFlow
    from shared.services.housekeeping import Housekeeping
    from shared.services.integrations import IntegrationService
    from shared.services.operations import Operations
    from shared.services.refresh import Refresher
    from shared.services.refresh_job import JobSettings
    from shared.services.tokens import TokenService


class Deferred:
    """A component built on its first use. Services get it at once, but a cold start that never calls it never pays
    for its imports and client (the Secret Manager client's gRPC stack, `requests`, OIDC discovery)."""

    def __init__(self, build: Callable[[], Any]) -> None:
        self._build = build
        self._target: Any = None
        self._lock = threading.Lock()

    def built(self) -> Any:
        if self._target is None:
            with self._lock:
                if self._target is None:
                    self._target = self._build()
        return self._target

    def __getattr__(self, name: str) -> Any:
        return getattr(self.built(), name)


class DeferredDirectory(Deferred):
    """The OIDC directory, built (PyJWT, `requests`) only once an entry needs discovery or an ID token is checked:
    starting a flow with a provider whose endpoints the catalog names builds nothing."""

    def resolve(self, provider: Provider) -> Provider:
        return self.built().resolve(provider) if provider.needs_discovery else provider


class Container(
    DataComponents, EventComponents, SecretComponents, CallerComponents, FanoutComponents, ConnectComponents
):
    def __init__(self, settings: Settings, **overrides: Any) -> None:
        self.settings = settings
        components = {name for klass in type(self).__mro__ for name in vars(klass) if not name.startswith("_")}
        for name, value in overrides.items():  # a test's fake or local server replaces the real adapter
            if name not in components:
                raise TypeError(f"Container has no component {name!r}")
            self.__dict__[name] = value

    def later(self, component: str) -> Any:
        """`component`, built when first used (Deferred)."""
        return Deferred(lambda: getattr(self, component))

    @cached_property
    def deferred_directory(self) -> ProviderDirectory:
        return DeferredDirectory(lambda: self.directory)

    @cached_property
    def clock(self) -> Clock:
        return SystemClock()

    @cached_property
    def catalog(self) -> Catalog:
        from shared.providers.catalog import load_catalog

        return load_catalog(self.settings.providers_file)

    @cached_property
    def egress(self) -> requests.Session:
        """The session for every call to a provider or an ID token issuer (checked by the egress rules). A
        kept-alive connection per concurrent refresh: urllib3 keeps 10 per host, and a job running more calls at once
        than that would open (and drop) a connection for every call beyond them."""
        from shared.adapters.egress import egress_session

        pool = max(10, self.settings.refresh_concurrency)
        return egress_session(self.settings.egress_policy, pool_maxsize=pool)

    @cached_property
    def token_endpoint(self) -> HttpTokenEndpoint:
        from shared.adapters.http_oauth import HttpTokenEndpoint

        return HttpTokenEndpoint(self.egress, timeout=self.settings.provider_timeout)

    @cached_property
    def directory(self) -> ProviderDirectory:
        from shared.adapters.oidc import OidcProviders

        return OidcProviders(self.token_endpoint, timeout=self.settings.provider_timeout)

    @cached_property
    def integration_service(self) -> IntegrationService:
        from shared.services.integrations import IntegrationService

        return IntegrationService(
            settings=self.settings, catalog=self.catalog, integrations=self.integrations, admin=self.integration_admin,
            secrets=self.secret_stores, keyring=self.keyring, clock=self.clock,
            token_endpoint=self.later("token_endpoint"), revoker=self.later("token_endpoint"),
            directory=self.deferred_directory, audit=self.audit,
        )  # fmt: skip

    @cached_property
    def operations(self) -> Operations:
        from shared.services.operations import Operations

        return Operations(
            service=self.integration_service, integrations=self.integrations, finder=self.integration_finder,
            refresher=self.refresher, audit=self.audit,
        )  # fmt: skip

    @cached_property
    def connect_flow(self) -> ConnectFlow:
        from shared.services.connect import ConnectFlow

        return ConnectFlow(
            settings=self.settings, catalog=self.catalog, states=self.states, integrations=self.integrations,
            secrets=self.secret_stores, keyring=self.keyring, clock=self.clock,
            token_endpoint=self.later("token_endpoint"), directory=self.deferred_directory, audit=self.audit,
            flows=self.flow_records,
        )  # fmt: skip

    @cached_property
    def refresher(self) -> Refresher:
        from shared.lifecycle import stopping
        from shared.services.refresh import Refresher

        return Refresher(
            settings=self.settings, catalog=self.catalog, store=self.refresh_store, secrets=self.secret_stores,
            keyring=self.keyring, clock=self.clock, token_endpoint=self.later("token_endpoint"),
            directory=self.deferred_directory,
            lease=timedelta(seconds=self.settings.refresh_lease), stopping=stopping,
        )  # fmt: skip

    @cached_property
    def token_service(self) -> TokenService:
        from shared.services.tokens import SlowPath, TokenService

        def slow_path() -> SlowPath:  # built on the first fetch off the hot path
            return SlowPath(store=self.refresh_store, secrets=self.secret_stores, refresher=self.refresher)

        return TokenService(
            catalog=self.catalog, reads=self.token_reads, keyring=self.keyring, clock=self.clock, slow_path=slow_path
        )

    @cached_property
    def job_settings(self) -> JobSettings:
        from shared.services.refresh_job import JobSettings

        s = self.settings
        return JobSettings(
            horizon=timedelta(seconds=s.refresh_horizon), batch_size=s.refresh_batch_size,
            concurrency=s.refresh_concurrency, deadline=float(s.refresh_deadline),
        )  # fmt: skip

    @cached_property
    def housekeeping(self) -> Housekeeping:
        from shared.adapters.sql_housekeeping import SqlHousekeepingStore
        from shared.lifecycle import stopping
        from shared.services.housekeeping import Housekeeping

        return Housekeeping(
            store=SqlHousekeepingStore(self.engine), secrets=self.later("secret_store"), audit=self.audit,
            clock=self.clock,
            catalog=self.catalog, settings=self.settings, directory=self.deferred_directory,
            revoker=self.later("token_endpoint"),  # only an orphan to revoke needs them (and `requests`)
            stopping=stopping, defer_first_sweep=True,
        )  # fmt: skip


_lock = threading.Lock()
_container: Container | None = None
_checked_catalog: Catalog | None = None


def validate(*, client_secrets: bool = True, token_callers: bool = False) -> None:
    """Read and check this instance's settings and provider catalog; ConfigurationError names each problem.

    Builds no client (cold starts pay for none): settings, the catalog files and the environment are all it reads.
    """
    global _checked_catalog
    from shared import startup
    from shared.providers.catalog import load_catalog

    settings = get_settings()
    try:
        catalog = load_catalog(settings.providers_file)
    except CatalogError as exc:
        raise CatalogError(f"PROVIDERS_FILE: {exc.message}" if settings.providers_file else exc.message) from None
    found = startup.problems(settings, catalog, os.environ, client_secrets=client_secrets, token_callers=token_callers)
    if found:
        raise ConfigurationError("invalid settings: " + "; ".join(found))
    _checked_catalog = catalog


def check(*, client_secrets: bool = True, token_callers: bool = False) -> None:
    """For an entry module, when functions-framework loads it: a bad setting or catalog stops the process (exit 2,
    one line on stderr naming the variable, never its value), so the revision never becomes ready."""
    try:
        validate(client_secrets=client_secrets, token_callers=token_callers)
    except ConfigurationError as exc:
        print(f"broker: refusing to start: {exc.message}", file=sys.stderr, flush=True)
        raise SystemExit(2) from None


def container() -> Container:
    """This instance's container, built on first use from the environment (and the catalog `check` read)."""
    global _container
    if _container is None:
        with _lock:
            if _container is None:
                settings = get_settings()
                configure_logging(settings)  # once per instance, with the container
                checked = {"catalog": _checked_catalog} if _checked_catalog is not None else {}
                _container = Container(settings, **checked)
    return _container
