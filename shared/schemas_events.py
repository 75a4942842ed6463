"""Query parameters and bodies of the events operator API (pydantic, unknown fields refused)."""

from __future__ import annotations

import re
from typing import Annotated
from uuid import UUID

from pydantic import AwareDatetime, BeforeValidator, Field, model_validator

from shared.domain.event_ports import EventSelection
from shared.schemas import Strict

ENTITY_PATTERN = r"^[\x21-\x7e]{1,255}$"  # as callers' entity ids are (shared/adapters/caller_auth.py)
RFC3339 = re.compile(
    r"[0-9]{4}-[0-9]{2}-[0-9]{2}[Tt][0-9]{2}:[0-9]{2}:[0-9]{2}(\.[0-9]{1,9})?([Zz]|[+-][0-9]{2}:[0-9]{2})"
)


def _rfc3339(value: object) -> object:
    """Only an RFC 3339 date-time with its offset (pydantic alone would also take 0 or "0" as Unix time)."""
    if value is not None and not (isinstance(value, str) and RFC3339.fullmatch(value)):
        raise ValueError("must be an RFC 3339 date-time with a UTC offset, e.g. 2026-06-01T12:00:00Z")
    return value


DateTime = Annotated[AwareDatetime, BeforeValidator(_rfc3339)]


class NoQuery(Strict):
    """An endpoint that takes no query parameters."""


class ListEventsQuery(Strict):
    integration_id: UUID | None = None
    entity_id: str | None = Field(None, min_length=1, max_length=255, pattern=ENTITY_PATTERN)
    page_size: int = Field(50, ge=1, le=100)
    page_token: str | None = Field(None, pattern=r"^[0-9]{1,18}$")

    @model_validator(mode="after")
    def _one_filter(self) -> ListEventsQuery:
        if (self.integration_id is None) == (self.entity_id is None):
            raise ValueError("give exactly one of integration_id and entity_id")
        return self

    def selection(self) -> EventSelection:
        return EventSelection(integration_id=self.integration_id, entity_id=self.entity_id)


class ReplayBody(Strict):
    event_ids: list[UUID] = Field(default_factory=list, max_length=100)
    integration_id: UUID | None = None
    since: DateTime | None = None
    until: DateTime | None = None

    @model_validator(mode="after")
    def _one_way(self) -> ReplayBody:
        if bool(self.event_ids) == (self.integration_id is not None):
            raise ValueError("give event_ids (1-100), or integration_id with an optional since/until range")
        if self.event_ids and (self.since or self.until):
            raise ValueError("since/until select a range of one integration's events: give integration_id with them")
        if self.since and self.until and self.since >= self.until:
            raise ValueError("since must be before until")
        return self

    def selection(self) -> EventSelection:
        return EventSelection(
            event_ids=tuple(dict.fromkeys(self.event_ids)), integration_id=self.integration_id, since=self.since,
            until=self.until,
        )  # fmt: skip
