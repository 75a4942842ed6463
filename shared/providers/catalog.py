"""The provider catalog: the built-in `catalog.yaml` and an optional deployment file, per `schema.json`.

Merging a deployment file: an entry with a new id is added; an entry with an existing id replaces the built-in
entry's keys one by one (shallow: a list or mapping value such as `scopes` or `authorization_params` replaces
the built-in value whole, and a key cannot be removed). The merged catalog is validated again, then aliases
are checked for uniqueness. Reading files is the only I/O here.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field, replace
from importlib import resources
from pathlib import Path
from types import MappingProxyType
from typing import Any, Literal

import yaml
from jsonschema import Draft202012Validator
from jsonschema.exceptions import SchemaError, ValidationError

from shared.errors import CatalogError, UnknownProvider

BUILTIN = "catalog.yaml"
URL_FIELDS = ("issuer", "authorization_url", "token_url", "revocation_url", "userinfo_url", "jwks_uri")
_MAX_REPORTED = 10


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
    docs_url: str | None = None
    hooks: tuple[str, ...] = ()
    relative_urls: bool = False
    issuer: str | None = None
    authorization_url: str | None = None
    token_url: str | None = None
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
    permanent_errors: tuple[str, ...] = ()  # provider-specific token-endpoint errors that end the grant
    identity: Identity | None = None
    credentials_schema: Mapping[str, Any] | None = field(default=None, hash=False)

    def has_hook(self, name: str) -> bool:
        return name in self.hooks

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
    package = resources.files("shared.providers")
    schema = json.loads(package.joinpath("schema.json").read_text(encoding="utf-8"))
    full = Draft202012Validator(schema)
    builtin = _read_yaml(BUILTIN, lambda: package.joinpath(BUILTIN).read_text(encoding="utf-8"))
    _validate(full, builtin, lambda _pid: BUILTIN)
    entries: dict[str, dict[str, Any]] = dict(builtin["providers"])
    origin = dict.fromkeys(entries, BUILTIN)
    if override_file is not None:
        partial = Draft202012Validator({"$defs": schema["$defs"], "$ref": "#/$defs/overrideFile"})
        override = _read_yaml(override_file, lambda: Path(override_file).read_text(encoding="utf-8"))
        _validate(partial, override, lambda _pid: override_file)
        for pid, entry in override["providers"].items():
            origin[pid] = f"{override_file} (merged over {BUILTIN})" if pid in entries else override_file
            entries[pid] = {**entries.get(pid, {}), **entry}
        _validate(full, {"providers": entries}, lambda pid: origin.get(pid or "", override_file))
    _check_entries(entries, origin)
    return Catalog({pid: _provider(pid, entry) for pid, entry in entries.items()})


class _UniqueKeyLoader(yaml.SafeLoader):
    """safe_load that refuses a key given twice (plain YAML keeps the last one, hiding a mistake)."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        keys = [self.construct_object(key, deep=deep) for key, _ in node.value]
        duplicates = sorted({str(k) for k in keys if keys.count(k) > 1})
        if duplicates:
            raise yaml.constructor.ConstructorError(None, None, f"duplicate key {duplicates[0]!r}", node.start_mark)
        return super().construct_mapping(node, deep=deep)


def _read_yaml(name: str, read: Callable[[], str]) -> Any:
    try:
        return yaml.load(read(), Loader=_UniqueKeyLoader)  # noqa: S506 - a SafeLoader subclass
    except (OSError, UnicodeDecodeError) as exc:
        raise CatalogError(f"{name}: cannot read the catalog file: {exc}") from exc
    except yaml.YAMLError as exc:
        raise CatalogError(f"{name}: not valid YAML: {exc}") from exc


def _validate(validator: Draft202012Validator, document: Any, blame: Callable[[str | None], str]) -> None:
    problems = [
        problem
        for error in sorted(validator.iter_errors(document), key=lambda e: [str(p) for p in e.absolute_path])
        for problem in _describe(error, blame)
    ]
    if problems:
        lines = [f"{p['file']}: {p['path']}: {p['message']}" for p in problems[:_MAX_REPORTED]]
        if len(problems) > _MAX_REPORTED:
            lines.append(f"... and {len(problems) - _MAX_REPORTED} more")
        raise CatalogError("\n".join(lines), details={"errors": problems})


def _describe(error: ValidationError, blame: Callable[[str | None], str]) -> list[dict[str, Any]]:
    path = list(error.absolute_path)
    pid = str(path[1]) if len(path) > 1 and path[0] == "providers" else None
    schema = error.schema if isinstance(error.schema, dict) else {}
    hint = schema.get("description")
    if error.validator == "additionalProperties" and isinstance(error.instance, dict):
        allowed = schema.get("properties", {})
        unknown = [key for key in error.instance if key not in allowed]
        expected = f"expected one of: {', '.join(allowed)}" if allowed else "no keys are allowed here"
        found = [([*path, key], f"unknown key {key!r} ({expected})") for key in unknown]
    elif error.validator == "not" and hint:
        found = [(path, f"{error.instance!r} is not allowed: {hint}")]
    elif error.validator == "pattern" and hint:
        found = [(path, f"{error.instance!r} is not valid: {hint}")]
    elif error.validator == "required" and hint:
        found = [(path, f"{error.message} ({hint})")]
    else:
        found = [(path, error.message)]
    return [{"file": blame(pid), "provider": pid, "path": _dotted(p), "message": m} for p, m in found]


def _dotted(path: list[Any]) -> str:
    text = "".join(f"[{part}]" if isinstance(part, int) else f".{part}" for part in path).lstrip(".")
    return text or "(top level)"


def _check_entries(entries: Mapping[str, Mapping[str, Any]], origin: Mapping[str, str]) -> None:
    """What the schema cannot say: aliases unique across entries, credentials schemas valid JSON Schemas."""
    owners = {pid: pid for pid in entries}
    for pid, entry in entries.items():
        for i, alias in enumerate(entry.get("aliases", ())):
            if (other := owners.setdefault(alias, pid)) != pid or alias == pid:
                blamed = origin[pid] if origin[pid] != BUILTIN else origin[other]
                what = "a provider id" if alias in entries else f"already an alias of {other!r}"
                raise CatalogError(f"{blamed}: providers.{pid}.aliases[{i}]: {alias!r} is {what}")
        credentials = entry.get("credentials_schema")
        if credentials is None:
            continue
        where = f"{origin[pid]}: providers.{pid}.credentials_schema"
        try:
            Draft202012Validator.check_schema(credentials)
        except SchemaError as exc:
            raise CatalogError(f"{where}: not a valid JSON Schema: {exc.message}") from exc
        if undeclared := sorted(set(credentials.get("required", ())) - set(credentials["properties"])):
            raise CatalogError(f"{where}.required: {', '.join(undeclared)} not declared in properties")


def _provider(pid: str, entry: Mapping[str, Any]) -> Provider:
    values = dict(entry)
    for key in ("aliases", "hooks", "scopes", "permanent_errors", "allowed_hosts"):
        if key in values:
            values[key] = tuple(values[key])
    for key in ("authorization_params", "token_params", "request_headers", "credentials_schema"):
        if key in values:
            values[key] = MappingProxyType(values[key])
    if "identity" in values:
        values["identity"] = Identity(**values["identity"])
    return Provider(id=pid, **values)
