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

from tests.support.lifetime import stop
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
        stop(proc)
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)  # whatever it left behind
        log.close()


@contextmanager
def serving_function(target: str, env: Mapping[str, str], *, port: int | None = None) -> Iterator[Served]:
    """One Cloud Run function served exactly as deployed: `broker function` (functions-framework's app and gunicorn
    server, with the graceful SIGTERM) over `functions/<target>.py`."""
    with serving(function_args(target), env, ready_path="/health", port=port) as base:
        yield base


def settings_free_environ() -> dict[str, str]:
    """This process's environment without any broker setting (nor Cloud Run's K_SERVICE): a child starts clean."""
    from shared.config import Settings

    names = {name.upper() for name in Settings.model_fields} | {"K_SERVICE", "CLOUD_RUN_JOB"}
    return {
        name: value
        for name, value in os.environ.items()
        if name.upper() not in names and not name.endswith(("_CLIENT_ID", "_CLIENT_SECRET"))
    }


def start_refused(args: list[str], env: Mapping[str, str], *, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    """Run `python -m <args>` and expect it to exit by itself (a refused start); fail if it serves instead.

    A process that opens its port is taken as started: the test then fails with what its first request answers.
    """
    port = free_port()
    full_env = {**settings_free_environ(), **env, "PORT": str(port)}
    out, err = tempfile.TemporaryFile(), tempfile.TemporaryFile()  # noqa: SIM115 - closed below
    proc = subprocess.Popen([sys.executable, "-m", *args], env=full_env, stdout=out, stderr=err)
    try:
        deadline = time.monotonic() + timeout
        while proc.poll() is None:
            if time.monotonic() > deadline:
                raise AssertionError(f"neither exited nor served within {timeout} s: {args}")
            try:
                answer = requests.get(f"http://127.0.0.1:{port}/", timeout=20)
            except (requests.ConnectionError, requests.Timeout):
                time.sleep(0.1)
                continue
            raise AssertionError(f"it started and serves: {answer.status_code} {answer.text[:500]}")
        out.seek(0)
        err.seek(0)
        return subprocess.CompletedProcess(args, proc.returncode, out.read().decode(), err.read().decode())
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=10)
        out.close()
        err.close()


def function_args(target: str) -> list[str]:
    """The image's command for one function: `broker function --target <target> --source functions/<target>.py`."""
    return ["shared.cli", "function", "--target", target, "--source", f"functions/{target}.py", "--host", "127.0.0.1"]


def framework_args(target: str) -> list[str]:
    """The stock functions-framework command for one function."""
    return ["functions_framework", "--target", target, "--source", f"functions/{target}.py", "--host", "127.0.0.1"]
