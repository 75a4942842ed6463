"""The composition root's callers part (a base of shared.bootstrap.Container): who may call the functions —
browser users (the authenticator), internal backends (API keys, Google-signed ID tokens) and Cloud Scheduler —
each built lazily, once per instance."""

from __future__ import annotations

from functools import cached_property
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import requests

    from shared.adapters.internal_auth import GoogleIdTokens, InternalCallers, SchedulerCaller
    from shared.adapters.session_auth import SessionAwareAuthenticator
    from shared.config import Settings
    from shared.domain.ports import Authenticator
    from shared.services.connect_sessions import ConnectSessions


class CallerComponents:
    settings: Settings

    if TYPE_CHECKING:  # what the Container provides

        @property
        def egress(self) -> requests.Session: ...
        @property
        def connect_sessions(self) -> ConnectSessions: ...

    @cached_property
    def authenticator(self) -> SessionAwareAuthenticator:
        """The entity behind a browser call: a connect session's (`Bearer cs_…`), else the ID token's (or, in dev
        mode, the X-Entity-Id header's)."""
        from shared.adapters.session_auth import SessionAwareAuthenticator

        s = self.settings
        inner: Authenticator
        if s.auth_mode == "oidc":
            from shared.adapters.caller_auth import OidcAuthenticator

            assert s.auth_issuer is not None  # settings validation guarantees it
            inner = OidcAuthenticator(
                s.auth_issuer, s.auth_audience, entity_claim=s.auth_entity_claim, jwks_url=s.auth_jwks_url,
                timeout=s.provider_timeout, session=self.egress,
            )  # fmt: skip
        else:
            from shared.adapters.dev_auth import DevHeaderAuthenticator

            inner = DevHeaderAuthenticator()
        return SessionAwareAuthenticator(inner, lambda: self.connect_sessions)

    @cached_property
    def google_id_tokens(self) -> GoogleIdTokens:
        from shared.adapters.internal_auth import GoogleIdTokens

        return GoogleIdTokens(session=self.egress)

    @cached_property
    def internal_callers(self) -> InternalCallers:
        from shared.adapters.internal_auth import InternalCallers

        s = self.settings
        return InternalCallers(
            [key.get_secret_value() for key in s.internal_api_keys], invokers=s.token_invokers,
            audience=s.token_audience, cidrs=s.allowed_cidrs,
            google=self.google_id_tokens if s.token_invokers else None, open_when_unconfigured=not s.is_production,
        )  # fmt: skip

    @cached_property
    def scheduler_caller(self) -> SchedulerCaller:
        from shared.adapters.internal_auth import SchedulerCaller

        s = self.settings
        google = self.google_id_tokens if s.scheduler_service_account else None
        return SchedulerCaller(s.scheduler_service_account, s.refresh_audience, google)
