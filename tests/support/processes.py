"""Start a server process for a test, wait until it answers, and always stop it."""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager

import requests

from tests.support.postgres import free_port


@contextmanager
def serving(args: list[str], env: Mapping[str, str], *, ready_path: str = "/health") -> Iterator[str]:
    """Run `python -m <args>` with PORT set to a free port; yield its base URL once `ready_path` answers."""
    port = free_port()
    full_env = {**os.environ, **env, "PORT": str(port)}
    log = tempfile.TemporaryFile()  # noqa: SIM115 - closed below; a pipe could fill up and block the server
    proc = subprocess.Popen([sys.executable, "-m", *args], env=full_env, stdout=log, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            if proc.poll() is not None:
                log.seek(0)
                raise RuntimeError(f"server exited early: {log.read().decode()[-3000:]}")
            try:
                requests.get(base + ready_path, timeout=1)
                break
            except requests.ConnectionError:
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
        log.close()
