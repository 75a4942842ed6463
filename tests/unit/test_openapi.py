"""The OpenAPI document stays true: every local route is documented with its methods and vice versa, every
reference resolves, and every operation documents its errors in the one error shape."""

from __future__ import annotations

import re
from typing import Any

from jsonschema import Draft202012Validator

from shared.api.integrations import ENDPOINTS
from shared.domain.text import DISPLAY_TEXT_PATTERN
from shared.local.server import ROUTES
from shared.openapi import openapi_document

METHODS = {"get", "post", "put", "patch", "delete"}
INTERNAL_PATHS = ("/token", "/refresh", "/dispatch", "/events", "/audit")  # the internal functions


def _normalise(path: str) -> str:
    return re.sub(r"<[^>]+>|\{[^}]+\}", "{}", path)


def _documented() -> dict[str, set[str]]:
    paths = openapi_document()["paths"]
    return {_normalise(p): {m.upper() for m in ops if m in METHODS} for p, ops in paths.items()}


def test_every_local_route_is_documented_and_every_documented_path_is_served():
    served: dict[str, set[str]] = {}
    for route in ROUTES:
        served.setdefault(_normalise(route.rule), set()).update(m for m in route.methods if m != "OPTIONS")
    assert served == _documented()


def test_the_integrations_router_serves_exactly_its_documented_operations():
    routed = {(_normalise(e.path), e.method) for e in ENDPOINTS}
    documented = {(p, m) for p, methods in _documented().items() for m in methods}
    assert routed == {(p, m) for p, m in documented if p.startswith(("/integrations", "/providers"))}


def _refs(node: Any) -> list[str]:
    if isinstance(node, dict):
        found = [node["$ref"]] if isinstance(node.get("$ref"), str) else []
        return found + [ref for value in node.values() for ref in _refs(value)]
    if isinstance(node, list):
        return [ref for value in node for ref in _refs(value)]
    return []


def test_every_reference_resolves_and_every_schema_is_valid_json_schema():
    document = openapi_document()
    assert document["openapi"].startswith("3.1")
    for ref in _refs(document):
        node: Any = document
        for part in ref.removeprefix("#/").split("/"):
            assert part in node, f"unresolved {ref}"
            node = node[part]
    for schema in document["components"]["schemas"].values():
        Draft202012Validator.check_schema(schema)


def test_operations_are_unique_tagged_and_answer_errors_in_the_one_shape():
    document = openapi_document()
    ids = []
    for path, operations in document["paths"].items():
        for method, operation in operations.items():
            if method not in METHODS:
                continue
            ids.append(operation["operationId"])
            responses = operation["responses"]
            assert "405" in responses, f"{method} {path}"
            internal = operation.get("x-internal", False)
            assert internal == path.startswith(INTERNAL_PATHS), f"{method} {path}: x-internal"
            assert ("internal" in operation["tags"]) == internal
            for status, response in responses.items():
                if status.startswith(("4", "5")) and "$ref" in response:
                    target = response["$ref"].rsplit("/", 1)[-1]
                    schema = document["components"]["responses"][target]["content"]["application/json"]["schema"]
                    assert schema == {"$ref": "#/components/schemas/Error"}
    assert len(ids) == len(set(ids))


def test_the_documented_text_rule_is_the_one_the_broker_applies():
    document = openapi_document()
    integrations = document["paths"]["/integrations"]
    provider = next(p for p in integrations["get"]["parameters"] if p["name"] == "provider")
    credentials = document["components"]["schemas"]["CreateIntegrationRequest"]["properties"]["credentials"]
    assert document["components"]["schemas"]["Label"]["pattern"] == DISPLAY_TEXT_PATTERN
    assert provider["schema"]["pattern"] == DISPLAY_TEXT_PATTERN
    assert credentials["propertyNames"]["pattern"] == DISPLAY_TEXT_PATTERN
