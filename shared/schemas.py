"""Request bodies of the public API (pydantic, unknown fields refused) and their mapping to use-case inputs."""

from __future__ import annotations

from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field

from shared.services.connect import StartRequest


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", str_max_length=2048)


class StartBody(Strict):
    provider: str = Field(min_length=1, max_length=64)
    scopes: list[str] = Field(default_factory=list, max_length=50)
    return_to: str | None = Field(None, max_length=2048)
    label: str | None = Field(None, min_length=1, max_length=200, pattern=r"^[^\x00-\x1f\x7f]+$")
    integration_id: UUID | None = None

    def to_request(self) -> StartRequest:
        return StartRequest(self.provider, list(self.scopes), self.return_to, self.label, self.integration_id)
