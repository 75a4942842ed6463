"""The OpenAPI 3.1 document of all five functions (`shared/openapi.yaml`, packaged with the code)."""

from __future__ import annotations

from functools import cache
from importlib import resources
from typing import Any

import yaml


@cache
def openapi_document() -> dict[str, Any]:
    document: dict[str, Any] = yaml.safe_load(
        resources.files("shared").joinpath("openapi.yaml").read_text(encoding="utf-8")
    )
    return document
