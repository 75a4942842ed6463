"""Validating the catalog's sources: YAML (refusing duplicate keys), the JSON schema, the merge, aliases.

Only a catalog whose sources were not recorded as validated loads this module (and PyYAML and jsonschema).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from typing import Any

import yaml
from jsonschema import Draft202012Validator
from jsonschema.exceptions import SchemaError, ValidationError

from shared.errors import CatalogError
from shared.providers.sources import BUILTIN, Sources

_MAX_REPORTED = 10


def validated_entries(sources: Sources) -> dict[str, dict[str, Any]]:
    """The merged entries of `sources`, validated in full. Raises CatalogError."""
    schema = json.loads(sources.schema)
    full = Draft202012Validator(schema)
    entries: dict[str, dict[str, Any]] = {}
    origin: dict[str, str] = {}
    for name, text in sources.builtin:
        where = f"{BUILTIN}/{name}"
        builtin = _read_yaml(where, text)
        _validate(full, builtin, lambda _pid, where=where: where)  # type: ignore[misc]
        for pid, entry in builtin["providers"].items():
            if pid in entries:
                raise CatalogError(f"{where}: providers.{pid}: already defined in {origin[pid]}")
            entries[pid], origin[pid] = entry, where
    if sources.override_file is not None:
        override_file = sources.override_file
        partial = Draft202012Validator({"$defs": schema["$defs"], "$ref": "#/$defs/overrideFile"})
        override = _read_yaml(override_file, sources.override or "")
        _validate(partial, override, lambda _pid: override_file)
        for pid, entry in override["providers"].items():
            origin[pid] = f"{override_file} (merged over {origin[pid]})" if pid in entries else override_file
            entries[pid] = {**entries.get(pid, {}), **entry}
        _validate(full, {"providers": entries}, lambda pid: origin.get(pid or "", override_file))
    _check_entries(entries, origin)
    return entries


_Loader: type[yaml.SafeLoader] = getattr(yaml, "CSafeLoader", yaml.SafeLoader)  # libyaml's parser when built


class _UniqueKeyLoader(_Loader):  # type: ignore[valid-type,misc]
    """safe_load that refuses a key given twice (plain YAML keeps the last one, hiding a mistake)."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        keys = [self.construct_object(key, deep=deep) for key, _ in node.value]
        duplicates = sorted({str(k) for k in keys if keys.count(k) > 1})
        if duplicates:
            raise yaml.constructor.ConstructorError(None, None, f"duplicate key {duplicates[0]!r}", node.start_mark)
        mapping: dict[Any, Any] = super().construct_mapping(node, deep=deep)
        return mapping


def _read_yaml(name: str, text: str) -> Any:
    try:
        return yaml.load(text, Loader=_UniqueKeyLoader)  # noqa: S506 - a SafeLoader subclass (libyaml's when built)
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
                blamed = origin[other] if origin[pid].startswith(f"{BUILTIN}/") else origin[pid]
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
