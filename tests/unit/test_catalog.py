"""The provider catalog: the built-in entries, the schema's rules, the deployment override and its merge."""

from __future__ import annotations

import dataclasses
import json
import subprocess
import sys
from importlib import resources
from pathlib import Path
from typing import Any

import pytest
import yaml
from jsonschema import Draft202012Validator

from shared.errors import CatalogError, UnknownProvider
from shared.providers.catalog import Catalog, Provider, load_catalog, record_validated

PACKAGE = resources.files("shared.providers")
SCHEMA = json.loads(PACKAGE.joinpath("schema.json").read_text(encoding="utf-8"))
BUILTIN = {
    pid: entry
    for path in sorted(PACKAGE.joinpath("builtin").iterdir(), key=lambda p: p.name)
    if path.name.endswith(".yaml")
    for pid, entry in yaml.safe_load(path.read_text(encoding="utf-8"))["providers"].items()
}
MINIMAL = {
    "display_name": "Acme",
    "auth_mode": "oauth2",
    "authorization_url": "https://acme.example/authorize",
    "token_url": "https://acme.example/token",
}


@pytest.fixture(scope="module")
def catalog() -> Catalog:
    return load_catalog()


def _source_of(provider_id: str) -> str:
    """The text of the builtin file holding `provider_id`'s entry, from its key to the next entry."""
    for path in PACKAGE.joinpath("builtin").iterdir():
        text = path.read_text(encoding="utf-8")
        if f"\n  {provider_id}:\n" in text:
            return text.split(f"\n  {provider_id}:\n", 1)[1].split("\n\n  ", 1)[0]
    raise AssertionError(provider_id)


def load_with(tmp_path: Path, providers: dict[str, Any]) -> Catalog:
    path = tmp_path / "providers.yaml"
    path.write_text(yaml.safe_dump({"providers": providers}), encoding="utf-8")
    return load_catalog(str(path))


def rejected(tmp_path: Path, providers: dict[str, Any]) -> str:
    with pytest.raises(CatalogError) as caught:
        load_with(tmp_path, providers)
    assert caught.value.code == "catalog_invalid"
    return caught.value.message


@pytest.mark.parametrize("provider_id", sorted(BUILTIN))
def test_builtin_entry_is_a_complete_valid_entry(catalog: Catalog, provider_id: str):
    entry_schema = {"$defs": SCHEMA["$defs"], "$ref": "#/$defs/entry"}
    errors = [e.message for e in Draft202012Validator(entry_schema).iter_errors(BUILTIN[provider_id])]
    assert errors == []
    provider = catalog.get(provider_id)
    assert provider.id == provider_id
    if provider.auth_mode == "oauth2":
        assert provider.issuer or provider.issuer_template or (provider.authorization_url and provider.token_url)
        if provider.identity is None:  # only where the provider has no way to say who the account is
            assert "No identity:" in _source_of(provider_id)
        elif provider.identity.source != "token_response":
            assert provider.identity.source != "userinfo" or provider.userinfo_url
    else:
        assert provider.credentials_schema is not None
        assert provider.secret_fields, "a static credential has at least one writeOnly (secret) field"


def test_builtin_catalog_has_the_documented_providers(catalog: Catalog):
    expected = {"google", "github", "microsoft", "slack", "notion", "salesforce", "dropbox", "demo", "openai"}
    assert expected <= set(catalog.ids())
    assert catalog.ids() == tuple(sorted(catalog.ids()))
    assert [p.id for p in catalog] == list(catalog.ids()) == [p.id for p in catalog.all()]
    assert {p.auth_mode for p in catalog} == {"oauth2", "api_key", "basic"}


def test_every_schema_field_is_a_provider_field():
    # A key the schema accepts but the dataclass lacks would pass validation and crash the loader.
    schema_fields = set(SCHEMA["$defs"]["entryFields"]["properties"])
    provider_fields = {f.name for f in dataclasses.fields(Provider)} - {"id"}
    assert schema_fields - {"docs_url"} == provider_fields, "docs_url: the former name of docs, read as docs"


@pytest.mark.parametrize(
    ("alias", "provider_id"),
    [("google-oauth", "google"), ("azure-ad", "microsoft"), ("entra", "microsoft"), ("local-demo", "demo")],
)
def test_aliases_resolve_to_their_entry(catalog: Catalog, alias: str, provider_id: str):
    assert catalog.get(alias) is catalog.get(provider_id)
    assert alias in catalog
    assert alias not in catalog.ids()


def test_unknown_provider_names_the_id_it_got(catalog: Catalog):
    with pytest.raises(UnknownProvider) as caught:
        catalog.get("myspace")
    assert (caught.value.code, caught.value.http_status) == ("unknown_provider", 404)
    assert "'myspace'" in caught.value.message
    assert "myspace" not in catalog


def test_builtin_values_follow_the_provider_facts(catalog: Catalog):
    google = catalog.get("google")
    assert google.authorization_params["access_type"] == "offline"
    assert (google.refresh_token_rotates, google.default_token_lifetime) == (False, 3600)
    assert catalog.get("slack").scope_separator == ","
    assert catalog.get("notion").token_auth_method == "client_secret_basic"
    assert catalog.get("dropbox").authorization_params == {"token_access_type": "offline"}
    assert catalog.get("github").default_token_lifetime is None


def test_defaults_are_applied(tmp_path: Path):
    provider = load_with(tmp_path, {"acme": MINIMAL}).get("acme")
    assert provider.pkce is True
    assert provider.token_auth_method == "client_secret_basic"
    assert (provider.scope_separator, provider.scope_param, provider.scopes) == (" ", "scope", ())
    assert (provider.refresh_margin, provider.default_token_lifetime) == (300, 3600)
    assert provider.refresh_token_rotates is False
    assert (provider.relative_urls, provider.token_request_encoding) == (False, "form")
    assert dict(provider.authorization_params) == {}
    assert provider.identity is None


def test_override_adds_an_entry_and_overrides_fields_shallowly(tmp_path: Path):
    builtin = load_catalog()
    merged = load_with(
        tmp_path,
        {
            "acme": MINIMAL | {"issuer": "https://acme.example"},
            "github": {"scopes": ["repo"], "refresh_margin": 600},
            "google": {"authorization_params": {"prompt": "select_account"}},
        },
    )
    assert merged.get("acme").issuer == "https://acme.example"
    github = merged.get("github")
    assert (github.scopes, github.refresh_margin) == (("repo",), 600)
    assert github.token_url == builtin.get("github").token_url  # untouched keys are kept
    assert github.aliases == builtin.get("github").aliases
    # Shallow: a mapping value replaces the built-in one whole.
    assert dict(merged.get("google").authorization_params) == {"prompt": "select_account"}
    assert builtin.get("github").scopes != ("repo",)


def test_unknown_key_in_an_override_is_named(tmp_path: Path):
    message = rejected(tmp_path, {"github": {"pkce_enabled": False}})
    assert "providers.yaml: providers.github.pkce_enabled: unknown key 'pkce_enabled'" in message


def test_type_errors_name_file_provider_and_path(tmp_path: Path):
    message = rejected(tmp_path, {"github": {"pkce": "yes"}})
    assert "providers.yaml: providers.github.pkce: 'yes' is not of type 'boolean'" in message


def test_merged_entry_is_validated_again(tmp_path: Path):
    message = rejected(tmp_path, {"google": {"auth_mode": "api_key"}})
    assert "providers.yaml (merged over builtin/google.yaml): providers.google" in message
    assert "credentials_schema" in message


@pytest.mark.parametrize(
    ("providers", "alias"),
    [
        ({"acme": MINIMAL | {"aliases": ["entra"]}}, "'entra'"),  # another entry's alias
        ({"acme": MINIMAL | {"aliases": ["github"]}}, "'github' is a provider id"),  # shadows an id
        ({"azure-ad": MINIMAL}, "'azure-ad' is a provider id"),  # a new id equal to an alias
        ({"acme": MINIMAL | {"aliases": ["acme"]}}, "'acme' is a provider id"),  # its own id
        ({"a": MINIMAL | {"aliases": ["xx"]}, "b": MINIMAL | {"aliases": ["xx"]}}, "already an alias of 'a'"),
    ],
)
def test_alias_collisions_are_rejected(tmp_path: Path, providers: dict[str, Any], alias: str):
    message = rejected(tmp_path, providers)
    assert "providers.yaml: providers." in message
    assert ".aliases[" in message
    assert alias in message


def test_oauth2_entry_needs_an_issuer_or_both_endpoints(tmp_path: Path):
    without_token_url = {k: v for k, v in MINIMAL.items() if k != "token_url"}
    message = rejected(tmp_path, {"acme": without_token_url})
    assert "providers.acme: 'token_url' is a required property" in message
    assert "`issuer`" in message  # says what would have done instead
    discovered = load_with(tmp_path, {"acme": without_token_url | {"issuer": "https://acme.example"}}).get("acme")
    assert (discovered.issuer, discovered.token_url) == ("https://acme.example", None)


def test_static_credential_entry_needs_a_credentials_schema(tmp_path: Path):
    message = rejected(tmp_path, {"acme": {"display_name": "Acme", "auth_mode": "api_key"}})
    assert "providers.acme: 'credentials_schema' is a required property" in message


def test_static_credential_entry_carries_no_oauth_fields(tmp_path: Path):
    entry = {"display_name": "Acme", "auth_mode": "api_key", "token_url": "https://acme.example/token"}
    entry["credentials_schema"] = BUILTIN["openai"]["credentials_schema"]
    message = rejected(tmp_path, {"acme": entry})
    assert "providers.acme.token_url: 'https://acme.example/token' is not allowed: an OAuth setting" in message


def test_credentials_schema_required_fields_must_be_declared(tmp_path: Path):
    fields = {"type": "object", "required": ["token"], "properties": {"api_key": {"type": "string"}}}
    message = rejected(
        tmp_path, {"acme": {"display_name": "Acme", "auth_mode": "api_key", "credentials_schema": fields}}
    )
    assert "providers.acme.credentials_schema.required: token" in message


@pytest.mark.parametrize(
    ("change", "path"),
    [
        ({"token_url": "http://acme.example/token"}, "providers.acme.token_url"),  # http off loopback
        ({"token_url": "/token"}, "providers.acme.token_url"),  # relative without relative_urls
        ({"authorization_params": {"state": "fixed"}}, "providers.acme.authorization_params"),
        ({"hooks": ["acme_magic"]}, "providers.acme.hooks[0]"),
        ({"request_headers": {"Authorization": "Bearer x"}}, "providers.acme.request_headers"),
        ({"refresh_margin": -1}, "providers.acme.refresh_margin"),
    ],
)
def test_invalid_values_are_rejected_with_their_path(tmp_path: Path, change: dict[str, Any], path: str):
    entry = MINIMAL | change
    assert f"providers.yaml: {path}:" in rejected(tmp_path, {"acme": entry})


def test_loopback_http_is_accepted_for_local_test_servers(tmp_path: Path):
    entry = MINIMAL | {"authorization_url": "http://127.0.0.1:8081/auth", "token_url": "http://localhost:8081/t"}
    assert load_with(tmp_path, {"acme": entry}).get("acme").token_url == "http://localhost:8081/t"


def test_relative_urls_resolve_against_the_base_url(catalog: Catalog):
    demo = catalog.get("demo").with_base_url("https://broker.example/api/")
    assert demo.authorization_url == "https://broker.example/api/demo/oauth/authorize"
    assert demo.token_url == "https://broker.example/api/demo/oauth/token"
    assert demo.relative_urls is False
    google = catalog.get("google")
    assert google.with_base_url("https://broker.example") is google


def test_unreadable_or_malformed_override_names_the_file(tmp_path: Path):
    with pytest.raises(CatalogError, match=r"missing\.yaml: cannot read"):
        load_catalog(str(tmp_path / "missing.yaml"))
    broken = tmp_path / "broken.yaml"
    broken.write_text("providers: [unclosed", encoding="utf-8")
    with pytest.raises(CatalogError, match=r"broken\.yaml: not valid YAML"):
        load_catalog(str(broken))
    empty = tmp_path / "empty.yaml"
    empty.write_text("", encoding="utf-8")
    with pytest.raises(CatalogError, match=r"empty\.yaml: \(top level\): None is not of type 'object'"):
        load_catalog(str(empty))


def test_a_provider_listed_twice_in_an_override_file_is_refused(tmp_path: Path):
    twice = tmp_path / "twice.yaml"
    twice.write_text("providers:\n  gitlab: {display_name: A}\n  gitlab: {display_name: B}\n", encoding="utf-8")
    with pytest.raises(CatalogError, match=r"twice\.yaml: not valid YAML: duplicate key 'gitlab'"):
        load_catalog(str(twice))


def test_allowed_hosts_lets_discovery_name_other_hosts(tmp_path: Path):
    entry = {"display_name": "Acme", "auth_mode": "oauth2", "issuer": "https://login.acme.example"}
    loaded = load_with(tmp_path, {"acme": {**entry, "allowed_hosts": ["api.acme.example", "keys.acme.example"]}})
    assert loaded.get("acme").allowed_hosts == ("api.acme.example", "keys.acme.example")
    assert load_with(tmp_path, {"acme": entry}).get("acme").allowed_hosts == ()
    assert "allowed_hosts[0]" in rejected(tmp_path, {"acme": {**entry, "allowed_hosts": ["https://api.acme.example"]}})
    credentials = {"type": "object", "properties": {"key": {"type": "string"}}}
    static = {
        "display_name": "Key",
        "auth_mode": "api_key",
        "allowed_hosts": ["a.example"],
        "credentials_schema": credentials,
    }
    assert "allowed_hosts" in rejected(tmp_path, {"keyed": static})


def _override(tmp_path: Path, body: str) -> str:
    path = tmp_path / "providers.yaml"
    path.write_text(body, encoding="utf-8")
    return str(path)


VALID_OVERRIDE = (
    "providers:\n  acme:\n    display_name: Acme\n    auth_mode: oauth2\n"
    "    authorization_url: https://acme.example/authorize\n    token_url: https://acme.example/token\n"
)


def test_a_recorded_catalog_loads_without_yaml_or_the_schema_validator(tmp_path: Path):
    records = tmp_path / "records"
    override = _override(tmp_path, VALID_OVERRIDE)
    code = (
        "import sys; from pathlib import Path; import shared.providers.sources as s; "
        f"s.RECORDS = Path({str(records)!r}); from shared.providers.catalog import load_catalog, record_validated; "
        f"f = {override!r}; c = record_validated(f)[0] if sys.argv[1] == 'record' else load_catalog(f); "
        "print(sorted(c.ids())); print('yaml' in sys.modules, 'jsonschema' in sys.modules)"
    )
    recorded = subprocess.run([sys.executable, "-c", code, "record"], capture_output=True, text=True, check=True)
    loaded = subprocess.run([sys.executable, "-c", code, "load"], capture_output=True, text=True, check=True)
    assert recorded.stdout.splitlines()[0] == loaded.stdout.splitlines()[0]
    assert "'acme'" in loaded.stdout
    assert recorded.stdout.splitlines()[1] == "True True", "recording validates in full"
    assert loaded.stdout.splitlines()[1] == "False False", "a recorded catalog needs neither"


def test_a_changed_file_is_validated_again_and_nothing_invalid_is_recorded(tmp_path: Path, monkeypatch):
    import shared.providers.sources as sources

    monkeypatch.setattr(sources, "RECORDS", tmp_path / "records")
    override = _override(tmp_path, VALID_OVERRIDE)
    record_validated(override)
    assert len(list((tmp_path / "records").iterdir())) == 1
    Path(override).write_text(VALID_OVERRIDE + "    refresh_margn: 60\n", encoding="utf-8")  # a typo'd key
    with pytest.raises(CatalogError, match="refresh_margn"):
        load_catalog(override)
    with pytest.raises(CatalogError):
        record_validated(override)
    assert len(list((tmp_path / "records").iterdir())) == 1, "no record for what failed"
