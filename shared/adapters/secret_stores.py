"""StoresByBackend: each row's master-secret store resolved by the row's backend name, each built once."""

from __future__ import annotations

import threading
from collections.abc import Callable

from shared.domain.ports import SecretStore
from shared.errors import ConfigurationError, SecretStoreUnavailable


class StoresByBackend:
    def __init__(self, default_name: str, build: Callable[[str], SecretStore]) -> None:
        self._default_name = default_name
        self._build = build
        self._stores: dict[str, SecretStore] = {}
        self._lock = threading.Lock()

    @property
    def default_name(self) -> str:
        return self._default_name

    @property
    def default(self) -> SecretStore:
        return self.of(None)

    def of(self, backend: str | None) -> SecretStore:
        name = backend or self._default_name
        with self._lock:
            store = self._stores.get(name)
            if store is None:
                try:
                    store = self._stores[name] = self._build(name)
                except ConfigurationError as exc:
                    # A row moved to a backend this instance was not given the settings of (an operator's step
                    # missed during a migration): unavailable here, never a 500, nothing changed.
                    raise SecretStoreUnavailable(
                        f"this instance cannot reach the {name} backend: {exc.message}"
                    ) from None
        return store


def single(store: SecretStore, name: str = "database") -> StoresByBackend:
    """Every row's secret in one store (services built by hand, e.g. with a fake store in unit tests)."""
    return StoresByBackend(name, lambda _name: store)
