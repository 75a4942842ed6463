"""Start a server process for a test, wait until it answers, and always stop it."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import IO

import requests

from tests.support.postgres import free_port


class Served(str):
    """The server's base URL (a str), plus what the process printed so far."""

    log_file: IO[bytes]
    process: subprocess.Popen[bytes]

    def output(self) -> str:
        self.log_file.flush()
        self.log_file.seek(0)
        return self.log_file.read().decode(errors="replace")


@contextmanager
def serving(
    args: list[str], env: Mapping[str, str], *, ready_path: str = "/health", port: int | None = None
) -> Iterator[Served]:
    """Run `python -m <args>` with PORT set; yield its base URL once it accepts HTTP on `ready_path`."""
    port = port or free_port()
    full_env = {**os.environ, **env, "PORT": str(port)}
    log = tempfile.TemporaryFile()  # noqa: SIM115 - closed below; a pipe could fill up and block the server
    # A session of its own: a test can kill the whole process group (a gunicorn master and its worker), as Cloud
    # Run kills a container.
    proc = subprocess.Popen(
        [sys.executable, "-m", *args], env=full_env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
    )
    base = Served(f"http://127.0.0.1:{port}")
    base.log_file = log
    base.process = proc
    try:
        deadline = time.monotonic() + 60
        while True:
            if proc.poll() is not None:
                raise RuntimeError(f"server exited early: {base.output()[-3000:]}")
            try:
                # The first request builds the instance (imports, settings, a cold .pyc cache on a fresh clone):
                # it may take several seconds, which is not failure.
                requests.get(base + ready_path, timeout=20)
                break
            except (requests.ConnectionError, requests.Timeout):
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.05)
        yield base
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)  # whatever it left behind
        log.close()


@contextmanager
def serving_function(target: str, env: Mapping[str, str], *, port: int | None = None) -> Iterator[Served]:
    """One Cloud Run function served exactly as deployed: `broker function` (functions-framework's app and gunicorn
    server, with the graceful SIGTERM) over `functions/<target>.py`."""
    args = ["shared.cli", "function", "--target", target, "--source", f"functions/{target}.py", "--host", "127.0.0.1"]
    with serving(args, env, ready_path="/", port=port) as base:
        yield base
