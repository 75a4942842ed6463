"""The real Pub/Sub emulator (gcloud's cloud-pubsub-emulator, a Java server), started for the test session."""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from tests.support.lifetime import stop
from tests.support.postgres import free_port

DEFAULT = Path("/usr/lib/google-cloud-sdk/platform/pubsub-emulator/bin/cloud-pubsub-emulator")


class EmulatorMissing(RuntimeError):
    pass


def find_emulator() -> Path:
    """The emulator's start script (PUBSUB_EMULATOR_BIN, the Debian package's place, or gcloud's SDK root)."""
    candidates = [Path(p) for p in [os.environ.get("PUBSUB_EMULATOR_BIN", "")] if p] + [DEFAULT]
    gcloud = shutil.which("gcloud")
    if gcloud:
        root = Path(gcloud).resolve().parent.parent
        candidates.append(root / "platform/pubsub-emulator/bin/cloud-pubsub-emulator")
    for candidate in candidates:
        if candidate.is_file() and os.access(candidate, os.X_OK):
            if shutil.which("java") is None:
                raise EmulatorMissing("the Pub/Sub emulator needs Java: run `make pubsub-emulator`")
            return candidate
    raise EmulatorMissing(
        "the Pub/Sub emulator (google-cloud-cli-pubsub-emulator) is not installed: run `make pubsub-emulator`"
    )


@contextmanager
def running_emulator() -> Iterator[str]:
    """Yield the emulator's `host:port` (what PUBSUB_EMULATOR_HOST takes) once it listens."""
    script = find_emulator()
    port = free_port()
    data = tempfile.mkdtemp(prefix="pubsub-emulator-")
    log = tempfile.TemporaryFile()  # noqa: SIM115 - closed below
    process = subprocess.Popen(
        [str(script), "--host=127.0.0.1", f"--port={port}"], stdout=log, stderr=subprocess.STDOUT, cwd=data,
        start_new_session=True,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 90
        while True:
            log.seek(0)
            output = log.read().decode(errors="replace")
            if "Server started" in output:
                break
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"the Pub/Sub emulator did not start: {output[-2000:]}")
            time.sleep(0.2)
        yield f"127.0.0.1:{port}"
    finally:
        stop(process, timeout=15)
        log.close()
        shutil.rmtree(data, ignore_errors=True)
