"""Count database round trips at the socket: a TCP proxy between a server under test and PostgreSQL (used by the
token hot path's tests and by the benchmark).

A round trip is a flight of bytes from the client that the server answers: the proxy counts, per connection, each
time client bytes arrive after server bytes (or first). A client that sends two messages without waiting in
between (pg8000's Describe, then Bind) may be counted twice if the server answers the first before the second
arrives, so the count can only err high.
"""

from __future__ import annotations

import selectors
import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from urllib.parse import urlsplit, urlunsplit


class CountingProxy:
    def __init__(self, upstream: tuple[str, int]) -> None:
        self.upstream = upstream
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port = self._listener.getsockname()[1]
        self._lock = threading.Lock()
        self._flights = 0
        self._stop = threading.Event()

    @property
    def flights(self) -> int:
        with self._lock:
            return self._flights

    def _count(self) -> None:
        with self._lock:
            self._flights += 1

    def _serve(self) -> None:
        self._listener.settimeout(0.2)
        while not self._stop.is_set():
            try:
                client, _ = self._listener.accept()
            except TimeoutError:
                continue
            server = socket.create_connection(self.upstream)
            for sock in (client, server):
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            threading.Thread(target=self._pipe, args=(client, server), daemon=True).start()

    def _pipe(self, client: socket.socket, server: socket.socket) -> None:
        selector = selectors.DefaultSelector()
        selector.register(client, selectors.EVENT_READ, server)
        selector.register(server, selectors.EVENT_READ, client)
        last_from_client = False
        try:
            while not self._stop.is_set():
                for key, _ in selector.select(timeout=0.2):
                    source: socket.socket = key.fileobj  # type: ignore[assignment]
                    data = source.recv(65536)
                    if not data:
                        return
                    from_client = source is client
                    if from_client and not last_from_client:
                        self._count()
                    last_from_client = from_client
                    key.data.sendall(data)
        except OSError:
            return
        finally:
            selector.close()
            client.close()
            server.close()

    @classmethod
    @contextmanager
    def running(cls, upstream: tuple[str, int]) -> Iterator[CountingProxy]:
        proxy = cls(upstream)
        thread = threading.Thread(target=proxy._serve, daemon=True)
        thread.start()
        try:
            yield proxy
        finally:
            proxy._stop.set()
            thread.join(timeout=5)
            proxy._listener.close()


def proxied_url(url: str, proxy: CountingProxy) -> str:
    """`url` (postgresql+pg8000://user@host:port/db) pointed at the proxy instead."""
    parts = urlsplit(url)
    credentials, _, _ = parts.netloc.rpartition("@")
    host = f"127.0.0.1:{proxy.port}"
    return urlunsplit(parts._replace(netloc=f"{credentials}@{host}" if credentials else host))


def upstream_of(url: str) -> tuple[str, int]:
    parts = urlsplit(url)
    return parts.hostname or "127.0.0.1", parts.port or 5432
