"""AES-256-GCM envelope: bound to purpose, record and key version."""

from __future__ import annotations

import pytest

from shared.domain.envelope import Keyring, KeyUnavailable, new_data_key
from shared.errors import SecretCorrupted


def test_seal_and_open_round_trip_with_the_current_key():
    ring = Keyring({1: new_data_key(), 2: new_data_key()})
    sealed, version = ring.seal(b"access-token", purpose="access_token", record="id-1")
    assert version == 2
    assert b"access-token" not in sealed
    assert ring.open(sealed, key_version=2, purpose="access_token", record="id-1") == b"access-token"


@pytest.mark.parametrize(
    ("purpose", "record", "key_version"),
    [("access_token", "id-2", 1), ("vault-secret", "id-1", 1), ("access_token", "id-1", 2)],
)
def test_ciphertext_does_not_open_anywhere_else(purpose, record, key_version):
    key = new_data_key()
    ring = Keyring({1: key, 2: key})  # same bytes: only the associated data differs
    sealed, _ = Keyring({1: key}).seal(b"token", purpose="access_token", record="id-1")
    with pytest.raises(SecretCorrupted, match="integrity check"):
        ring.open(sealed, key_version=key_version, purpose=purpose, record=record)


def test_tampered_and_truncated_ciphertexts_are_refused():
    ring = Keyring({1: new_data_key()})
    sealed, _ = ring.seal(b"token", purpose="p", record="r")
    flipped = sealed[:-1] + bytes([sealed[-1] ^ 1])
    with pytest.raises(SecretCorrupted):
        ring.open(flipped, key_version=1, purpose="p", record="r")
    with pytest.raises(SecretCorrupted, match="truncated"):
        ring.open(sealed[:5], key_version=1, purpose="p", record="r")


def test_unknown_key_version_and_bad_keys():
    ring = Keyring({1: new_data_key()})
    sealed, _ = ring.seal(b"token", purpose="p", record="r")
    with pytest.raises(KeyUnavailable, match="version 7"):
        ring.open(sealed, key_version=7, purpose="p", record="r")
    with pytest.raises(KeyUnavailable):
        Keyring({1: b"short"})
    with pytest.raises(KeyUnavailable):
        Keyring({})
    assert "current=1" in repr(ring)
    assert str(ring.keys[1]) not in repr(ring)
