"""The provider catalog: the built-in `catalog.yaml` and an optional deployment file, per `schema.json`.

Merging a deployment file: an entry with a new id is added; an entry with an existing id replaces the built-in
entry's keys one by one (shallow: a list or mapping value such as `scopes` or `authorization_params` replaces
the built-in value whole, and a key cannot be removed). The merged catalog is validated again, then aliases
are checked for uniqueness (shared.providers.validation). Sources validated once are recorded by their digest
(`record_validated`: the image build and `broker check-catalog`), and a function whose sources match a record
reads the entries from it: its cold start parses no YAML and imports no schema validator. Reading files is the
only I/O here.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field, replace
from types import MappingProxyType
from typing import Any, Literal

from shared.errors import UnknownProvider
from shared.providers.sources import Sources, read_sources

URL_FIELDS = (
    "issuer", "authorization_url", "token_url", "refresh_url", "revocation_url", "userinfo_url", "jwks_uri",
)  # fmt: skip
# The endpoints OIDC discovery can fill in (shared.adapters.oidc): entry field -> discovery document key.
DISCOVERED = {
    "authorization_url": "authorization_endpoint",
    "token_url": "token_endpoint",
    "revocation_url": "revocation_endpoint",
    "userinfo_url": "userinfo_endpoint",
    "jwks_uri": "jwks_uri",
}


def _frozen_map() -> Mapping[str, str]:
    return MappingProxyType({})


@dataclass(frozen=True)
class Identity:
    """Where the account identity is read (`id_token`, `userinfo` or `token_response`); dotted field paths."""

    source: Literal["id_token", "userinfo", "token_response"]
    subject: str
    email: str | None = None
    login: str | None = None


@dataclass(frozen=True)
class Provider:
    id: str
    display_name: str
    auth_mode: Literal["oauth2", "api_key", "basic"]
    aliases: tuple[str, ...] = ()
    docs: str | None = None  # the provider's own OAuth (or API key) documentation
    icon: str | None = None  # an https URL of the provider's logo, for a Connect page
    hooks: tuple[str, ...] = ()
    relative_urls: bool = False
    issuer: str | None = None
    issuer_template: str | None = None  # a per-tenant issuer the deployment sets (`issuer` in PROVIDERS_FILE)
    id_token_issuer: str | None = None  # the `iss` of ID tokens when there is no `issuer`
    authorization_url: str | None = None
    token_url: str | None = None
    refresh_url: str | None = None  # where refresh tokens are spent, when not at token_url (Figma)
    revocation_url: str | None = None
    userinfo_url: str | None = None
    jwks_uri: str | None = None
    allowed_hosts: tuple[str, ...] = ()  # other hosts discovery may name (the issuer's host always)
    scopes: tuple[str, ...] = ()
    scope_separator: str = " "
    scope_param: str = "scope"
    pkce: bool = True
    token_auth_method: Literal["client_secret_basic", "client_secret_post"] = "client_secret_basic"
    token_request_encoding: Literal["form", "json"] = "form"
    authorization_params: Mapping[str, str] = field(default_factory=_frozen_map, hash=False)
    token_params: Mapping[str, str] = field(default_factory=_frozen_map, hash=False)
    request_headers: Mapping[str, str] = field(default_factory=_frozen_map, hash=False)
    refresh_token_rotates: bool = False
    default_token_lifetime: int | None = 3600  # None: a token without expires_in does not expire
    refresh_margin: int = 300
    refresh_token_idle_lifetime: int | None = None  # seconds a refresh token lives unused (refreshing renews it)
    refresh_token_absolute_lifetime: int | None = None  # seconds a grant lives however often it is refreshed
    revocation_token: Literal["refresh_token", "access_token"] = "refresh_token"  # which token revokes the grant
    permanent_errors: tuple[str, ...] = ()  # provider-specific token-endpoint errors that end the grant
    identity: Identity | None = None
    credentials_schema: Mapping[str, Any] | None = field(default=None, hash=False)

    def has_hook(self, name: str) -> bool:
        return name in self.hooks

    @property
    def needs_issuer(self) -> bool:
        """A per-tenant entry (Okta, Auth0, Keycloak, an Entra tenant) whose issuer the deployment has not set."""
        return self.issuer_template is not None and self.issuer is None

    @property
    def needs_discovery(self) -> bool:
        """An OIDC entry that leaves out endpoints its issuer's discovery document names (shared.adapters.oidc)."""
        return self.issuer is not None and any(getattr(self, name) is None for name in DISCOVERED)

    @property
    def secret_fields(self) -> tuple[str, ...]:
        """Static-credential fields marked `writeOnly`: stored as secrets, never returned or logged."""
        properties = (self.credentials_schema or {}).get("properties", {})
        return tuple(name for name, spec in properties.items() if spec.get("writeOnly"))

    def with_base_url(self, base_url: str) -> Provider:
        """This entry with relative endpoints (`relative_urls`) appended to the broker's public base URL.

        Appended, not RFC 3986-joined, so a base URL with a path prefix keeps it.
        """
        if not self.relative_urls:
            return self
        base = base_url.rstrip("/")
        changes: dict[str, Any] = {
            name: base + value for name in URL_FIELDS if (value := getattr(self, name)) is not None
        }
        return replace(self, relative_urls=False, **changes)


class Catalog:
    def __init__(self, providers: Mapping[str, Provider]):
        self._providers = dict(sorted(providers.items()))
        self._index = {name: p for p in self._providers.values() for name in (p.id, *p.aliases)}
        # The token hot path's one threshold for every provider (shared.domain.refresh.servable_until).
        self.max_refresh_margin = max((p.refresh_margin for p in self._providers.values()), default=0)

    def get(self, provider_id: str) -> Provider:
        """The entry for an id or an alias."""
        provider = self._index.get(provider_id)
        if provider is None:
            shown = provider_id[:64]
            raise UnknownProvider(
                f"unknown provider {shown!r}: expected one of {', '.join(self._providers)} (or an alias)",
                details={"provider": shown},
            )
        return provider

    def ids(self) -> tuple[str, ...]:
        return tuple(self._providers)

    def all(self) -> tuple[Provider, ...]:
        return tuple(self._providers.values())

    def __iter__(self) -> Iterator[Provider]:
        return iter(self.all())

    def __len__(self) -> int:
        return len(self._providers)

    def __contains__(self, provider_id: object) -> bool:
        return isinstance(provider_id, str) and provider_id in self._index


def load_catalog(override_file: str | None = None) -> Catalog:
    """The built-in catalog, merged with the deployment's `override_file` when given. Raises CatalogError."""
    sources = read_sources(override_file)
    entries = sources.recorded()
    if entries is None:
        from shared.providers.validation import validated_entries

        entries = validated_entries(sources)
    return Catalog({pid: _provider(pid, entry) for pid, entry in entries.items()})


def record_validated(override_file: str | None = None) -> tuple[Catalog, Sources]:
    """Validate in full and record these sources as validated (the image build; `broker check-catalog`)."""
    from shared.providers.validation import validated_entries

    sources = read_sources(override_file)
    entries = validated_entries(sources)
    sources.record(entries)
    return Catalog({pid: _provider(pid, entry) for pid, entry in entries.items()}), sources


def _provider(pid: str, entry: Mapping[str, Any]) -> Provider:
    values = dict(entry)
    if "docs_url" in values:  # the key's former name, still read from deployment files
        values.setdefault("docs", values.pop("docs_url"))
    for key in ("aliases", "hooks", "scopes", "permanent_errors", "allowed_hosts"):
        if key in values:
            values[key] = tuple(values[key])
    for key in ("authorization_params", "token_params", "request_headers", "credentials_schema"):
        if key in values:
            values[key] = MappingProxyType(values[key])
    if "identity" in values:
        values["identity"] = Identity(**values["identity"])
    return Provider(id=pid, **values)
