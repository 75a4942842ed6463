"""One log line per Secret Manager call, with its method and outcome: the log-based metrics count calls and quota
refusals (Secret Manager allows 600 writes a minute per project) from these lines, without an agent."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any

from google.api_core import exceptions as gexc

from shared.logs import fields

log = logging.getLogger("broker.secret_manager")


class LoggedClient:
    """Wraps a SecretManagerServiceClient: every method call is logged (method, status, duration), nothing else
    changes. Names and payloads are never logged."""

    def __init__(self, client: Any) -> None:
        self._client = client

    def __getattr__(self, name: str) -> Any:
        target = getattr(self._client, name)
        if name.startswith("_") or not callable(target):
            return target
        return _logged(name, target)


def _logged(method: str, call: Callable[..., Any]) -> Callable[..., Any]:
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        started = time.monotonic()
        status = "OK"
        try:
            return call(*args, **kwargs)
        except gexc.GoogleAPICallError as exc:
            status = exc.grpc_status_code.name if exc.grpc_status_code is not None else f"HTTP_{exc.code}"
            raise
        except Exception as exc:
            status = type(exc).__name__
            raise
        finally:
            level = logging.WARNING if status == "RESOURCE_EXHAUSTED" else logging.INFO
            millis = round((time.monotonic() - started) * 1000, 1)
            if log.isEnabledFor(level):  # the structured fields cost more than the call's own bookkeeping
                log.log(
                    level, "secret manager %s: %s (%s ms)", method, status, millis,
                    extra=fields(event="secret_manager_call", method=method, status=status, duration_ms=millis),
                )  # fmt: skip

    return wrapper
