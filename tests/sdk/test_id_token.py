"""`id_token_audience`: google-auth's real flow for a service-account key (GOOGLE_APPLICATION_CREDENTIALS), its token
endpoint served on 127.0.0.1, and the ID token checked by the broker's own verifier (shared.adapters.internal_auth).
On Cloud Run the same google-auth call reads the metadata server instead."""

from __future__ import annotations

import asyncio
import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

import httpx
import jwt
import pytest
from broker_client import AsyncBrokerClient, BrokerClient
from cryptography.hazmat.primitives import serialization

from shared.adapters.internal_auth import GoogleIdTokens
from tests.support.id_tokens import TestIssuer, new_key, running_issuer

SERVICE_ACCOUNT = "backend@project.iam.gserviceaccount.com"
AUDIENCE = "https://broker-token-fetch.example.run.app"
GOOGLE_TOKEN_URI = "https://oauth2.googleapis.com/token"  # the assertion's audience, whatever token_uri says
TOKEN: dict[str, Any] = {
    "integration_id": "i-1",
    "access_token": "at",
    "token_type": "Bearer",
    "expires_at": None,
    "scopes": [],
}


class GoogleTokenEndpoint:
    """Google's OAuth token endpoint for the JWT-bearer grant: checks the service account's signed assertion and
    answers an ID token for its `target_audience`, signed by the test issuer as `https://accounts.google.com`."""

    def __init__(self, issuer: TestIssuer, key_file: Path) -> None:
        self.issuer, self.key = issuer, new_key()
        self.requests = 0
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/token"
        pem = self.key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        ).decode()
        info = {"type": "service_account", "client_email": SERVICE_ACCOUNT, "private_key": pem,
                "private_key_id": "sa-key-1", "token_uri": self.url, "project_id": "project"}  # fmt: skip
        key_file.write_text(json.dumps(info), encoding="utf-8")

    def id_token_for(self, form: dict[str, list[str]]) -> dict[str, Any]:
        assertion = form["assertion"][0]
        claims = jwt.decode(assertion, self.key.public_key(), algorithms=["RS256"], audience=GOOGLE_TOKEN_URI)
        assert form["grant_type"] == ["urn:ietf:params:oauth:grant-type:jwt-bearer"]
        assert claims["iss"] == SERVICE_ACCOUNT
        token = self.issuer.mint(
            SERVICE_ACCOUNT, audience=claims["target_audience"], issuer="https://accounts.google.com",
            email=SERVICE_ACCOUNT, email_verified=True,
        )  # fmt: skip
        return {"id_token": token}

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        endpoint = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                endpoint.requests += 1
                form = parse_qs(self.rfile.read(int(self.headers["Content-Length"])).decode())
                raw = json.dumps(endpoint.id_token_for(form)).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(raw)))
                self.end_headers()
                self.wfile.write(raw)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        return Handler


@pytest.fixture
def google(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[GoogleTokenEndpoint, TestIssuer]]:
    with running_issuer() as issuer:
        endpoint = GoogleTokenEndpoint(issuer, tmp_path / "key.json")
        monkeypatch.setenv("GOOGLE_APPLICATION_CREDENTIALS", str(tmp_path / "key.json"))
        thread = threading.Thread(target=endpoint.server.serve_forever, daemon=True)
        thread.start()
        try:
            yield endpoint, issuer
        finally:
            endpoint.server.shutdown()
            endpoint.server.server_close()


def recording(seen: list[httpx.Request]) -> httpx.MockTransport:
    def answer(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, json=TOKEN)

    return httpx.MockTransport(answer)


def bearer(value: str) -> str:
    assert value.startswith("Bearer ")
    return value.removeprefix("Bearer ")


def test_an_id_token_alone_goes_in_authorization_and_the_broker_accepts_it(google) -> None:
    endpoint, issuer = google
    seen: list[httpx.Request] = []
    http = httpx.Client(transport=recording(seen))
    with BrokerClient("http://broker.test", id_token_audience=AUDIENCE, http_client=http) as broker:
        broker.token("i-1", force_refresh=True)
        broker.token("i-1", force_refresh=True)
    assert len(seen) == 2
    assert endpoint.requests == 1, "one ID token, reused until it nears its expiry"
    token = bearer(seen[0].headers["Authorization"])
    assert GoogleIdTokens(jwks_url=issuer.jwks_url).email(token, AUDIENCE, [SERVICE_ACCOUNT]) == SERVICE_ACCOUNT
    assert "X-Serverless-Authorization" not in seen[0].headers


def test_with_an_api_key_the_id_token_passes_cloud_runs_check(google) -> None:
    _endpoint, issuer = google
    seen: list[httpx.Request] = []

    async def main() -> None:
        http = httpx.AsyncClient(transport=recording(seen))
        async with AsyncBrokerClient("http://broker.test", api_key="k" * 32, id_token_audience=AUDIENCE,
                                     http_client=http) as broker:  # fmt: skip
            await broker.token("i-1")

    asyncio.run(main())
    assert seen[0].headers["Authorization"] == "Bearer " + "k" * 32
    token = bearer(seen[0].headers["X-Serverless-Authorization"])
    assert GoogleIdTokens(jwks_url=issuer.jwks_url).email(token, AUDIENCE, [SERVICE_ACCOUNT]) == SERVICE_ACCOUNT
