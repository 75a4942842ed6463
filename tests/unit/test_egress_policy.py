"""The egress rules (pure): which addresses and hosts a production broker may connect to, and the start-up check
of the catalog's and the issuer's URLs against them."""

from __future__ import annotations

import base64
import ipaddress
from pathlib import Path

import pytest

from shared.config import load_settings
from shared.domain.egress import EgressPolicy
from shared.providers.catalog import load_catalog
from shared.startup import egress_problems

DEFAULT = EgressPolicy()


@pytest.mark.parametrize(
    ("address", "expected"),
    [
        ("8.8.8.8", None),
        ("2001:4860:4860::8888", None),
        ("::ffff:8.8.8.8", None),
        ("127.0.0.1", "a loopback address"),
        ("::1", "a loopback address"),
        ("::ffff:127.0.0.1", "a loopback address"),
        ("10.0.0.1", "a private address"),
        ("172.31.255.1", "a private address"),
        ("192.168.0.1", "a private address"),
        ("::ffff:10.0.0.1", "a private address"),
        ("64:ff9b::a00:1", "a private address"),  # NAT64 of 10.0.0.1
        ("2002:a00:1::1", "a private address"),  # 6to4 of 10.0.0.1
        ("169.254.169.254", "a cloud metadata address"),
        ("::ffff:169.254.169.254", "a cloud metadata address"),
        ("fd00:ec2::254", "a cloud metadata address"),
        ("169.254.1.1", "a link-local address"),
        ("fe80::1%eth0", "a link-local address"),
        ("100.64.0.1", "a shared (CGNAT) address"),
        ("100.127.255.254", "a shared (CGNAT) address"),
        ("fc00::1", "a unique-local address"),
        ("fd12:3456::1", "a unique-local address"),
        ("224.0.1.1", "a multicast address"),
        ("ff0e::1", "a multicast address"),
        ("0.0.0.0", "an unspecified address"),
        ("::", "an unspecified address"),
        ("192.0.2.1", "a private address"),  # documentation range
        ("::10.0.0.1", "a non-public address"),  # IPv4-compatible (deprecated)
        ("fec0::1", "a non-public address"),  # site-local (deprecated)
    ],
)
def test_only_public_unicast_addresses_pass(address, expected):
    assert DEFAULT.refusal(address) == expected


def test_allowed_networks_open_private_ranges_but_never_metadata():
    policy = EgressPolicy(
        tuple(ipaddress.ip_network(n) for n in ("10.8.0.0/16", "169.254.0.0/16", "fc00::/7", "127.0.0.1/32"))
    )
    assert policy.refusal("10.8.1.2") is None
    assert policy.refusal("::ffff:10.8.1.2") is None
    assert policy.refusal("10.9.0.1") == "a private address"
    assert policy.refusal("169.254.1.1") is None
    assert policy.refusal("169.254.169.254") == "a cloud metadata address"
    assert policy.refusal("fd00:ec2::254") == "a cloud metadata address"
    assert policy.host_refusal("localhost") is None
    assert policy.host_refusal("metadata.google.internal") == "a cloud metadata host"


@pytest.mark.parametrize(
    ("host", "expected"),
    [
        ("metadata.google.internal", "a cloud metadata host"),
        ("METADATA.GOOGLE.INTERNAL.", "a cloud metadata host"),
        ("metadata", "a cloud metadata host"),
        ("localhost", "a loopback host"),
        ("api.localhost", "a loopback host"),
        ("[::1]", "a loopback address"),
        ("10.0.0.1", "a private address"),
        ("169.254.169.254", "a cloud metadata address"),
        ("accounts.google.com", None),  # a name: checked on the addresses it resolves to, per connection
    ],
)
def test_hosts_as_written_in_a_url(host, expected):
    assert DEFAULT.host_refusal(host) == expected


KEY = base64.b64encode(b"p" * 32).decode()
PRODUCTION = {
    "environment": "production", "auth_mode": "oidc", "auth_issuer": "https://securetoken.google.com/p",
    "auth_audience": "p", "database_url": "postgresql+pg8000://u:p@db.example/broker", "data_keys": f"1:{KEY}",
    "public_base_url": "https://broker.example.com", "internal_api_keys": "k" * 32,
    "scheduler_service_account": "s@p.iam.gserviceaccount.com", "refresh_audience": "https://refresh.example",
}  # fmt: skip


def providers_file(tmp_path: Path, token_url: str) -> str:
    path = tmp_path / "providers.yaml"
    path.write_text(
        "providers:\n  internal-idp:\n    display_name: Internal\n    auth_mode: oauth2\n"
        f"    authorization_url: https://idp.example.com/authorize\n    token_url: {token_url}\n"
        "    identity: {source: token_response, subject: user_id}\n",
        encoding="utf-8",
    )
    return str(path)


def test_production_refuses_catalog_and_issuer_urls_on_refused_hosts_at_start(tmp_path):
    path = providers_file(tmp_path, "http://127.0.0.1:8081/token")
    settings = load_settings(**PRODUCTION, providers_file=path, auth_jwks_url="https://169.254.169.254/keys")
    found = egress_problems(settings, load_catalog(path))
    assert found == [
        "PROVIDERS_FILE: providers.internal-idp.token_url: its host is a loopback address; production connects "
        "only to public addresses (EGRESS_ALLOWED_NETWORKS allows a private network)",
        "AUTH_JWKS_URL: its host is a cloud metadata address; production connects only to public addresses "
        "(EGRESS_ALLOWED_NETWORKS allows a private network)",
    ]
    allowed = load_settings(**PRODUCTION, providers_file=path, egress_allowed_networks="127.0.0.0/8")
    assert egress_problems(allowed, load_catalog(path)) == []
    assert egress_problems(load_settings(providers_file=path), load_catalog(path)) == [], "development: no rules"


def test_the_builtin_catalog_passes_the_production_rules():
    assert egress_problems(load_settings(**PRODUCTION), load_catalog()) == []


def test_egress_allowed_networks_must_be_networks():
    from shared.errors import ConfigurationError

    with pytest.raises(ConfigurationError, match=r"EGRESS_ALLOWED_NETWORKS: .*'10\.0\.0\.0/33' is not an IP network"):
        load_settings(egress_allowed_networks="10.8.0.0/16,10.0.0.0/33")
