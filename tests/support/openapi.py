"""Check a real HTTP response against the OpenAPI document (shared/openapi.yaml) with jsonschema."""

from __future__ import annotations

from typing import Any

import requests
from jsonschema import Draft202012Validator
from referencing import Registry
from referencing.jsonschema import DRAFT202012

from shared.openapi import openapi_document

URI = "urn:broker:openapi"


def _escape(part: str) -> str:
    return part.replace("~", "~0").replace("/", "~1")


def _node(document: dict[str, Any], pointer: str) -> Any:
    node: Any = document
    for part in pointer.removeprefix("/").split("/"):
        node = node[part.replace("~1", "/").replace("~0", "~")]
    return node


def assert_conforms(response: requests.Response, method: str, path: str) -> None:
    """The status is documented for `method path`, and a JSON body matches its schema (formats included)."""
    document = openapi_document()
    status = str(response.status_code)
    pointer = f"/paths/{_escape(path)}/{method.lower()}/responses"
    responses = _node(document, pointer)
    assert status in responses, f"{method} {path}: undocumented status {status}: {response.text[:300]}"
    pointer += f"/{status}"
    if "$ref" in responses[status]:
        pointer = str(responses[status]["$ref"]).removeprefix("#")
    content = _node(document, pointer).get("content", {})
    if not content:
        return
    mimetype = response.headers.get("Content-Type", "").split(";")[0].strip()
    assert mimetype in content, f"{method} {path} {status}: undocumented content type {mimetype!r}"
    if mimetype != "application/json":
        return
    registry: Registry[Any] = Registry().with_resource(URI, DRAFT202012.create_resource(document))
    schema = {"$ref": f"{URI}#{pointer}/content/{_escape(mimetype)}/schema"}
    validator = Draft202012Validator(schema, registry=registry, format_checker=Draft202012Validator.FORMAT_CHECKER)
    errors = sorted(validator.iter_errors(response.json()), key=lambda e: list(e.absolute_path))
    assert not errors, f"{method} {path} {status}: " + "; ".join(
        f"{list(e.absolute_path)}: {e.message}" for e in errors[:5]
    )
