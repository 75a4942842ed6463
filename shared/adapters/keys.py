"""Where the data key comes from: DATA_KEYS, a pinned Secret Manager version, OpenBao Transit (envelope), or
(development only) a local file. This is the one place that builds the keyring."""

from __future__ import annotations

import base64
import binascii
import os
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import TYPE_CHECKING

from shared.config import Settings
from shared.config_values import parse_data_keys
from shared.domain.envelope import KEY_BYTES, Keyring, KeyUnavailable, new_data_key
from shared.domain.ports import SecretStore
from shared.errors import SecretNotFound

if TYPE_CHECKING:
    from sqlalchemy import Engine

    from shared.adapters.openbao_client import OpenBaoClient

LOCAL_KEY_FILE = "data-key"


def decode_key(payload: bytes) -> bytes:
    """A data key version holds 32 raw bytes or their base64 text (as `openssl rand -base64 32` prints)."""
    if len(payload) == KEY_BYTES:
        return payload
    try:
        key = base64.b64decode(payload.strip(), validate=True)
    except (binascii.Error, ValueError):
        raise KeyUnavailable("the data key secret is neither 32 raw bytes nor base64 of 32 bytes") from None
    if len(key) != KEY_BYTES:
        raise KeyUnavailable(f"the data key secret decodes to {len(key)} bytes, expected {KEY_BYTES}")
    return key


class SecretManagerKeys(Mapping[int, bytes]):
    """Key versions read from one Secret Manager secret by number, each once per instance, on first use."""

    def __init__(self, store: SecretStore, secret_id: str) -> None:
        self._store = store
        self._secret_id = secret_id
        self._loaded: dict[int, bytes] = {}

    def __getitem__(self, version: int) -> bytes:
        if version not in self._loaded:
            try:
                payload = self._store.read(self._secret_id, version)
            except SecretNotFound:
                raise KeyError(version) from None
            self._loaded[version] = decode_key(payload)
        return self._loaded[version]

    def __contains__(self, version: object) -> bool:
        if not isinstance(version, int):
            return False
        try:
            self[version]
        except KeyError:
            return False
        return True

    def __iter__(self) -> Iterator[int]:
        return iter(dict(self._loaded))

    def __len__(self) -> int:
        return len(self._loaded)


def load_keyring(
    settings: Settings,
    gcp_store_for: Callable[[str], SecretStore],
    transit: Callable[[], tuple[OpenBaoClient, Engine]] | None = None,
) -> Keyring:
    """Build the keyring the settings ask for. `gcp_store_for(project)` gives a Secret Manager store; `transit()`
    the OpenBao client and the database that keeps the wrapped data keys (DATA_KEY_TRANSIT)."""
    if settings.data_keys is not None:
        return Keyring(parse_data_keys(settings.data_keys.get_secret_value()), current=settings.data_key_current)
    if settings.data_key_secret:
        _, project, _, secret_id, _, version = settings.data_key_secret.split("/")
        keys = SecretManagerKeys(gcp_store_for(project), secret_id)
        current = int(version)
        if current not in keys:  # fail at start-up, not on the first request, when the pinned version is unreadable
            raise KeyUnavailable(f"DATA_KEY_SECRET: version {current} of {secret_id} is not readable")
        return Keyring(keys, current=current)
    if settings.data_key_transit:
        if transit is None:
            raise KeyUnavailable("DATA_KEY_TRANSIT: no OpenBao client was given to reach Transit")
        from shared.adapters.transit_keys import TransitKeys

        client, engine = transit()
        wrapped = TransitKeys(client, settings.data_key_transit, engine)
        return Keyring(wrapped, current=wrapped.current())
    if settings.is_production:
        raise KeyUnavailable("no data key in production: set DATA_KEY_SECRET")
    path = Path(settings.local_data_key_file or Path(settings.local_data_dir) / LOCAL_KEY_FILE)
    return Keyring({1: _local_key(path)})


def _local_key(path: Path) -> bytes:
    """Development only: a key generated once (mode 0600), by default into the local data directory."""
    path.parent.mkdir(parents=True, exist_ok=True)
    if not path.exists():
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as handle:
            handle.write(base64.b64encode(new_data_key()))
    return decode_key(path.read_bytes())
