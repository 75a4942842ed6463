"""A throw-away MariaDB server for the MySQL tier of the test session, and cheap per-test databases.

MariaDB has no `CREATE DATABASE … TEMPLATE`: a database is migrated once, and each test's database replays that
one's `SHOW CREATE TABLE` statements (and its Alembic revision), about ten statements instead of the migrations'
forty. `mariadbd` refuses to run as root, so as root the server runs as the `mysql` user (from Debian's package).
The tests log in over TCP on 127.0.0.1 as a user with a password, as the broker does in production. With
TEST_MYSQL_URL set (`mysql+pymysql://user:pass@host:port/`, a user allowed to create databases) that server is
used instead.
"""

from __future__ import annotations

import itertools
import os
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import pymysql
import pytest
from sqlalchemy.engine import make_url

from tests.support.lifetime import stop
from tests.support.postgres import free_port
from tests.support.prefetch import Prefetched

USER, PASSWORD = "broker", "broker-test-password"
# For a dialect-sensitive test that takes `database_url` (or the integration tier's `app`/`env`): run it on
# PostgreSQL and on MySQL (MariaDB).
ALSO_ON_MYSQL = pytest.mark.parametrize("database", ["postgresql", "mysql"], indirect=True)


def find_mariadbd() -> str:
    for candidate in (shutil.which("mariadbd"), "/usr/sbin/mariadbd", shutil.which("mysqld"), "/usr/sbin/mysqld"):
        if candidate and os.access(candidate, os.X_OK):
            return candidate
    raise RuntimeError("MariaDB server binaries not found: run tests/bin/ensure-mariadb (make test does)")


@dataclass
class MysqlServer:
    host: str
    port: int
    user: str
    password: str

    def url(self, database: str) -> str:
        return f"mysql+pymysql://{self.user}:{self.password}@{self.host}:{self.port}/{database}"

    def admin(self) -> Any:
        return pymysql.connect(host=self.host, port=self.port, user=self.user, password=self.password, autocommit=True)


@contextmanager
def running_mariadb() -> Iterator[MysqlServer]:
    external = os.environ.get("TEST_MYSQL_URL")
    if external:
        url = make_url(external)
        yield MysqlServer(url.host or "127.0.0.1", url.port or 3306, url.username or "root", url.password or "")
        return
    mariadbd = find_mariadbd()
    root = tempfile.mkdtemp(prefix="broker-mariadb-")
    data, sock, tmp = os.path.join(root, "data"), os.path.join(root, "mysqld.sock"), os.path.join(root, "tmp")
    os.makedirs(tmp)
    as_root = os.geteuid() == 0
    run_as = ["--user=mysql"] if as_root else []
    if as_root:
        shutil.chown(root, "mysql")
        shutil.chown(tmp, "mysql")
    # A temporary directory of its own: bootstrap servers sharing /tmp removed each other's temporary tables
    # (`Unknown table 'mysql.tmp_user_sys'`) in about 1 of 14 installs run three at a time.
    install = ["mariadb-install-db", "--no-defaults", f"--datadir={data}", "--auth-root-authentication-method=normal",
               "--skip-test-db", "--skip-name-resolve", f"--tmpdir={tmp}", *run_as]  # fmt: skip
    installed = subprocess.run(install, capture_output=True, text=True, check=False)
    if installed.returncode != 0:
        raise RuntimeError(f"mariadb-install-db failed ({installed.returncode}):\n{installed.stdout[-3000:]}")
    port = free_port()
    settings = ["--skip-log-bin", "--innodb-flush-log-at-trx-commit=0", "--skip-name-resolve",
                "--innodb-buffer-pool-size=64M", "--performance-schema=OFF", "--max-connections=300"]  # fmt: skip
    log = os.path.join(root, "server.log")
    proc = subprocess.Popen(
        [
            mariadbd,
            "--no-defaults",
            f"--datadir={data}",
            f"--socket={sock}",
            f"--port={port}",
            "--bind-address=127.0.0.1",
            f"--log-error={log}",
            f"--tmpdir={tmp}",
            *settings,
            *run_as,
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        _wait_ready(sock, proc, log)
        setup = pymysql.connect(unix_socket=sock, user="root", autocommit=True)
        with setup.cursor() as cur:
            cur.execute(f"CREATE USER '{USER}'@'127.0.0.1' IDENTIFIED BY '{PASSWORD}'")
            cur.execute(f"GRANT ALL PRIVILEGES ON *.* TO '{USER}'@'127.0.0.1' WITH GRANT OPTION")
        setup.close()
        yield MysqlServer("127.0.0.1", port, USER, PASSWORD)
    finally:
        stop(proc, timeout=30)
        shutil.rmtree(root, ignore_errors=True)


def _wait_ready(sock: str, proc: subprocess.Popen[bytes], log: str) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            with open(log) as text:
                raise RuntimeError(f"mariadbd exited early:\n{text.read()[-2000:]}")
        try:
            pymysql.connect(unix_socket=sock, user="root").close()
            return
        except pymysql.err.Error:  # not accepting connections yet
            time.sleep(0.1)
    raise RuntimeError("mariadbd did not accept connections within 60 s")


def _quote(name: str) -> str:
    return "`" + name.replace("`", "``") + "`"


class MysqlDatabaseFactory:
    """Databases with the template's tables (replayed DDL), dropped afterwards; made one ahead and dropped behind in
    a background thread, as DatabaseFactory does (tests/support/prefetch.py); `close()` at the end."""

    _counter = itertools.count()

    def __init__(self, server: MysqlServer, template: str, tables: list[str]) -> None:
        self.server = server
        self.template = template
        self.prefix = f"t{os.getpid()}_"
        self._ddl: list[str] = []
        self._prefetched: Prefetched | None = None
        self._revision = ""
        conn = server.admin()
        with conn.cursor() as cur:
            for table in tables:  # in dependency order: a foreign key's target first
                cur.execute(f"SHOW CREATE TABLE {_quote(template)}.{_quote(table)}")
                self._ddl.append(cur.fetchone()[1])
            cur.execute(f"SELECT version_num FROM {_quote(template)}.alembic_version")
            self._revision = cur.fetchone()[0]
        conn.close()

    def create(self) -> str:
        if self._prefetched is None:
            self._prefetched = Prefetched(self._replay, self._drop)
        return self._prefetched.take()

    def close(self) -> None:
        if self._prefetched is not None:
            prefetched, self._prefetched = self._prefetched, None
            prefetched.close()

    def _replay(self) -> str:
        name = f"{self.prefix}{next(self._counter)}"
        conn = self.server.admin()
        try:
            with conn.cursor() as cur:
                cur.execute(f"CREATE DATABASE {_quote(name)} CHARACTER SET utf8mb4")
                cur.execute(f"USE {_quote(name)}")
                for ddl in self._ddl:
                    cur.execute(ddl)
                cur.execute("INSERT INTO alembic_version (version_num) VALUES (%s)", (self._revision,))
        finally:
            conn.close()
        return name

    def empty(self) -> str:
        name = f"{self.prefix}{next(self._counter)}"
        conn = self.server.admin()
        try:
            with conn.cursor() as cur:
                cur.execute(f"CREATE DATABASE {_quote(name)} CHARACTER SET utf8mb4")
        finally:
            conn.close()
        return name

    def drop(self, name: str) -> None:
        if self._prefetched is None:
            self._drop(name)
        else:
            self._prefetched.give_back(name)

    def _drop(self, name: str) -> None:
        conn = self.server.admin()
        try:
            with conn.cursor() as cur:
                cur.execute(f"DROP DATABASE IF EXISTS {_quote(name)}")
        finally:
            conn.close()
