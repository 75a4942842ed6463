"""Validation patterns match the whole value: with `re.match`, `$` also matches before a final newline, so
`"alice\n"` passed as `alice`'s neighbour. Every pattern is applied with `fullmatch`."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest
from sqlalchemy import create_engine

from shared.config import load_settings
from shared.errors import ConfigurationError
from shared.ops import grant_app_privileges, job_name
from shared.services.static_credentials import _name

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize(
    "overrides",
    [
        {"secret_prefix": "broker-int\n"},
        {"data_key_secret": "projects/p/secrets/k/versions/3\n", "gcp_project": "p"},
        {"auth_entity_claim": "sub\n"},
    ],
)
def test_settings_with_a_trailing_newline_are_refused(overrides):
    with pytest.raises(ConfigurationError):
        load_settings(**overrides)


def test_operator_names_with_a_trailing_newline_are_refused():
    with pytest.raises(ConfigurationError):
        job_name("refresh\n", "p", "europe-west1")
    with pytest.raises(ConfigurationError):
        job_name("projects/p/locations/l/jobs/refresh\n")
    with pytest.raises(ConfigurationError):
        grant_app_privileges(create_engine("sqlite://"), ["broker-fn@p.iam\n"])


def test_a_field_name_with_a_trailing_newline_is_not_echoed():
    assert _name("api_key") == "api_key"
    assert _name("api_key\n") == "<field>"


def _compiled_patterns(path: Path) -> list[tuple[int, str]]:
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Attribute)
            and node.func.attr == "compile"
            and node.args
            and isinstance(node.args[0], ast.Constant)
            and isinstance(node.args[0].value, str)
        ):
            found.append((node.lineno, node.args[0].value))
    return found


def test_no_compiled_pattern_relies_on_dollar_as_the_end():
    offenders = [
        f"{path.relative_to(ROOT)}:{line}: {pattern!r}"
        for folder in ("shared", "functions")
        for path in sorted((ROOT / folder).rglob("*.py"))
        for line, pattern in _compiled_patterns(path)
        if pattern.endswith("$")
    ]
    assert offenders == [], "use fullmatch and drop the anchors"
