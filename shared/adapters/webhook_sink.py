"""Webhook delivery over HTTP: one signed POST per event, through the egress-checked session.

The session is the container's egress session (shared/adapters/egress.py): in production the endpoint's host is
resolved and every address checked on each request (no private, link-local or metadata address), and the
connection goes to the address that was checked. Redirects are not followed (a 3xx is a refusal: configure the
final URL); the answer's body is never read.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime

import requests

from shared.adapters.egress import EgressRefused
from shared.domain import webhooks
from shared.domain.delivery import SendResult, retry_after_seconds, verdict
from shared.domain.events import OutboxEvent, body

TIMEOUT = (3.05, 10.0)  # seconds to connect, then to the first byte of the answer
USER_AGENT = "integrations-broker-webhooks/1"


class WebhookSink:
    ordered = False

    def __init__(
        self, url: str, keys: Sequence[bytes], session: requests.Session, *,
        wall: Callable[[], float] = time.time, timeout: tuple[float, float] = TIMEOUT,
    ) -> None:  # fmt: skip
        self.destination = webhooks.destination(url)
        self._url = url
        self._keys = list(keys)
        self._session = session
        self._wall = wall  # the signature's timestamp is the real time of sending (receivers check it)
        self._timeout = timeout

    def deliver(self, events: Sequence[OutboxEvent]) -> list[SendResult]:
        return [self._send(event) for event in events]

    def _send(self, event: OutboxEvent) -> SendResult:
        payload = body(event)
        headers = webhooks.headers(self._keys, str(event.id), int(self._wall()), payload)
        headers["User-Agent"] = USER_AGENT
        started = time.monotonic()

        def failed(error: str) -> SendResult:
            return SendResult("retry", error=error, duration_ms=_ms(started))

        try:
            response = self._session.post(
                self._url, data=payload, headers=headers, timeout=self._timeout, allow_redirects=False, stream=True
            )
        except EgressRefused:
            return failed("egress_refused")
        except requests.Timeout:
            return failed("timeout")
        except requests.ConnectionError:
            return failed("connection_failed")
        except requests.RequestException as exc:
            return failed(f"request_failed:{type(exc).__name__}"[:64])
        with response:
            status = response.status_code
            retry_after = retry_after_seconds(
                response.headers.get("Retry-After"), datetime.fromtimestamp(self._wall(), UTC)
            )
        return SendResult(verdict(status), status, None, retry_after, _ms(started))


def _ms(started: float) -> int:
    return int((time.monotonic() - started) * 1000)
