"""`broker migrate --connect-timeout`: on Cloud Run, Direct VPC egress may carry the migration job's first connection
only after a minute; the job waits for the database (bounded) instead of failing at once. The late database here is
the real PostgreSQL server behind a TCP forwarder that starts listening a few seconds after the job."""

from __future__ import annotations

import os
import socket
import socketserver
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from urllib.parse import urlsplit, urlunsplit

import pytest

from tests.support.postgres import free_port

LATE = 2.5  # seconds before the database answers


@contextmanager
def forwarding(listen_port: int, target: tuple[str, int]) -> Iterator[None]:
    """Accept on 127.0.0.1:listen_port and relay each connection to `target` (a socket pair per direction)."""

    class Relay(socketserver.BaseRequestHandler):
        def handle(self) -> None:
            with socket.create_connection(target) as upstream:
                pump = threading.Thread(target=_copy, args=(upstream, self.request), daemon=True)
                pump.start()
                _copy(self.request, upstream)
                pump.join(timeout=5)

    socketserver.ThreadingTCPServer.allow_reuse_address = True
    with socketserver.ThreadingTCPServer(("127.0.0.1", listen_port), Relay) as server:
        server.daemon_threads = True
        thread = threading.Thread(target=server.serve_forever, daemon=True)
        thread.start()
        try:
            yield
        finally:
            server.shutdown()


def _copy(source: socket.socket, sink: socket.socket) -> None:
    try:
        while chunk := source.recv(65536):
            sink.sendall(chunk)
    except OSError:
        pass
    finally:
        for sock in (sink, source):
            with suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)


def migrate(url: str, tmp_path: object, timeout: int) -> subprocess.Popen[str]:
    env = {"PATH": os.environ.get("PATH", ""), "DATABASE_URL": url, "LOCAL_DATA_DIR": str(tmp_path)}
    return subprocess.Popen(
        [sys.executable, "-m", "shared.cli", "migrate", "--connect-timeout", str(timeout)],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip


def on_port(url: str, port: int) -> str:
    parts = urlsplit(url)
    auth = parts.netloc.rsplit("@", 1)[0]
    return urlunsplit(parts._replace(netloc=f"{auth}@127.0.0.1:{port}"))


@pytest.mark.postgres
def test_migrate_waits_for_a_database_that_answers_late(pg_url, pg_server, tmp_path):
    port = free_port()
    started = time.monotonic()
    job = migrate(on_port(pg_url, port), tmp_path, timeout=60)
    seen = _until_retrying(job)  # the job found no database and is waiting (however long its start-up took)
    time.sleep(LATE)
    assert job.poll() is None, job.communicate()
    with forwarding(port, (pg_server.host, pg_server.port)):
        out, err = job.communicate(timeout=90)
    assert job.returncode == 0, seen + err
    assert "database at revision" in out
    assert time.monotonic() - started >= LATE


def _until_retrying(job: subprocess.Popen[str]) -> str:
    """The job's stderr up to its first "not reachable yet" line (a wait on the job itself, not on a clock)."""
    assert job.stderr is not None
    seen = ""
    for line in job.stderr:
        seen += line
        if "not reachable yet" in line:
            return seen
    raise AssertionError(f"the job ended without waiting for the database: {seen}")


def test_migrate_gives_up_after_its_connect_timeout_with_a_clear_message(tmp_path):
    started = time.monotonic()
    job = migrate(f"postgresql+pg8000://u:p@127.0.0.1:{free_port()}/broker", tmp_path, timeout=3)
    out, err = job.communicate(timeout=60)
    assert job.returncode == 1, (out, err)
    assert "the database did not answer within 3 s" in err
    assert "Traceback" not in err
    assert 3 <= time.monotonic() - started < 30
