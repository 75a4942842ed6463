"""A test OIDC issuer for callers: an RSA key made in the test, its JWKS and discovery served over HTTP on
127.0.0.1, and ID tokens signed with it.

    with running_issuer() as issuer:
        token = issuer.mint("user-1")                 # iss, aud, iat, exp, sub: a valid ID token
        issuer.mint("user-1", exp_in=-60)             # expired
        issuer.rotate()                               # a new key published (old one dropped)
        issuer.jwks_requests                          # how often the JWKS was fetched
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import jwt
from cryptography.hazmat.primitives.asymmetric import rsa

AUDIENCE = "broker-frontend"


def new_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


class TestIssuer:
    __test__ = False  # not a test class for pytest

    def __init__(self, url: str) -> None:
        self.url = url
        self.key = new_key()
        self.kid = "key-1"
        self.jwks_requests = 0
        self.discovery_requests = 0
        self.discovered_jwks_uri: str | None = None  # what discovery names instead of its own /jwks
        self.published: list[tuple[str, rsa.RSAPrivateKey]] = [(self.kid, self.key)]

    @property
    def jwks_url(self) -> str:
        return f"{self.url}/jwks"

    def rotate(self) -> None:
        self.kid = f"key-{len(self.published) + 1}"
        self.key = new_key()
        self.published = [(self.kid, self.key)]

    def jwks(self) -> dict[str, Any]:
        keys = []
        for kid, key in self.published:
            jwk = json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(key.public_key()))
            keys.append({**jwk, "kid": kid, "use": "sig", "alg": "RS256"})
        return {"keys": keys}

    def mint(
        self,
        subject: str,
        *,
        exp_in: int = 600,
        audience: str = AUDIENCE,
        issuer: str | None = None,
        key: rsa.RSAPrivateKey | None = None,
        kid: str | None = None,
        **claims: Any,
    ) -> str:
        now = int(time.time())
        payload = {"iss": issuer or self.url, "aud": audience, "sub": subject, "iat": now, "exp": now + exp_in}
        payload.update(claims)
        headers = {"kid": kid or self.kid}
        return jwt.encode(payload, key or self.key, algorithm="RS256", headers=headers)


@contextmanager
def running_issuer() -> Iterator[TestIssuer]:
    holder: dict[str, TestIssuer] = {}

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            issuer = holder["issuer"]
            if self.path == "/jwks":
                issuer.jwks_requests += 1
                body: dict[str, Any] = issuer.jwks()
            elif self.path == "/.well-known/openid-configuration":
                issuer.discovery_requests += 1
                body = {"issuer": issuer.url, "jwks_uri": issuer.discovered_jwks_uri or issuer.jwks_url}
            else:
                self.send_error(404)
                return
            raw = json.dumps(body).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(raw)))
            self.end_headers()
            self.wfile.write(raw)

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    holder["issuer"] = TestIssuer(f"http://127.0.0.1:{server.server_address[1]}")
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield holder["issuer"]
    finally:
        server.shutdown()
        server.server_close()
