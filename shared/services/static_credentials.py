"""Static credentials (api_key, basic): checked against the catalog entry's JSON schema, read back by version.

Error messages name fields and the rule they break, never a submitted value (they may be the secret itself).
"""

from __future__ import annotations

import json
import re
from typing import TYPE_CHECKING, Any

from shared.domain.models import Integration
from shared.domain.ports import SecretStore
from shared.errors import SecretCorrupted, ValidationFailed
from shared.providers.catalog import Provider

if TYPE_CHECKING:
    from jsonschema.exceptions import ValidationError

CONTROL_CHARS = re.compile(r"[\x00-\x1f\x7f]")
FIELD_NAME = re.compile(r"[a-z][a-z0-9_]{0,63}")  # fullmatch
_MAX_REPORTED = 10


def check_credentials(provider: Provider, credentials: dict[str, Any]) -> None:
    """ValidationFailed (`invalid_credentials`) listing each problem by field, when the credentials do not fit."""
    schema = dict(provider.credentials_schema or {})
    from jsonschema import Draft202012Validator  # only where static credentials are checked

    validator = Draft202012Validator(schema, format_checker=Draft202012Validator.FORMAT_CHECKER)
    problems = [_describe(error) for error in validator.iter_errors(credentials)]
    for name, value in credentials.items():
        if isinstance(value, str) and CONTROL_CHARS.search(value):
            problems.append(f"credentials.{_name(name)}: must not contain control characters")
    if problems:
        shown = sorted(set(problems))[:_MAX_REPORTED]
        raise ValidationFailed("; ".join(shown), code="invalid_credentials")


def read_credentials(secrets: SecretStore, integration: Integration) -> dict[str, Any]:
    """The stored credentials, read by the pinned version (SecretNotFound when missing or destroyed)."""
    assert integration.secret_ref is not None
    assert integration.secret_version is not None
    payload = secrets.read(integration.secret_ref, integration.secret_version)
    try:
        credentials = json.loads(payload)["credentials"]
    except (ValueError, KeyError, TypeError):
        raise SecretCorrupted(f"the stored credentials of {integration.id} are not in the expected form") from None
    if not isinstance(credentials, dict):
        raise SecretCorrupted(f"the stored credentials of {integration.id} are not in the expected form")
    return credentials


def _name(name: object) -> str:
    return str(name) if isinstance(name, str) and FIELD_NAME.fullmatch(name) else "<field>"


def _describe(error: ValidationError) -> str:
    where = ".".join(["credentials", *(_name(part) for part in error.absolute_path)])
    rule, expected = error.validator, error.validator_value
    if rule == "required" and isinstance(error.instance, dict) and isinstance(expected, list):
        missing = [name for name in expected if name not in error.instance]
        return f"{where}: missing required field(s) {', '.join(missing)}"
    if rule == "additionalProperties" and isinstance(error.instance, dict):
        allowed = set(error.schema.get("properties", {})) if isinstance(error.schema, dict) else set()
        unknown = sorted(_name(key) for key in error.instance if key not in allowed)
        return f"{where}: unknown field(s) {', '.join(unknown)} (expected: {', '.join(sorted(allowed))})"
    messages = {
        "type": f"must be of type {expected}",
        "minLength": f"must be at least {expected} characters",
        "maxLength": f"must be at most {expected} characters",
        "pattern": f"must match {expected}",
        "format": f"must be a valid {expected}",
        "enum": f"must be one of {', '.join(map(str, expected)) if isinstance(expected, list) else expected}",
    }
    return f"{where}: {messages.get(str(rule), f'breaks the schema rule {rule!r}')}"
