"""Request shapes of the connect endpoints (pydantic, unknown fields refused)."""

from __future__ import annotations

from typing import Annotated
from uuid import UUID

from pydantic import Field

from shared.domain.text import DISPLAY_TEXT_PATTERN
from shared.schemas import Strict
from shared.services.connect_sessions import SessionRequest

ENTITY_ID_PATTERN = r"^[\x21-\x7e]{1,255}$"  # as the authenticators require: printable ASCII, no spaces
ProviderId = Annotated[str, Field(min_length=1, max_length=64, pattern=DISPLAY_TEXT_PATTERN)]


class CreateSessionBody(Strict):
    entity_id: str = Field(min_length=1, max_length=255, pattern=ENTITY_ID_PATTERN)
    allowed_origin: str = Field(min_length=1, max_length=2048)
    allowed_providers: list[ProviderId] | None = Field(None, min_length=1, max_length=100)
    integration_id: UUID | None = None
    label: str | None = Field(None, min_length=1, max_length=200, pattern=DISPLAY_TEXT_PATTERN)

    def to_request(self) -> SessionRequest:
        providers = list(self.allowed_providers) if self.allowed_providers is not None else None
        return SessionRequest(self.entity_id, self.allowed_origin, providers, self.integration_id, self.label)


class FlowQuery(Strict):
    wait: str = Field("0", pattern=r"^[0-9]{1,2}$")  # seconds, ASCII digits (0-10): a long poll

    @property
    def seconds(self) -> float:
        return float(min(int(self.wait), 10))
