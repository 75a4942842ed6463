"""A webhook receiver over real HTTP: answers from a script, verifies each delivery with the `standardwebhooks`
package (an independent implementation of the spec) and dedupes by `webhook-id`, as a careful receiver does."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from standardwebhooks.webhooks import Webhook, WebhookVerificationError


@dataclass
class Received:
    headers: dict[str, str]
    body: bytes
    verified: bool
    answered: int

    @property
    def event(self) -> dict[str, Any]:
        return dict(json.loads(self.body))


@dataclass
class Receiver:
    url: str
    secret: str  # the receiver's whsec_… secret: what it verifies with
    script: list[tuple[int, dict[str, str]]] = field(default_factory=list)  # answers, in order; then `default`
    default: int = 200
    received: list[Received] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def answer(self, *answers: int | tuple[int, dict[str, str]]) -> None:
        with self.lock:
            self.script.extend(a if isinstance(a, tuple) else (a, {}) for a in answers)

    def accepted(self) -> dict[str, dict[str, Any]]:
        """What the receiver's dedupe keeps: the first verified, 2xx-answered delivery of each webhook-id."""
        seen: dict[str, dict[str, Any]] = {}
        for delivery in self.received:
            if delivery.verified and 200 <= delivery.answered < 300:
                seen.setdefault(delivery.headers["webhook-id"], delivery.event)
        return seen

    def ids(self) -> list[str]:
        return [d.headers["webhook-id"] for d in self.received]


@contextmanager
def running_receiver(secret: str, path: str = "/hooks") -> Iterator[Receiver]:
    holder: dict[str, Receiver] = {}

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_POST(self) -> None:
            receiver = holder["receiver"]
            body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
            headers = {k.lower(): v for k, v in self.headers.items()}
            try:
                Webhook(receiver.secret).verify(body, headers)
                verified = True
            except WebhookVerificationError:
                verified = False
            with receiver.lock:
                status, extra = receiver.script.pop(0) if receiver.script else (receiver.default, {})
                receiver.received.append(Received(headers, body, verified, status))
            self.send_response(status)
            for name, value in extra.items():
                self.send_header(name, value)
            self.send_header("Content-Length", "2")
            self.end_headers()
            self.wfile.write(b"ok")

        def log_message(self, format: str, *args: Any) -> None:
            pass

    class Server(ThreadingHTTPServer):
        daemon_threads = True
        # socketserver's default backlog is 5: two dispatchers' 16 connections at once on a busy machine overflowed
        # it (the kernel logged SYN flooding), and a connection that then timed out became a retry past the run.
        request_queue_size = 128

        def handle_error(self, request: Any, client_address: Any) -> None:
            pass  # a client closing its kept-alive connection is not a test failure

    server = Server(("127.0.0.1", 0), Handler)
    holder["receiver"] = receiver = Receiver(f"http://127.0.0.1:{server.server_address[1]}{path}", secret)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield receiver
    finally:
        server.shutdown()
        server.server_close()
