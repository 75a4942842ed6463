"""Shutting down without losing work: Cloud Run sends SIGTERM and kills the instance about 10 s later.

On SIGTERM the process starts draining: the refresh job stops claiming, a refresh that has not called its
provider yet gives its lease back, and one whose provider already answered writes that answer (the rotated token
lands in its row) and leaves the move into the secret store to the next run. In-flight requests then finish and
the server exits. `stopping()` is what the services ask; `drain_on_sigterm()` installs the handler (main thread
only), chaining to the one already there (gunicorn's, which stops accepting and finishes in-flight requests).
"""

from __future__ import annotations

import logging
import signal
import threading
from types import FrameType
from typing import Any

log = logging.getLogger("broker.lifecycle")
_draining = threading.Event()


def stopping() -> bool:
    return _draining.is_set()


def start_draining() -> None:
    if not _draining.is_set():
        log.warning("SIGTERM: draining (no new refresh starts; answered ones are written)")
    _draining.set()


def drain_on_sigterm() -> None:
    """Set the draining flag on SIGTERM, then run the handler that was installed before (if any)."""
    previous = signal.getsignal(signal.SIGTERM)

    def handler(signum: int, frame: FrameType | None) -> None:
        start_draining()
        if callable(previous):
            previous(signum, frame)
        elif previous == signal.SIG_DFL:
            raise SystemExit(128 + signum)

    signal.signal(signal.SIGTERM, handler)


def gunicorn_post_worker_init(_worker: Any) -> None:
    """gunicorn's `post_worker_init` hook: runs in the worker's main thread after gunicorn set its own handlers."""
    drain_on_sigterm()
