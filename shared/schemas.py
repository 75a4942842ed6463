"""Request bodies of the public API (pydantic, unknown fields refused) and their mapping to use-case inputs."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Annotated, Any, Literal
from uuid import UUID

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, model_validator

from shared.domain.models import Status
from shared.domain.text import DISPLAY_TEXT_PATTERN, is_display_text
from shared.services.integrations import IntegrationPatch, ListQuery, NewStaticIntegration

if TYPE_CHECKING:
    from shared.services.connect import StartRequest


class Strict(BaseModel):
    # Each validator is built on first use: a cold start builds only the one its first request needs.
    model_config = ConfigDict(extra="forbid", str_max_length=2048, defer_build=True)


class StartBody(Strict):
    provider: str = Field(min_length=1, max_length=64)
    scopes: list[str] = Field(default_factory=list, max_length=50)
    return_to: str | None = Field(None, max_length=2048)
    label: str | None = Field(None, min_length=1, max_length=200, pattern=DISPLAY_TEXT_PATTERN)
    integration_id: UUID | None = None
    mode: Literal["redirect", "popup"] = "redirect"

    def to_request(self) -> StartRequest:
        from shared.services.connect import StartRequest  # here: the integrations API loads no connect flow

        return StartRequest(
            self.provider, list(self.scopes), self.return_to, self.label, self.integration_id, self.mode
        )


# ---- the integrations API ------------------------------------------------------------------------------------------

MAX_CONFIG_BYTES = 8 * 1024
MAX_CONFIG_DEPTH = 6

Label = Annotated[str, Field(min_length=1, max_length=200, pattern=DISPLAY_TEXT_PATTERN)]


def _check_json(value: Any, depth: int = 0) -> None:
    if depth > MAX_CONFIG_DEPTH:
        raise ValueError(f"nested deeper than {MAX_CONFIG_DEPTH} levels")
    if isinstance(value, str):
        if "\x00" in value:
            raise ValueError("strings must not contain NUL characters")
    elif isinstance(value, dict):
        for key, item in value.items():
            if not 1 <= len(key) <= 128 or not is_display_text(key):
                raise ValueError("keys must be 1-128 characters without control or bidi characters")
            _check_json(item, depth + 1)
    elif isinstance(value, list):
        for item in value:
            _check_json(item, depth + 1)


def _config(value: dict[str, Any]) -> dict[str, Any]:
    _check_json(value)
    if len(json.dumps(value, ensure_ascii=False).encode()) > MAX_CONFIG_BYTES:
        raise ValueError(f"must be at most {MAX_CONFIG_BYTES} bytes as JSON")
    return value


Config = Annotated[dict[str, Any], AfterValidator(_config)]
FieldName = Annotated[str, Field(min_length=1, max_length=64, pattern=DISPLAY_TEXT_PATTERN)]


class CreateIntegrationBody(Strict):
    provider: str = Field(min_length=1, max_length=64)
    credentials: dict[FieldName, Any] = Field(repr=False, max_length=32)
    label: Label | None = None
    config: Config = Field(default_factory=dict)

    def to_request(self) -> NewStaticIntegration:
        return NewStaticIntegration(self.provider, dict(self.credentials), self.label, dict(self.config))


class PatchIntegrationBody(Strict):
    label: Label | None = None
    config: Config | None = None
    status: Literal["active", "inactive"] | None = None

    @model_validator(mode="after")
    def _something(self) -> PatchIntegrationBody:
        if not self.model_fields_set:
            raise ValueError("give at least one of label, config, status")
        if "config" in self.model_fields_set and self.config is None:
            raise ValueError("config: give an object ({} to clear it), not null")
        if "status" in self.model_fields_set and self.status is None:
            raise ValueError("status: give 'active' or 'inactive', not null")
        return self

    def to_request(self) -> IntegrationPatch:
        return IntegrationPatch({name: getattr(self, name) for name in sorted(self.model_fields_set)})


class ListIntegrationsQuery(Strict):
    provider: str | None = Field(None, min_length=1, max_length=64, pattern=DISPLAY_TEXT_PATTERN)
    status: Status | None = None
    page_size: int = Field(50, ge=1, le=100)
    page_token: str | None = Field(None, min_length=1, max_length=512)

    def to_request(self) -> ListQuery:
        status = self.status.value if self.status is not None else None
        return ListQuery(self.provider, status, self.page_size, self.page_token)
