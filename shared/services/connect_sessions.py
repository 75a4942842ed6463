"""Connect sessions and connect flows' status: the product's backend mints a session for one entity; the hosted
Connect page and the JS SDK authenticate with it, and read how their flow ended."""

from __future__ import annotations

import hmac
import math
import re
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any
from uuid import UUID, uuid4

from shared.config import Settings
from shared.domain.connect_ports import ConnectSessionRepository, FlowRecords
from shared.domain.models import AuditEvent, ConnectSession, OAuthState
from shared.domain.oauth import digest
from shared.domain.ports import AuditLog, Clock, IntegrationRepository
from shared.errors import FlowNotFound, NotFound, OriginNotAllowed, SessionExpired, SessionInvalid
from shared.providers.catalog import Catalog

TOKEN_PREFIX = "cs_"
TOKEN_RE = re.compile(r"cs_[A-Za-z0-9_-]{43}")  # the prefix and 256 random bits, base64url (fullmatch)
MAX_WAIT = 10.0  # seconds a status read may wait for the flow to end (the SDK long-polls)
POLL_INTERVAL = 0.5


@dataclass(frozen=True)
class SessionRequest:
    entity_id: str
    allowed_origin: str
    allowed_providers: list[str] | None = None
    integration_id: UUID | None = None
    label: str | None = None


@dataclass(frozen=True)
class MintedSession:
    token: str = field(repr=False)
    expires_at: datetime
    connect_url: str = field(repr=False)  # holds the token


@dataclass
class ConnectSessions:
    settings: Settings
    catalog: Catalog
    sessions: ConnectSessionRepository
    flows: FlowRecords
    integrations: IntegrationRepository
    clock: Clock
    audit: AuditLog
    sleep: Callable[[float], None] = time.sleep

    def create(self, caller: str, request: SessionRequest) -> MintedSession:
        """A session for `request.entity_id`, valid CONNECT_SESSION_TTL seconds; only the token's SHA-256 is kept."""
        origin = request.allowed_origin.rstrip("/")
        if origin not in self.settings.connect_origins:
            raise OriginNotAllowed("allowed_origin must be one of ALLOWED_ORIGINS (scheme://host[:port])")
        providers = None
        if request.allowed_providers is not None:  # ids or aliases, kept as catalog ids (unknown: 404)
            providers = list(dict.fromkeys(self.catalog.get(p).id for p in request.allowed_providers))
        if request.integration_id is not None:
            existing = self.integrations.get(request.integration_id, request.entity_id)
            if existing is None:
                raise NotFound("integration not found", code="integration_not_found")
        token = TOKEN_PREFIX + secrets.token_urlsafe(32)
        now = self.clock.now()
        session = ConnectSession(
            id=uuid4(), token_hash=digest(token), entity_id=request.entity_id, allowed_origin=origin,
            created_at=now, expires_at=now + timedelta(seconds=self.settings.connect_session_ttl),
            allowed_providers=providers, integration_id=request.integration_id, label=request.label,
            created_by=caller[:255],
        )  # fmt: skip
        self.sessions.add(session)
        detail: dict[str, Any] = {"session_id": str(session.id), "allowed_origin": origin}
        self.audit.record(
            AuditEvent(caller, "connect.session", "created", request.entity_id, request.integration_id, None, detail)
        )
        connect_url = f"{self.settings.base_url}/connect?session={token}"
        return MintedSession(token, session.expires_at, connect_url)

    def authenticate(self, token: str) -> ConnectSession:
        """The live session of `token`; 401 `invalid_session` (unknown, tampered) or `session_expired`."""
        if not TOKEN_RE.fullmatch(token):
            raise SessionInvalid("the connect session token is not valid")
        wanted = digest(token)
        found = self.sessions.find(wanted)
        if found is None or not hmac.compare_digest(found.token_hash, wanted):
            raise SessionInvalid("the connect session token is not valid")
        if found.expires_at <= self.clock.now():
            raise SessionExpired("this connect session has expired: ask the application for a new one")
        return found

    def flow_status(self, entity_id: str, flow_id: UUID, wait: float = 0.0) -> dict[str, Any]:
        """`{"status": pending | connected | failed | expired, "integration_id"?, "error"?}` for the entity's flow,
        waiting up to `wait` seconds (at most MAX_WAIT) while it is pending."""
        polls = math.ceil(min(max(wait, 0.0), MAX_WAIT) / POLL_INTERVAL)  # counted: the sleep is injected
        while True:
            record = self.flows.flow(flow_id, entity_id)
            if record is None:
                raise FlowNotFound("no connect flow with this id")
            view = flow_view(record, self.clock.now())
            if view["status"] != "pending" or polls <= 0:
                return view
            polls -= 1
            self.sleep(POLL_INTERVAL)


def flow_view(record: OAuthState, now: datetime) -> dict[str, Any]:
    if record.outcome == "connected":
        return {"status": "connected", "integration_id": str(record.outcome_integration_id)}
    if record.outcome is not None:
        return {"status": "failed", "error": record.outcome_error or "server_error"}
    return {"status": "expired" if record.expires_at <= now else "pending"}
