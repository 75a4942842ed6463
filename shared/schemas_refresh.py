"""The body of a refresh shard (a Cloud Tasks task the dispatcher enqueued), parsed strictly."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from shared.domain.fanout import MAX_SHARD_SIZE


class ShardBody(BaseModel):
    model_config = ConfigDict(extra="forbid", defer_build=True)  # built by the first shard, not by every start

    provider: str = Field(min_length=1, max_length=64, pattern=r"^[a-z][a-z0-9]*(-[a-z0-9]+)*$")
    limit: int = Field(ge=1, le=MAX_SHARD_SIZE, strict=True)
