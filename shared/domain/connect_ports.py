"""Ports of the connect experience: connect sessions and the connect flows' outcomes."""

from __future__ import annotations

from typing import Protocol
from uuid import UUID

from shared.domain.models import ConnectSession, OAuthState


class ConnectSessionRepository(Protocol):
    def add(self, session: ConnectSession) -> None: ...

    def find(self, token_hash: str) -> ConnectSession | None:
        """The session whose token has this SHA-256 (hex), expired or not; None when there is none."""
        ...


class FlowRecords(Protocol):
    """A connect flow is its handshake row (oauth_states): its id is the flow id."""

    def flow(self, flow_id: UUID, entity_id: str) -> OAuthState | None:
        """The flow, when it belongs to `entity_id`; None otherwise (another entity's flow is not found)."""
        ...

    def record_outcome(self, flow_id: UUID, outcome: str, integration_id: UUID | None, error: str | None) -> None:
        """Say how the flow ended (`connected` with its integration, or `failed` with the error code)."""
        ...
