"""Egress in production, over real sockets: provider, discovery and JWKS calls connect only to addresses the
rules accept, checked on the resolved address at connect time; discovery cannot move endpoints to other hosts.

Names under `.test` never resolve through the system: a request that reaches a server through one proves the
connection used the address the adapter's resolver returned and checked (no second lookup to rebind).
"""

from __future__ import annotations

import base64
import datetime
import ipaddress
import json
import ssl
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import jwt
import pytest
import requests
import urllib3.util.connection
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from shared.adapters.caller_auth import OidcAuthenticator
from shared.adapters.egress import EgressRefused, egress_session
from shared.adapters.http_oauth import HttpTokenEndpoint
from shared.adapters.jwks import SessionJwksClient
from shared.adapters.oidc import OidcProviders
from shared.bootstrap import Container
from shared.config import load_settings
from shared.domain.egress import EgressPolicy
from shared.domain.refresh import REFUSALS_BEFORE_PERMANENT, classify_failure
from shared.errors import DependencyUnavailable, ProviderError
from shared.providers.catalog import Provider
from tests.support.id_tokens import AUDIENCE, running_issuer

KEY = base64.b64encode(b"e" * 32).decode()


class JsonServer:
    """Answers GET with the JSON document registered for the path; records each request's Host and SNI name."""

    def __init__(self, port: int, scheme: str) -> None:
        self.port, self.scheme = port, scheme
        self.documents: dict[str, dict[str, Any]] = {"/": {"ok": True}}
        self.hosts: list[str] = []
        self.sni: list[str | None] = []

    @property
    def url(self) -> str:
        return f"{self.scheme}://127.0.0.1:{self.port}"


@contextmanager
def json_server(tls: ssl.SSLContext | None = None) -> Iterator[JsonServer]:
    holder: dict[str, JsonServer] = {}

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            served = holder["server"]
            served.hosts.append(self.headers.get("Host", ""))
            document = served.documents.get(self.path)
            raw = json.dumps(document).encode()
            self.send_response(200 if document is not None else 404)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(raw)))
            self.end_headers()
            self.wfile.write(raw)

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    holder["server"] = served = JsonServer(server.server_address[1], "https" if tls else "http")
    if tls is not None:
        tls.sni_callback = lambda _sock, name, _ctx: served.sni.append(name)
        server.socket = tls.wrap_socket(server.socket, server_side=True)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield served
    finally:
        server.shutdown()
        server.server_close()


class Resolver:
    """The adapter's resolver port: answers from a table (each call pops the next answer when several are queued)."""

    def __init__(self, answers: dict[str, list[Sequence[str]]]) -> None:
        self.answers = answers
        self.calls: list[tuple[str, int]] = []

    def __call__(self, host: str, port: int) -> Sequence[str]:
        self.calls.append((host, port))
        queued = self.answers[host]
        return queued.pop(0) if len(queued) > 1 else queued[0]


@pytest.fixture(autouse=True)
def loopback_only(monkeypatch):
    """A safety net, not a fake: should a refusal ever fail, no test traffic leaves loopback."""
    real = urllib3.util.connection.create_connection

    def guarded(address: tuple[str, int], *args: Any, **kwargs: Any) -> Any:
        if not ipaddress.ip_address(address[0].strip("[]")).is_loopback:
            raise AssertionError(f"a test tried to connect to {address[0]}")
        return real(address, *args, **kwargs)

    monkeypatch.setattr(urllib3.util.connection, "create_connection", guarded)


LOOPBACK_ALLOWED = EgressPolicy(allowed_networks=(ipaddress.ip_network("127.0.0.1/32"),))


def test_a_name_is_resolved_once_checked_and_connected_to_with_its_own_host_header():
    with json_server() as server:
        resolver = Resolver({"provider.test": [["127.0.0.1"]]})
        session = egress_session(LOOPBACK_ALLOWED, resolver)
        answer = session.get(f"http://provider.test:{server.port}/", timeout=5)
    assert answer.json() == {"ok": True}
    assert resolver.calls == [("provider.test", server.port)]
    assert server.hosts == [f"provider.test:{server.port}"]


@pytest.mark.parametrize(
    "address",
    [
        "127.0.0.1", "127.8.9.10", "::1", "10.1.2.3", "172.16.5.4", "192.168.1.1", "169.254.169.254",
        "169.254.10.20", "100.64.0.7", "fd12:3456::1", "fe80::1", "0.0.0.0", "::ffff:10.0.0.1",
        "::ffff:127.0.0.1", "::ffff:169.254.169.254", "64:ff9b::a00:1", "2002:a00:1::1", "224.0.0.251",
    ],
)  # fmt: skip
def test_production_rules_refuse_every_non_public_address_before_connecting(address):
    with json_server() as server:
        session = egress_session(EgressPolicy(), Resolver({"provider.test": [[address]]}))
        with pytest.raises(EgressRefused):
            session.get(f"http://provider.test:{server.port}/", timeout=5)
    assert server.hosts == [], "nothing was sent"


def test_one_refused_answer_among_several_refuses_the_name():
    resolver = Resolver({"provider.test": [["127.0.0.1", "10.0.0.9"]]})
    with json_server() as server, pytest.raises(EgressRefused):
        egress_session(LOOPBACK_ALLOWED, resolver).get(f"http://provider.test:{server.port}/", timeout=5)
    assert server.hosts == []


def test_a_name_that_rebinds_to_a_private_address_is_refused_on_the_next_connection():
    resolver = Resolver({"rebind.test": [["127.0.0.1"], ["10.0.0.1"]]})
    with json_server() as server:
        session = egress_session(LOOPBACK_ALLOWED, resolver)
        assert session.get(f"http://rebind.test:{server.port}/", timeout=5).status_code == 200
        with pytest.raises(EgressRefused):
            session.get(f"http://rebind.test:{server.port}/", timeout=5)
    assert len(resolver.calls) == 2, "every request resolves and checks again (no pooled connection by name)"
    assert len(server.hosts) == 1


def test_metadata_stays_refused_even_inside_an_allowed_network():
    policy = EgressPolicy(allowed_networks=(ipaddress.ip_network("169.254.0.0/16"),))
    session = egress_session(policy, Resolver({"metadata.google.internal": [["169.254.169.254"]]}))
    with pytest.raises(EgressRefused):
        session.get("http://metadata.google.internal/computeMetadata/v1/", timeout=5)


def _certificate(tmp_path: Path, name: str) -> tuple[ssl.SSLContext, Path]:
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder().subject_name(subject).issuer_name(subject).public_key(key.public_key())
        .serial_number(x509.random_serial_number()).not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(hours=1))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName(name)]), critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )  # fmt: skip
    cert_path, key_path = tmp_path / f"{name}.pem", tmp_path / f"{name}.key"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert_path, key_path)
    return context, cert_path


def test_tls_keeps_the_name_for_sni_and_the_certificate_check(tmp_path):
    context, ca = _certificate(tmp_path, "provider.test")
    with json_server(context) as server:
        session = egress_session(
            LOOPBACK_ALLOWED, Resolver({"provider.test": [["127.0.0.1"]], "other.test": [["127.0.0.1"]]})
        )
        assert session.get(f"https://provider.test:{server.port}/", verify=str(ca), timeout=5).json() == {"ok": True}
        with pytest.raises(requests.exceptions.SSLError):  # the certificate is for provider.test, not other.test
            session.get(f"https://other.test:{server.port}/", verify=str(ca), timeout=5)
    assert server.sni[0] == "provider.test"
    assert server.hosts == [f"provider.test:{server.port}"]


def test_jwks_are_fetched_through_the_checked_session():
    with running_issuer() as issuer:
        refused = SessionJwksClient(issuer.jwks_url, egress_session(EgressPolicy()))
        with pytest.raises(jwt.PyJWKClientConnectionError):
            refused.get_signing_keys()
        allowed = SessionJwksClient(issuer.jwks_url, egress_session(LOOPBACK_ALLOWED))
        assert [key.key_id for key in allowed.get_signing_keys()] == [issuer.kid]
        assert issuer.jwks_requests == 1


def settings_for(environment: str, issuer: str, **extra: str) -> Any:
    values: dict[str, Any] = {
        "environment": environment, "auth_mode": "oidc", "auth_issuer": issuer, "auth_audience": AUDIENCE,
        "database_url": "postgresql+pg8000://broker:unused@127.0.0.1:9/broker", "data_keys": f"1:{KEY}",
        "public_base_url": "https://broker.example.com", "internal_api_keys": "k" * 32,
        "scheduler_service_account": "scheduler@p.iam.gserviceaccount.com", "refresh_audience": "https://r.example",
    }  # fmt: skip
    return load_settings(**values, **extra)


def oidc(app: Container) -> OidcAuthenticator:
    inner = app.authenticator.inner  # behind connect sessions
    assert isinstance(inner, OidcAuthenticator)
    return inner


def test_a_production_instance_calls_providers_and_issuers_through_the_rules():
    with running_issuer() as issuer, json_server() as server:
        production = Container(settings_for("production", issuer.url))
        with pytest.raises(ProviderError) as refused:
            production.token_endpoint.get_json(f"{server.url}/", "probe")
        assert refused.value.oauth_error == "egress_refused"
        kind, _ = classify_failure(refused.value.oauth_error, refused.value.transient, (), REFUSALS_BEFORE_PERMANENT)
        assert kind == "transient", "the broker's own rule never ends a grant"
        with pytest.raises(DependencyUnavailable):
            oidc(production).verify(issuer.mint("user-1"))
        assert (server.hosts, issuer.discovery_requests, issuer.jwks_requests) == ([], 0, 0)

        development = Container(settings_for("development", issuer.url))
        assert development.token_endpoint.get_json(f"{server.url}/", "probe") == {"ok": True}
        assert oidc(development).verify(issuer.mint("user-1"))["sub"] == "user-1"

        allowed = Container(settings_for("production", issuer.url, egress_allowed_networks="127.0.0.0/8"))
        assert allowed.token_endpoint.get_json(f"{server.url}/", "probe") == {"ok": True}
        assert oidc(allowed).verify(issuer.mint("user-2"))["sub"] == "user-2"


def _provider(issuer: str, **fields: Any) -> Provider:
    return Provider(id="acme", display_name="Acme", auth_mode="oauth2", issuer=issuer, **fields)


def test_discovery_cannot_move_endpoints_to_another_host():
    with json_server() as server:
        issuer = server.url
        document = {
            "issuer": issuer,
            "authorization_endpoint": f"{issuer}/authorize",
            "token_endpoint": f"http://localhost:{server.port}/token",  # loopback, but not the issuer's host
        }
        server.documents["/.well-known/openid-configuration"] = document
        directory = OidcProviders(HttpTokenEndpoint(timeout=5))
        with pytest.raises(ProviderError) as moved:
            directory.resolve(_provider(issuer))
        assert (moved.value.oauth_error, moved.value.transient) == ("discovery_failed", True)
        assert "token_url" in moved.value.message
        resolved = directory.resolve(_provider(issuer, allowed_hosts=("localhost",)))
    assert (resolved.token_url, resolved.authorization_url) == (
        f"http://localhost:{server.port}/token",
        f"{issuer}/authorize",
    )


def test_an_issuer_discovery_that_names_keys_on_another_host_is_refused():
    with running_issuer() as issuer, json_server() as elsewhere:
        elsewhere.documents["/jwks"] = issuer.jwks()
        issuer.discovered_jwks_uri = f"http://localhost:{elsewhere.port}/jwks"
        app = Container(settings_for("development", issuer.url))
        with pytest.raises(DependencyUnavailable):
            oidc(app).verify(issuer.mint("user-1"))
        assert issuer.discovery_requests == 1
    assert elsewhere.hosts == [], "keys named on another host are never fetched"
