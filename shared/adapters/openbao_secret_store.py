"""SecretStore on OpenBao's (or Vault's) KV v2 engine: one secret per integration at `<mount>/<secret id>`.

- Every write is a check-and-set: version N+1 is written with `cas=N`, so two writers can never both create the
  same version; the loser reads the new current version and tries again (the metadata also sets `cas_required`,
  so the server refuses any write without it). KV v2 numbers versions 1, 2, … like the port.
- Reads are by version number; a deleted, destroyed or missing version is SecretNotFound. `destroy_version`
  destroys the payload for good (KV v2 `destroy`), `delete` removes the metadata and every version.
- The metadata keeps up to 100 versions (KV's default of 10 could drop a pinned one after a run of failed
  writes).
- The labels are the secret's `custom_metadata`, written before its first version, so a secret never exists
  without them (the orphan sweep reads the provider from them).
- The payload is opaque bytes, kept base64-encoded under the `payload` key of the version's data.
- Errors: 404 is "absent"; everything else (sealed, unreachable, refused token) is SecretStoreUnavailable.
"""

from __future__ import annotations

import base64
import binascii
import functools
import re
from collections.abc import Mapping
from datetime import datetime
from typing import Any

import hvac
from hvac import exceptions as bao_errors

from shared.adapters.openbao_client import OpenBaoClient, unavailable
from shared.domain.secret_ports import within
from shared.errors import SecretCorrupted, SecretNotFound, SecretStoreUnavailable

ADD_ATTEMPTS = 20
# KV v2 forgets a secret's oldest versions beyond max_versions (10 by default): a pinned version must never go that
# way, even after a run of fenced-out writes, so the broker's secrets keep up to 100 (superseded ones destroyed).
MAX_VERSIONS = 100
_FRACTION = re.compile(r"\.\d+")


def _created(metadata: Mapping[str, Any]) -> datetime:
    # KV v2 answers RFC 3339 with nanoseconds ("2026-01-01T10:00:00.123456789Z"): Python takes microseconds.
    stamp = _FRACTION.sub(lambda m: m.group(0)[:7], str(metadata["created_time"]).replace("Z", "+00:00"))
    return datetime.fromisoformat(stamp)


class OpenBaoKvStore:
    def __init__(self, client: OpenBaoClient, mount: str = "secret", *, probe_secret_id: str = "broker-probe") -> None:
        self._bao = client
        self._mount = mount
        self._probe = probe_secret_id

    def _metadata(self, secret_id: str) -> dict[str, Any] | None:
        try:
            response = self._bao.call(
                lambda c: c.secrets.kv.v2.read_secret_metadata(path=secret_id, mount_point=self._mount)
            )
        except bao_errors.InvalidPath:
            return None
        return dict(response["data"])

    def add_version(self, secret_id: str, payload: bytes, labels: Mapping[str, str]) -> int:
        data = {"payload": base64.b64encode(payload).decode()}
        for _ in range(ADD_ATTEMPTS):
            metadata = self._metadata(secret_id)
            current = int(metadata["current_version"]) if metadata else 0
            if metadata is None:
                self._bao.call(
                    lambda c: c.secrets.kv.v2.update_metadata(
                        path=secret_id,
                        mount_point=self._mount,
                        cas_required=True,
                        max_versions=MAX_VERSIONS,
                        custom_metadata=dict(labels),
                    )
                )
            try:
                response = self._bao.call(
                    functools.partial(self._write, secret_id, data, current),
                    passthrough=(bao_errors.InvalidPath, bao_errors.InvalidRequest),
                )
            except bao_errors.InvalidPath:
                continue  # deleted between our two calls: start again
            except bao_errors.InvalidRequest as exc:
                if "check-and-set" in str(exc):
                    continue  # another writer took version current+1 first: take the next one
                raise unavailable(exc) from None
            if response is None:  # pragma: no cover - KV v2 always answers a write with its metadata
                raise SecretStoreUnavailable("openbao unavailable: empty answer to a write")
            return int(response["data"]["version"])
        raise SecretStoreUnavailable(f"could not add a version to {secret_id}: too many concurrent writers")

    def _write(self, secret_id: str, data: dict[str, str], cas: int, client: hvac.Client) -> Any:
        return client.secrets.kv.v2.create_or_update_secret(
            path=secret_id, secret=data, cas=cas, mount_point=self._mount
        )

    def read(self, secret_id: str, version: int) -> bytes:
        try:
            response = self._bao.call(
                lambda c: c.secrets.kv.v2.read_secret_version(
                    path=secret_id, version=version, mount_point=self._mount, raise_on_deleted_version=True
                )
            )
        except bao_errors.InvalidPath:
            raise SecretNotFound(f"secret {secret_id!r} version {version} is missing, deleted or destroyed") from None
        data = (response.get("data") or {}).get("data") or {}
        try:
            return base64.b64decode(str(data["payload"]), validate=True)
        except (KeyError, binascii.Error, ValueError):
            raise SecretCorrupted(f"secret {secret_id!r} version {version} holds no broker payload") from None

    def enabled_versions(self, secret_id: str) -> list[int]:
        metadata = self._metadata(secret_id)
        if metadata is None:
            return []
        versions = metadata.get("versions") or {}
        return sorted(
            int(number)
            for number, info in versions.items()
            if not info.get("destroyed") and not info.get("deletion_time")
        )

    def destroy_version(self, secret_id: str, version: int) -> None:
        try:
            self._bao.call(
                lambda c: c.secrets.kv.v2.destroy_secret_versions(
                    path=secret_id, versions=[version], mount_point=self._mount
                )
            )
        except bao_errors.InvalidPath:
            return

    def delete(self, secret_id: str) -> None:
        try:
            self._bao.call(
                lambda c: c.secrets.kv.v2.delete_metadata_and_all_versions(path=secret_id, mount_point=self._mount)
            )
        except bao_errors.InvalidPath:
            return

    def stale_secret_ids(
        self, prefix: str, created_before: datetime, created_after: datetime | None = None
    ) -> list[str]:
        # One LIST of the mount, then one metadata read per candidate (KV v2 lists names only).
        try:
            listed = self._bao.call(lambda c: c.secrets.kv.v2.list_secrets(path="", mount_point=self._mount))
        except bao_errors.InvalidPath:
            return []
        names = [str(key) for key in listed["data"]["keys"] if str(key).startswith(prefix + "-")]
        stale = []
        for name in names:
            metadata = self._metadata(name)
            if metadata is not None and within(_created(metadata), created_before, created_after):
                stale.append(name)
        return sorted(stale)

    def labels(self, secret_id: str) -> dict[str, str]:
        metadata = self._metadata(secret_id)
        if metadata is None:
            return {}
        return {str(k): str(v) for k, v in (metadata.get("custom_metadata") or {}).items()}

    def check(self) -> None:
        # A metadata read of a name that is never written: 404 proves reachability, an unsealed server and a token
        # that may read under the mount (the policy the broker needs), without listing anything.
        self._metadata(self._probe)
