"""AES-256-GCM envelope for values kept in the database (access tokens, embedded-vault secrets).

Each ciphertext is `nonce (12 bytes) || ciphertext || tag`. The associated data binds it to its purpose, the
record it belongs to and the key version, so a ciphertext copied to another row, another purpose or relabelled
with another key version fails to open instead of decrypting into the wrong place.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from shared.errors import ConfigurationError, SecretCorrupted

NONCE_BYTES = 12
KEY_BYTES = 32


class KeyUnavailable(ConfigurationError):
    code = "data_key_unavailable"


def associated_data(purpose: str, record: str, key_version: int) -> bytes:
    return f"broker/v1|{purpose}|{record}|key:{key_version}".encode()


@dataclass(frozen=True)
class Keyring:
    """Data keys by version: `current` (default: the highest) seals, every version opens, so keys can rotate.

    `keys` may be a lazy mapping that loads a version on first use (see adapters.keys).
    """

    keys: Mapping[int, bytes]
    current: int | None = None

    def __post_init__(self) -> None:
        if self.current is None:
            if not self.keys:
                raise KeyUnavailable("no data key configured")
            object.__setattr__(self, "current", max(self.keys))
        for version, key in self.keys.items():
            if version < 1 or len(key) != KEY_BYTES:
                raise KeyUnavailable(f"data key version {version} must be a 32-byte AES-256 key")

    def __repr__(self) -> str:
        return f"Keyring(current={self.current})"

    @property
    def current_version(self) -> int:
        assert self.current is not None
        return self.current

    def seal(self, plaintext: bytes, *, purpose: str, record: str) -> tuple[bytes, int]:
        from cryptography.hazmat.primitives.ciphers.aead import AESGCM  # here: a start-up that seals nothing skips it

        version = self.current_version
        nonce = os.urandom(NONCE_BYTES)
        sealed = AESGCM(self.keys[version]).encrypt(nonce, plaintext, associated_data(purpose, record, version))
        return nonce + sealed, version

    def open(self, ciphertext: bytes, *, key_version: int, purpose: str, record: str) -> bytes:
        try:
            key = self.keys[key_version]
        except KeyError:
            key = None
        if key is None:
            raise KeyUnavailable(f"data key version {key_version} is not available to this instance")
        if len(ciphertext) <= NONCE_BYTES:
            raise SecretCorrupted(f"{purpose} ciphertext for {record} is truncated")
        nonce, sealed = ciphertext[:NONCE_BYTES], ciphertext[NONCE_BYTES:]
        from cryptography.exceptions import InvalidTag
        from cryptography.hazmat.primitives.ciphers.aead import AESGCM

        try:
            return AESGCM(key).decrypt(nonce, sealed, associated_data(purpose, record, key_version))
        except InvalidTag:
            raise SecretCorrupted(f"{purpose} ciphertext for {record} failed its integrity check") from None


# What `broker rotate-key` re-encrypts (adapters/sql_ciphertexts.py says where each lives).
CIPHERTEXT_KINDS = ("access_token", "pending_refresh_token", "pkce_verifier", "vault_secret")


@dataclass(frozen=True, repr=False)
class Sealed:
    """One stored ciphertext as read: its kind, its row's primary key, and the purpose and record its associated
    data names."""

    kind: str
    key: tuple[Any, ...]
    purpose: str
    record: str
    ciphertext: bytes
    key_version: int

    def __repr__(self) -> str:
        return f"Sealed({self.kind}, {self.record}, key:{self.key_version})"


def new_data_key() -> bytes:
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM

    return AESGCM.generate_key(bit_length=256)
