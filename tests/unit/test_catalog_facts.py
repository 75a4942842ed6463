"""The built-in catalog as a whole: its size, its URLs, its docs, and the per-tenant entries' discovery (offline,
from recorded documents under tests/fixtures/discovery, served through requests' transport seam)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import requests
import yaml
from requests.adapters import BaseAdapter

from shared.adapters.http_oauth import HttpTokenEndpoint
from shared.adapters.oidc import OidcProviders
from shared.providers.catalog import URL_FIELDS, Catalog, load_catalog

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "discovery"
CATALOG = load_catalog()
TENANT_ENTRIES = sorted(p.id for p in CATALOG if p.issuer_template is not None)


def test_the_builtin_catalog_holds_at_least_sixty_entries():
    assert len(CATALOG) >= 60
    oauth = [p for p in CATALOG if p.auth_mode == "oauth2"]
    assert len(oauth) >= 50


@pytest.mark.parametrize("provider", list(CATALOG), ids=lambda p: p.id)
def test_every_url_is_https_and_every_entry_has_docs(provider):
    if provider.relative_urls:  # the built-in demo server, on the broker's own base URL
        assert provider.id == "demo"
        return
    assert provider.docs is not None
    assert provider.docs.startswith("https://")
    for name in (*URL_FIELDS, "icon", "id_token_issuer", "issuer_template"):
        value = getattr(provider, name)
        assert value is None or value.startswith("https://"), (name, value)


def test_aliases_are_unique_and_never_an_id():
    names = [name for p in CATALOG for name in (p.id, *p.aliases)]
    assert len(names) == len(set(names))


def test_every_expiring_refresh_token_is_for_a_provider_that_refreshes():
    for provider in CATALOG:
        lifetimes = (provider.refresh_token_idle_lifetime, provider.refresh_token_absolute_lifetime)
        if any(lifetimes):
            assert provider.auth_mode == "oauth2", provider.id


class RecordedDiscovery(BaseAdapter):
    """The transport seam: answers each discovery URL with its recorded document; nothing leaves the process."""

    def __init__(self, documents: dict[str, dict[str, Any]]) -> None:
        super().__init__()
        self.documents = documents
        self.requested: list[str] = []

    def send(self, request: requests.PreparedRequest, *args: Any, **kwargs: Any) -> requests.Response:
        self.requested.append(str(request.url))
        response = requests.Response()
        document = self.documents.get(str(request.url))
        response.status_code = 200 if document is not None else 404
        response._content = json.dumps(document or {}).encode()
        response.headers["Content-Type"] = "application/json"
        response.url = str(request.url)
        return response

    def close(self) -> None:
        pass


def _tenant(provider_id: str, tmp_path: Path) -> tuple[Catalog, dict[str, Any]]:
    document = json.loads((FIXTURES / f"{provider_id}.json").read_text(encoding="utf-8"))
    override = tmp_path / "providers.yaml"
    override.write_text(yaml.safe_dump({"providers": {provider_id: {"issuer": document["issuer"]}}}), "utf-8")
    return load_catalog(str(override)), document


def test_the_per_tenant_entries_are_okta_auth0_keycloak_and_an_entra_tenant():
    assert {"okta", "auth0", "keycloak", "microsoft-tenant"} <= set(TENANT_ENTRIES)


@pytest.mark.parametrize("provider_id", TENANT_ENTRIES)
def test_a_per_tenant_entry_needs_its_issuer_and_discovery_yields_its_endpoints(provider_id, tmp_path):
    assert CATALOG.get(provider_id).needs_issuer, "not usable before the deployment names its tenant"
    assert (FIXTURES / f"{provider_id}.json").is_file(), "every per-tenant entry has a recorded discovery document"
    catalog, document = _tenant(provider_id, tmp_path)
    entry = catalog.get(provider_id)
    assert not entry.needs_issuer
    transport = RecordedDiscovery({document["issuer"].rstrip("/") + "/.well-known/openid-configuration": document})
    session = requests.Session()
    session.mount("https://", transport)
    resolved = OidcProviders(HttpTokenEndpoint(session)).resolve(entry)
    assert resolved.authorization_url == document["authorization_endpoint"]
    assert resolved.token_url == document["token_endpoint"]
    assert resolved.jwks_uri == document["jwks_uri"]
    assert resolved.userinfo_url == document.get("userinfo_endpoint")
    assert resolved.revocation_url == document.get("revocation_endpoint")
    assert len(transport.requested) == 1, "one discovery request, nothing else"
