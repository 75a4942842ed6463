"""The composition root's callers part (a base of shared.bootstrap.Container): who may call the functions —
browser users (the authenticator), internal backends (API keys, Google-signed ID tokens) and Cloud Scheduler —
each built lazily, once per instance."""

from __future__ import annotations

from functools import cached_property
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import requests

    from shared.adapters.internal_auth import GoogleIdTokens, InternalCallers, SchedulerCaller
    from shared.config import Settings
    from shared.domain.ports import Authenticator


class CallerComponents:
    settings: Settings

    if TYPE_CHECKING:  # what the Container provides

        @property
        def egress(self) -> requests.Session: ...

    @cached_property
    def authenticator(self) -> Authenticator:
        s = self.settings
        if s.auth_mode == "oidc":
            from shared.adapters.caller_auth import OidcAuthenticator

            assert s.auth_issuer is not None  # settings validation guarantees it
            return OidcAuthenticator(
                s.auth_issuer, s.auth_audience, entity_claim=s.auth_entity_claim, jwks_url=s.auth_jwks_url,
                timeout=s.provider_timeout, session=self.egress,
            )  # fmt: skip
        from shared.adapters.dev_auth import DevHeaderAuthenticator

        return DevHeaderAuthenticator()

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
