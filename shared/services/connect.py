"""The connect flow: start (authorization URL, single-use state) and complete (the provider's redirect back)."""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from uuid import UUID, uuid4

from shared.config import Settings
from shared.domain import oauth
from shared.domain.connect_ports import FlowRecords
from shared.domain.envelope import Keyring
from shared.domain.models import AuditEvent, ClientCredentials, ConnectSession, CredentialType, OAuthState
from shared.domain.ports import (
    AuditLog,
    Clock,
    IntegrationRepository,
    OAuthStateRepository,
    ProviderDirectory,
    SecretStores,
    TokenEndpoint,
)
from shared.domain.urls import match_return_url
from shared.errors import (
    BadRequest,
    BrokerError,
    NotFound,
    OriginNotAllowed,
    ProviderNotConfigured,
    SessionNotPermitted,
    ValidationFailed,
)
from shared.providers.catalog import Catalog, Provider
from shared.services.connect_endings import REFUSALS, Ending, describe, ending, redirect_error
from shared.services.credentials import store_connection
from shared.services.identity import read_account

log = logging.getLogger("broker.connect")

PKCE_PURPOSE = "pkce_verifier"
CALLBACK_PATH = "/oauth/callback"
SCOPE_RE = re.compile(r"[\x21\x23-\x5b\x5d-\x7e]{1,200}")  # RFC 6749 scope-token characters (fullmatch)
PROVIDER_TEXT_RE = re.compile(r"[^\x20-\x7e]")


def binding_cookie_name(state_hash: str) -> str:
    """One cookie per flow, so two flows started in two tabs do not overwrite each other's binding."""
    return f"broker_oauth_{state_hash[:16]}"


@dataclass(frozen=True)
class StartRequest:
    provider: str
    scopes: list[str] = field(default_factory=list)
    return_to: str | None = None
    label: str | None = None
    integration_id: UUID | None = None
    mode: str = "redirect"  # popup: the callback ends on a result page that posts a message to the opener


@dataclass(frozen=True)
class Started:
    authorization_url: str
    expires_at: datetime
    cookie_name: str
    binding: str | None = field(repr=False)
    flow_id: UUID | None = None


class StateRefused(BrokerError):
    """The callback's state is unknown, used, expired or from another browser: a plain 400, no redirect."""

    code = "invalid_state"
    http_status = 400


@dataclass
class ConnectFlow:
    settings: Settings
    catalog: Catalog
    states: OAuthStateRepository
    integrations: IntegrationRepository
    secrets: SecretStores
    keyring: Keyring
    clock: Clock
    token_endpoint: TokenEndpoint
    directory: ProviderDirectory
    audit: AuditLog
    flows: FlowRecords | None = None

    @property
    def redirect_uri(self) -> str:
        return self.settings.base_url + CALLBACK_PATH

    def oauth_provider(self, provider_id: str) -> tuple[Provider, ClientCredentials]:
        provider = self.catalog.get(provider_id).with_base_url(self.settings.base_url)
        if provider.auth_mode != "oauth2":
            raise BadRequest(
                f"provider {provider.id!r} uses static credentials: create it with POST /integrations",
                code="not_an_oauth_provider",
            )
        client = self.settings.provider_credentials(provider.id)
        if client is None:
            raise ProviderNotConfigured(f"provider {provider.id!r} is not configured on this deployment")
        if provider.needs_issuer:
            raise ProviderNotConfigured(
                f"provider {provider.id!r} is per tenant: set its issuer ({provider.issuer_template}) in PROVIDERS_FILE"
            )
        return provider, client

    def start(
        self, entity_id: str, request: StartRequest, session: ConnectSession | None = None, origin: str | None = None
    ) -> Started:
        """`session`: the connect session that authenticated the caller (its limits apply); `origin`: the request's
        Origin header (a popup flow started with an ID token posts its result there)."""
        provider, client = self.oauth_provider(request.provider)
        for scope in request.scopes:
            if not SCOPE_RE.fullmatch(scope):
                raise ValidationFailed(
                    "each scope must be 1-200 visible characters without spaces", code="invalid_scope"
                )
        if session is not None:
            request = _within_session(session, provider.id, request)
        message_origin = self._message_origin(request.mode, session, origin)
        wanted = request.return_to or next(iter(self.settings.return_urls), None)
        return_to = match_return_url(wanted, self.settings.return_urls) if wanted is not None else None
        if return_to is None and not (message_origin and request.return_to is None):
            raise BadRequest("return_to is not in ALLOWED_RETURN_URLS", code="return_url_not_allowed")
        granted: list[str] = []
        if request.integration_id is not None:
            existing = self.integrations.get(request.integration_id, entity_id)
            if existing is None or existing.provider != provider.id:
                raise NotFound("integration not found", code="integration_not_found")
            granted = existing.granted_scopes  # incremental re-consent: what was granted is asked for again
        scopes = list(dict.fromkeys([*provider.scopes, *granted, *request.scopes]))
        provider = self.directory.resolve(provider)
        state = oauth.new_secret_token()
        state_hash = oauth.digest(state)
        verifier, challenge = oauth.pkce_pair() if provider.pkce else (None, None)
        # A session's token authenticates its flow's start and status; a cookie binds only where the browser can
        # keep one: calls from the broker's own pages (the Connect page), or without a session.
        own_page = origin == self.settings.base_url.rstrip("/")
        binding = oauth.new_secret_token() if self.settings.oauth_browser_binding and (
            session is None or own_page) else None  # fmt: skip
        now = self.clock.now()
        record = OAuthState(
            id=uuid4(),
            state_hash=state_hash,
            entity_id=entity_id,
            provider=provider.id,
            created_at=now,
            expires_at=now + timedelta(seconds=self.settings.oauth_state_ttl),
            return_to=return_to or "",
            requested_scopes=scopes,
            integration_id=request.integration_id,
            browser_binding_hash=oauth.digest(binding) if binding else None,
            label=request.label,
            session_id=session.id if session else None,
            message_origin=message_origin,
        )
        if verifier is not None:
            sealed, key_version = self.keyring.seal(verifier.encode(), purpose=PKCE_PURPOSE, record=str(record.id))
            record.code_verifier_ciphertext, record.key_version = sealed, key_version
        self.states.add(record)
        url = oauth.authorization_url(
            provider, client_id=client.client_id, redirect_uri=self.redirect_uri, scopes=scopes, state=state,
            code_challenge=challenge,
        )  # fmt: skip
        return Started(url, record.expires_at, binding_cookie_name(state_hash), binding, record.id)

    def _message_origin(self, mode: str, session: ConnectSession | None, origin: str | None) -> str | None:
        if mode != "popup":
            return None
        if session is not None:
            return session.allowed_origin
        if origin is None or origin not in self.settings.connect_origins:
            raise OriginNotAllowed("a popup flow posts its result to the calling page: its Origin must be allowed")
        return origin

    def complete(self, params: dict[str, str], cookies: dict[str, str]) -> str:
        """Finish the flow; return where to send the browser. StateRefused when the state does not hold."""
        return self.end(params, cookies).location

    def end(self, params: dict[str, str], cookies: dict[str, str]) -> Ending:
        """Finish the flow: its outcome is recorded (GET /connect/flows/{id}), and the browser is redirected to
        the return URL or, for a popup flow, shown the result page. StateRefused when the state does not hold."""
        now = self.clock.now()
        state = params.get("state", "")
        if not state or len(state) > 512:
            raise StateRefused("this sign-in link is not valid: start again from the application")
        state_hash = oauth.digest(state)
        binding = cookies.get(binding_cookie_name(state_hash))
        binding_hash = oauth.digest(binding) if binding else None
        record = self.states.consume(state_hash, binding_hash, now)
        if record is None:
            reason = self.states.why_refused(state_hash, binding_hash, now)
            self.audit.record(_event("oauth.callback", "refused", None, None, {"reason": reason}))
            raise StateRefused(REFUSALS.get(reason, REFUSALS["unknown"]), code=f"state_{reason}")
        try:
            result = self._finish(record, params)
        except Exception as exc:  # noqa: BLE001 - the state is spent: always send the browser back with an error
            error = exc if isinstance(exc, BrokerError) else BrokerError(f"unexpected {type(exc).__name__}")
            # Only the class and code are logged: cloud-client messages can echo request data.
            log.warning("connect flow failed for provider %s: %s (%s)", record.provider, error.code, type(exc).__name__)
            self._audit_quietly(_event("oauth.connect", "failure", record, None, {"error": error.code}))
            result = {"error": redirect_error(error), "error_description": describe(error)}
        self._record_outcome(record, result)
        return ending(record, result)

    def _record_outcome(self, record: OAuthState, result: dict[str, str]) -> None:
        if self.flows is None:
            return
        try:
            if "integration_id" in result:
                self.flows.record_outcome(record.id, "connected", UUID(result["integration_id"]), None)
            else:
                self.flows.record_outcome(record.id, "failed", None, result.get("error", "server_error")[:64])
        except Exception:  # noqa: BLE001 - the browser still goes back; the status then reads expired, not lost
            log.error("could not record the outcome of connect flow %s", record.id)

    def _audit_quietly(self, event: AuditEvent) -> None:
        try:
            self.audit.record(event)
        except Exception:  # noqa: BLE001 - a failed audit write must not keep the browser from going back
            log.error("could not record audit event %s", event.action)

    def _finish(self, record: OAuthState, params: dict[str, str]) -> dict[str, str]:
        if "error" in params:
            error = PROVIDER_TEXT_RE.sub("", params["error"])[:64] or "access_denied"
            description = PROVIDER_TEXT_RE.sub("", params.get("error_description", ""))[:200]
            self.audit.record(_event("oauth.connect", "denied", record, None, {"error": error}))
            return {"error": error, "error_description": description or "the provider refused"}
        code = params.get("code", "")
        if not code or len(code) > 4096:
            raise BadRequest("the provider sent no authorization code", code="missing_code")
        provider, client = self.oauth_provider(record.provider)
        provider = self.directory.resolve(provider)
        if "iss" in params and provider.issuer is not None and params["iss"] != provider.issuer:
            # RFC 9207: the response came from another authorization server than the one the flow started at.
            raise BadRequest("the authorization response names another issuer", code="issuer_mismatch")
        verifier = None
        if record.code_verifier_ciphertext is not None and record.key_version is not None:
            verifier = self.keyring.open(
                record.code_verifier_ciphertext,
                key_version=record.key_version,
                purpose=PKCE_PURPOSE,
                record=str(record.id),
            ).decode()
        request = oauth.token_request(provider, client, oauth.code_grant(code, self.redirect_uri, verifier))
        tokens = self.token_endpoint.exchange(request, provider, self.clock.now())
        account = read_account(provider, tokens, client.client_id, self.directory, self.token_endpoint)
        integration = store_connection(
            record=record, provider=provider, tokens=tokens, account=account, credential_type=CredentialType.OAUTH2,
            integrations=self.integrations, stores=self.secrets, keyring=self.keyring, clock=self.clock,
            secret_prefix=self.settings.secret_prefix,
        )  # fmt: skip
        refreshable = "true" if integration.secret_ref else "false"
        return {"integration_id": str(integration.id), "status": "connected", "refreshable": refreshable}


def _within_session(session: ConnectSession, provider: str, request: StartRequest) -> StartRequest:
    """The request as the session allows it: its providers only, its integration when it was minted for one."""
    if not session.permits(provider):
        raise SessionNotPermitted(f"this connect session does not offer provider {provider!r}")
    if session.integration_id is not None and request.integration_id not in (None, session.integration_id):
        raise SessionNotPermitted("this connect session reconnects one integration only")
    integration_id = request.integration_id or session.integration_id
    return replace(request, integration_id=integration_id, label=request.label or session.label)


def _event(
    action: str, outcome: str, record: OAuthState | None, integration_id: UUID | None, detail: dict[str, object]
) -> AuditEvent:
    return AuditEvent(
        actor=f"entity:{record.entity_id}" if record else "anonymous",
        action=action,
        outcome=outcome,
        entity_id=record.entity_id if record else None,
        integration_id=integration_id or (record.integration_id if record else None),
        provider=record.provider if record else None,
        detail=detail,
    )
