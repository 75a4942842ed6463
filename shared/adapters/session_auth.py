"""Browser callers with a connect session: `Authorization: Bearer cs_…` names the session's entity; anything else
goes to the configured authenticator (an ID token, or the dev header)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from shared.http import bearer_credential

if TYPE_CHECKING:
    from shared.domain.models import ConnectSession
    from shared.domain.ports import Authenticator
    from shared.services.connect_sessions import ConnectSessions

SESSION_PREFIX = "cs_"  # shared.services.connect_sessions.TOKEN_PREFIX (not imported: ID-token callers never load it)


@dataclass(frozen=True)
class Caller:
    entity_id: str
    session: ConnectSession | None = None


class SessionAwareAuthenticator:
    def __init__(self, inner: Authenticator, sessions: Callable[[], ConnectSessions]) -> None:
        self._inner = inner
        self._sessions = sessions

    @property
    def inner(self) -> Authenticator:
        return self._inner

    def caller(self, request: Any) -> Caller:
        token = bearer_credential(request.headers.get("Authorization", ""))
        if token is not None and token.startswith(SESSION_PREFIX):
            session = self._sessions().authenticate(token)
            return Caller(session.entity_id, session)
        return Caller(self._inner.entity_id(request))

    def entity_id(self, request: Any) -> str:
        return self.caller(request).entity_id
