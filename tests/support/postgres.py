"""A throw-away PostgreSQL cluster for the test session, and cheap per-test databases cloned from a template.

`initdb` and `postgres` refuse to run as root, so as root the cluster runs as the `postgres` user. With
TEST_DATABASE_URL set (e.g. a PostgreSQL service in Cloud Build) that server is used instead.
"""

from __future__ import annotations

import glob
import itertools
import os
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import pg8000.native
from sqlalchemy.engine import make_url

from tests.support.lifetime import stop
from tests.support.prefetch import Prefetched


def find_bindir() -> str:
    explicit = os.environ.get("PG_BINDIR")
    candidates = [explicit] if explicit else []
    if shutil.which("pg_config"):
        out = subprocess.run(["pg_config", "--bindir"], capture_output=True, text=True, check=False).stdout
        candidates.append(out.strip())
    candidates += sorted(glob.glob("/usr/lib/postgresql/*/bin"), reverse=True)
    initdb = shutil.which("initdb")
    if initdb:
        candidates.append(os.path.dirname(initdb))
    for candidate in candidates:
        if candidate and os.access(os.path.join(candidate, "initdb"), os.X_OK):
            return candidate
    raise RuntimeError("PostgreSQL server binaries not found: run tests/bin/ensure-postgres (make test does)")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class Server:
    host: str
    port: int
    user: str
    password: str | None

    def url(self, database: str) -> str:
        auth = self.user + (f":{self.password}" if self.password else "")
        return f"postgresql+pg8000://{auth}@{self.host}:{self.port}/{database}"

    def admin(self) -> pg8000.native.Connection:
        return pg8000.native.Connection(
            self.user, host=self.host, port=self.port, password=self.password, database="postgres"
        )


def _as_postgres(cmd: list[str]) -> list[str]:
    return ["runuser", "-u", "postgres", "--", *cmd] if os.geteuid() == 0 else cmd


@contextmanager
def running_cluster() -> Iterator[Server]:
    external = os.environ.get("TEST_DATABASE_URL")
    if external:
        url = make_url(external)
        yield Server(url.host or "127.0.0.1", url.port or 5432, url.username or "postgres", url.password)
        return
    bindir = find_bindir()
    root = tempfile.mkdtemp(prefix="broker-pg-")
    data, sockets = os.path.join(root, "data"), os.path.join(root, "run")
    os.makedirs(sockets)
    if os.geteuid() == 0:
        shutil.chown(root, "postgres")
        shutil.chown(sockets, "postgres")
    initdb = [f"{bindir}/initdb", "-D", data, "-U", "postgres", "-A", "trust", "-E", "UTF8", "--no-sync"]
    subprocess.run(_as_postgres([*initdb, "--locale=C"]), check=True, capture_output=True)
    port = free_port()
    settings = ["-c", "fsync=off", "-c", "synchronous_commit=off", "-c", "full_page_writes=off"]
    proc = subprocess.Popen(
        _as_postgres([f"{bindir}/postgres", "-D", data, "-p", str(port), "-k", sockets, "-h", "127.0.0.1", *settings]),
        stdout=subprocess.DEVNULL,
        stderr=open(os.path.join(root, "server.log"), "wb"),  # noqa: SIM115 - lives as long as the server
    )
    server = Server("127.0.0.1", port, "postgres", None)
    try:
        _wait_ready(server, proc, root)
        yield server
    finally:
        stop(proc, timeout=20)
        shutil.rmtree(root, ignore_errors=True)


def _wait_ready(server: Server, proc: subprocess.Popen[bytes], root: str) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            with open(os.path.join(root, "server.log")) as log:
                raise RuntimeError(f"postgres exited early:\n{log.read()[-2000:]}")
        try:
            server.admin().close()
            return
        except Exception:  # noqa: BLE001 - not accepting connections yet
            time.sleep(0.05)
    raise RuntimeError("postgres did not accept connections within 30 s")


class DatabaseFactory:
    """Creates databases cloned from one migrated template and drops them afterwards: the next one is cloned, and a
    used one dropped, in a background thread while a test runs (tests/support/prefetch.py); `close()` at the end."""

    _counter = itertools.count()

    def __init__(self, server: Server, template: str) -> None:
        self.server = server
        self.template = template
        self.prefix = f"t{os.getpid()}_"
        self._prefetched: Prefetched | None = None

    def create(self, template: str | None = None) -> str:
        if template is not None:
            return self._clone(template)
        if self._prefetched is None:
            self._prefetched = Prefetched(lambda: self._clone(self.template), self._drop)
        return self._prefetched.take()

    def drop(self, name: str) -> None:
        if self._prefetched is None:
            self._drop(name)
        else:
            self._prefetched.give_back(name)

    def close(self) -> None:
        if self._prefetched is not None:
            prefetched, self._prefetched = self._prefetched, None
            prefetched.close()

    def _clone(self, template: str) -> str:
        name = f"{self.prefix}{next(self._counter)}"
        conn = self.server.admin()
        try:
            source = pg8000.native.identifier(template)
            conn.run(f"CREATE DATABASE {pg8000.native.identifier(name)} TEMPLATE {source}")
        finally:
            conn.close()
        return name

    def _drop(self, name: str) -> None:
        conn = self.server.admin()
        try:
            conn.run(f"DROP DATABASE IF EXISTS {pg8000.native.identifier(name)} WITH (FORCE)")
        finally:
            conn.close()
