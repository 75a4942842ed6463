"""Parsing the values of settings that carry secrets or name-derived variables (no pydantic here)."""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Iterable, Mapping
from typing import Any

from shared.domain.models import ClientCredentials

PLACEHOLDERS = frozenset({"changeme", "change-me", "change_me", "placeholder", "todo", "xxx", "secret", "replace-me"})


def provider_env_prefix(provider_id: str) -> str:
    """`google-workspace` -> `GOOGLE_WORKSPACE`, the prefix of `<PROVIDER>_CLIENT_ID` / `_CLIENT_SECRET`."""
    return re.sub(r"[^A-Za-z0-9]", "_", provider_id).upper()


def split_list(value: object) -> object:
    if isinstance(value, str):
        return [item.strip() for item in value.split(",") if item.strip()]
    return value


API_KEY_RE = re.compile(r"[\x21-\x2b\x2d-\x7e]+")  # visible ASCII but the comma (fullmatch)


def split_api_keys(value: object) -> object:
    """INTERNAL_API_KEYS as given: comma-separated, nothing trimmed. A key with whitespace around it or in it
    (a pasted newline, `a, b`) is refused rather than trimmed, so the key a backend sends is exactly the one
    configured. Errors count keys, never show them."""
    if not isinstance(value, str):
        return value
    if not value:
        return []
    keys = value.split(",")
    for number, key in enumerate(keys, start=1):
        if not API_KEY_RE.fullmatch(key):
            raise ValueError(
                f"key {number} of {len(keys)} is empty or holds whitespace or other invisible characters "
                "(comma-separate the keys with no spaces)"
            )
    return keys


def is_placeholder(value: str) -> bool:
    return value.strip().lower() in PLACEHOLDERS or (value.startswith("<") and value.endswith(">"))


def read_clients(environ: Mapping[str, str]) -> dict[str, ClientCredentials]:
    clients = {}
    for name, value in environ.items():
        if not name.endswith("_CLIENT_ID") or not value.strip():
            continue
        prefix = name.removesuffix("_CLIENT_ID")
        secret = environ.get(f"{prefix}_CLIENT_SECRET", "").strip() or None
        if is_placeholder(value) or (secret is not None and is_placeholder(secret)):
            raise ValueError(f"{prefix}_CLIENT_ID/{prefix}_CLIENT_SECRET: a placeholder value is set")
        clients[prefix] = ClientCredentials(value.strip(), secret)
    return clients


def parse_data_keys(raw: str) -> dict[int, bytes]:
    """`1:<base64>,2:<base64>` -> {1: key, 2: key}; every key must be 32 bytes (AES-256)."""
    keys: dict[int, bytes] = {}
    for item in (part.strip() for part in raw.split(",") if part.strip()):
        version, sep, encoded = item.partition(":")
        if not sep or not version.isdigit() or int(version) < 1:
            raise ValueError("expected comma-separated '<version>:<base64 key>' with versions ≥ 1")
        if is_placeholder(encoded):
            raise ValueError(f"key version {version} is a placeholder")
        try:
            key = base64.b64decode(encoded, validate=True)
        except (binascii.Error, ValueError):
            raise ValueError(f"key version {version} is not valid base64") from None
        if len(key) != 32:
            raise ValueError(f"key version {version} must decode to 32 bytes, found {len(key)}")
        keys[int(version)] = key
    if not keys:
        raise ValueError("no key given")
    return keys


def environment_values(environ: Mapping[str, str], fields: Iterable[str]) -> dict[str, str]:
    """Each setting's variable, matched without regard to case (`DATABASE_URL` fills `database_url`), as text:
    pydantic converts and validates it. Read here rather than through pydantic-settings, whose imports alone
    cost every function's cold start about as much as functions-framework's own (README, "Benchmarks")."""
    by_name = {name.lower(): value for name, value in environ.items()}
    return {field: by_name[field] for field in fields if field in by_name}


def describe_errors(errors: Iterable[Mapping[str, Any]]) -> str:
    """pydantic's validation errors as one line naming each variable (never its value)."""
    lines = []
    for error in errors:
        name = "_".join(str(part) for part in error["loc"] if isinstance(part, str)).upper()
        message = str(error["msg"]).removeprefix("Value error, ")
        lines.append(f"{name}: {message}" if name else message)
    return "invalid settings: " + "; ".join(lines)
