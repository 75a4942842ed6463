"""Data keys from OpenBao Transit (DATA_KEY_TRANSIT=<mount>/<key name>): envelope encryption.

Data-key version N is a 32-byte key that Transit generated (`datakey/wrapped`) under version N of the Transit
key; only its wrapped form is stored, in `wrapped_data_keys`. An instance asks Transit to unwrap each version it
needs once and keeps the plaintext in memory. The encrypting version is the Transit key's latest version when the
instance starts: rotating the Transit key (`bao write -f transit/keys/<key>/rotate`) makes the next instances,
and `broker rotate-key`, generate and use a new data key, while older versions still open on demand. Transit never
sees a token or a refresh token, only the data keys.
"""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Iterator, Mapping
from datetime import UTC, datetime
from typing import Any

from hvac import exceptions as bao_errors
from sqlalchemy import Engine, insert, select
from sqlalchemy.exc import IntegrityError, SQLAlchemyError

from shared.adapters.openbao_client import OpenBaoClient
from shared.adapters.orm import WrappedDataKeyRow as W
from shared.domain.envelope import KEY_BYTES, KeyUnavailable
from shared.errors import SecretStoreUnavailable

_WRAPPED = re.compile(r"vault:v([1-9][0-9]*):\S+")


class TransitKeys(Mapping[int, bytes]):
    """Data-key versions by number, unwrapped by Transit once per instance, on first use."""

    def __init__(self, client: OpenBaoClient, source: str, engine: Engine) -> None:
        self._bao = client
        self._source = source
        self._mount, _, self._key = source.rpartition("/")
        self._engine = engine
        self._loaded: dict[int, bytes] = {}

    def current(self) -> int:
        """The encrypting version: the Transit key's latest, its data key generated and stored when missing."""
        try:
            info = self._bao.call(lambda c: c.secrets.transit.read_key(name=self._key, mount_point=self._mount))  # type: ignore[no-untyped-call]
        except bao_errors.InvalidPath:
            raise KeyUnavailable(f"DATA_KEY_TRANSIT: no Transit key {self._key!r} under {self._mount!r}") from None
        latest = int(info["data"]["latest_version"])
        if self._wrapped(latest) is None:
            self._generate()
        return max(v for v in (latest, *self._stored_versions()) if self._wrapped(v) is not None)

    def _generate(self) -> None:
        answer = self._bao.call(
            lambda c: c.secrets.transit.generate_data_key(  # type: ignore[no-untyped-call]
                name=self._key, key_type="wrapped", bits=KEY_BYTES * 8, mount_point=self._mount
            )
        )
        ciphertext = str(answer["data"]["ciphertext"])
        match = _WRAPPED.fullmatch(ciphertext)
        if match is None:
            raise KeyUnavailable("DATA_KEY_TRANSIT: Transit answered a data key in an unknown form")
        row = {"source": self._source, "version": int(match.group(1)), "ciphertext": ciphertext}
        try:
            with self._engine.begin() as conn:
                conn.execute(insert(W).values(**row, created_at=datetime.now(UTC)))
        except IntegrityError:
            pass  # another instance stored this version's data key first: everyone uses that one
        except SQLAlchemyError as exc:
            raise SecretStoreUnavailable(f"could not store the wrapped data key: {type(exc).__name__}") from None

    def _wrapped(self, version: int) -> str | None:
        try:
            with self._engine.connect() as conn:
                found = conn.execute(
                    select(W.ciphertext).where(W.source == self._source, W.version == version)
                ).scalar_one_or_none()
        except SQLAlchemyError as exc:
            raise SecretStoreUnavailable(f"could not read the wrapped data key: {type(exc).__name__}") from None
        return None if found is None else str(found)

    def _stored_versions(self) -> list[int]:
        with self._engine.connect() as conn:
            return [int(v) for v in conn.execute(select(W.version).where(W.source == self._source)).scalars()]

    def __getitem__(self, version: int) -> bytes:
        if version not in self._loaded:
            wrapped = self._wrapped(version)
            if wrapped is None:
                raise KeyError(version)
            self._loaded[version] = self._unwrap(wrapped)
        return self._loaded[version]

    def _unwrap(self, wrapped: str) -> bytes:
        answer: Any = self._bao.call(
            lambda c: c.secrets.transit.decrypt_data(name=self._key, ciphertext=wrapped, mount_point=self._mount)
        )
        try:
            key = base64.b64decode(str(answer["data"]["plaintext"]), validate=True)
        except (KeyError, binascii.Error, ValueError):
            raise KeyUnavailable("DATA_KEY_TRANSIT: Transit's answer holds no data key") from None
        if len(key) != KEY_BYTES:
            raise KeyUnavailable(f"DATA_KEY_TRANSIT: the unwrapped data key has {len(key)} bytes")
        return key

    def __contains__(self, version: object) -> bool:
        return isinstance(version, int) and (version in self._loaded or self._wrapped(version) is not None)

    def __iter__(self) -> Iterator[int]:
        return iter(dict(self._loaded))

    def __len__(self) -> int:
        return len(self._loaded)
