"""The refresh policy, pure: when to refresh, how long to back off, what a failure means."""

from __future__ import annotations

import random
from datetime import datetime, timedelta

from shared.domain.models import CredentialType, Integration, Status
from shared.providers.catalog import Provider

BACKOFF_BASE = timedelta(seconds=30)
BACKOFF_CAP = timedelta(hours=1)
PERMANENT_ERRORS = frozenset({"invalid_grant", "invalid_client", "unauthorized_client", "access_denied"})


def should_refresh(
    integration: Integration, provider: Provider, now: datetime, *, min_ttl: int = 0, force: bool = False
) -> tuple[bool, str]:
    """Decide whether to refresh now, and say why (the reason is logged and counted)."""
    if integration.credential_type != CredentialType.OAUTH2:
        return False, "static_credentials"
    if integration.status != Status.ACTIVE:
        return False, f"status_{integration.status.value}"
    if integration.secret_ref is None or integration.secret_version is None:
        return False, "no_refresh_token"
    if integration.next_attempt_after is not None and now < integration.next_attempt_after:
        return False, "cooling_down"
    if force:
        return True, "forced"
    expires_at = integration.token_expires_at
    if expires_at is None:
        return False, "does_not_expire"
    if expires_at <= now:
        return True, "expired"
    if expires_at - now <= timedelta(seconds=max(provider.refresh_margin, min_ttl)):
        return True, "expires_soon"
    return False, "fresh"


def token_usable(integration: Integration, now: datetime, min_ttl: int = 0) -> bool:
    """Whether the stored access token can still be handed out (even if a refresh is due or failed)."""
    if integration.access_token_ciphertext is None:
        return False
    expires_at = integration.token_expires_at
    return expires_at is None or expires_at - now > timedelta(seconds=min_ttl)


def backoff(failures: int, retry_after: float | None = None, rng: random.Random | None = None) -> timedelta:
    """Exponential backoff with full jitter (30 s · 2^(n-1), capped at 1 h); never sooner than Retry-After."""
    ceiling = min(BACKOFF_CAP, BACKOFF_BASE * (2 ** max(0, failures - 1)))
    delay = timedelta(seconds=(rng or random).uniform(ceiling.total_seconds() / 2, ceiling.total_seconds()))
    if retry_after is not None:
        delay = max(delay, timedelta(seconds=min(retry_after, BACKOFF_CAP.total_seconds())))
    return delay


def is_permanent(oauth_error: str) -> bool:
    return oauth_error in PERMANENT_ERRORS
