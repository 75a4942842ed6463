"""DATA_KEY_TRANSIT against a real OpenBao Transit engine: data keys generated wrapped, stored only wrapped,
unwrapped once per instance per version, and a Transit key rotation feeding `broker rotate-key`."""

from __future__ import annotations

import base64
import json
import sys
from uuid import UUID, uuid4

import pytest
from sqlalchemy import select

from shared.adapters.orm import WrappedDataKeyRow
from shared.adapters.transit_keys import TransitKeys
from shared.bootstrap import Container
from shared.cli import main
from shared.config import get_settings, load_settings
from shared.logs import configure_logging
from tests.support.broker_env import connect, in_process_broker
from tests.support.engine import current, refresh_grants
from tests.support.openbao import OpenBao


@pytest.fixture
def transit_env(env, openbao: OpenBao) -> dict[str, str]:
    key = f"broker-{uuid4().hex[:8]}"
    openbao.api("POST", f"transit/keys/{key}")
    settings = {k: v for k, v in env.items() if k != "DATA_KEYS"}
    return {**settings, "SECRET_BACKEND": "database", "DATA_KEY_TRANSIT": f"transit/{key}",
            "OPENBAO_ADDR": openbao.addr, "OPENBAO_TOKEN": openbao.root_token}  # fmt: skip


def _wrapped(app: Container) -> list[tuple[int, str]]:
    with app.engine.connect() as conn:
        rows = conn.execute(select(WrappedDataKeyRow.version, WrappedDataKeyRow.ciphertext).order_by("version"))
        return [(int(v), str(c)) for v, c in rows]


def _cli(*args: str) -> int:
    try:
        return main(list(args))
    finally:
        configure_logging(get_settings(), stream=sys.__stderr__)


def test_data_keys_come_wrapped_from_transit_and_its_rotation_feeds_rotate_key(
    transit_env, openbao, provider, monkeypatch, capsys
):
    unwraps: list[int] = []
    real_unwrap = TransitKeys._unwrap

    def counted(self: TransitKeys, wrapped: str) -> bytes:
        unwraps.append(1)
        return real_unwrap(self, wrapped)

    monkeypatch.setattr(TransitKeys, "_unwrap", counted)
    with in_process_broker(transit_env, monkeypatch) as first:
        assert first.keyring.current == 1
        ((version, wrapped),) = _wrapped(first)
        assert version == 1
        assert wrapped.startswith("vault:v1:")
        key = first.keyring.keys[1]  # the plaintext data key lives in memory only
        assert base64.b64encode(key).decode() not in wrapped
        integration_id = connect(first, provider)
        sealed, sealed_with = first.keyring.seal(b"sealed by the first instance", purpose="test", record="r")
        for _ in range(3):
            first.token_service.fetch(UUID(integration_id), "test", force=True)
        assert len(unwraps) == 1, "one unwrap per instance per key version"

        second = Container(load_settings())  # another instance: the same data key, unwrapped by Transit again
        assert second.keyring.open(sealed, key_version=sealed_with, purpose="test", record="r") == (
            b"sealed by the first instance"
        )
        assert len(_wrapped(second)) == 1
        assert len(unwraps) == 2

        openbao.api("POST", f"{transit_env['DATA_KEY_TRANSIT'].replace('/', '/keys/', 1)}/rotate")
        rotated = Container(load_settings())  # the next instance: a new data key under Transit version 2
        assert rotated.keyring.current == 2
        assert [v for v, _ in _wrapped(rotated)] == [1, 2]
        assert (
            rotated.keyring.open(sealed, key_version=1, purpose="test", record="r") == b"sealed by the first instance"
        )
        newer, newer_with = rotated.keyring.seal(b"sealed under 2", purpose="test", record="r")
        assert newer_with == 2
        assert first.keyring.open(newer, key_version=2, purpose="test", record="r") == b"sealed under 2", (
            "an instance started before the rotation opens the new version on demand"
        )

        capsys.readouterr()
        assert _cli("rotate-key", "--check", "--json") == 0
        assert "1" in json.loads(capsys.readouterr().out), "the integration's token is still under version 1"
        assert _cli("rotate-key") == 0
        capsys.readouterr()
        assert _cli("rotate-key", "--check", "--json") == 0
        assert set(json.loads(capsys.readouterr().out)) == {"2"}
        row = current(rotated, integration_id)
        assert row.access_token_key_version == 2
        assert rotated.token_service.fetch(UUID(integration_id), "test")["access_token"]
        assert rotated.refresher.refresh(UUID(integration_id), force=True).outcome == "refreshed"
        assert refresh_grants(provider)["errors"] == {}
        for app in (second, rotated):
            app.engine.dispose()
