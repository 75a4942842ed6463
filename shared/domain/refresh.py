"""The refresh policy, pure: when to refresh, how long to back off, what a failure means."""

from __future__ import annotations

import random
from collections.abc import Collection
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Literal

from shared.domain.models import CredentialType, Integration, Status

if TYPE_CHECKING:
    from shared.providers.catalog import Provider

BACKOFF_BASE = timedelta(seconds=30)
BACKOFF_CAP = timedelta(hours=1)
PERMANENT_ERRORS = frozenset({"invalid_grant", "invalid_client", "unauthorized_client", "access_denied"})
# Our own findings that end a grant as surely as invalid_grant: the pinned master secret is gone.
PERMANENT_BROKER_ERRORS = frozenset({"secret_not_found"})
# A refusal without a transient marker (a 4xx, `invalid_request`, ...) is permanent when it repeats this many times
# in a row; the backoff between attempts spreads them over minutes, so a provider's bad minute does not end a grant.
REFUSALS_BEFORE_PERMANENT = 3
# A forced refresh this soon after the last one answers the token that one produced: callers that all saw the
# same 401 cause one provider call, not one each.
FORCE_REFRESH_QUIET = timedelta(seconds=5)

Failure = Literal["permanent", "refused", "transient"]
# An idle refresh token is refreshed this long before its window ends (a quarter of the window when that is less).
KEEP_ALIVE_LEAD = timedelta(days=7)
# `integration.expiring_soon` is emitted this long before a refresh token's absolute end.
EXPIRY_WARNING = timedelta(days=7)


def refresh_token_lifetimes(
    provider: Provider, now: datetime, reported_end: datetime | None, previous_end: datetime | None, *,
    new_grant: bool,
) -> tuple[datetime | None, datetime | None]:  # fmt: skip
    """(`refresh_token_expires_at`, `keep_alive_at`) after a connection (`new_grant`) or a refresh at `now`.

    The end is what the provider said (`refresh_token_expires_in`), else for a new grant the catalog's absolute
    lifetime, else the end known before. With an idle lifetime, the refresh job refreshes again before the window
    that this refresh opened ends — unless the absolute end comes first (refreshing cannot move it).
    """
    end = reported_end
    if end is None and new_grant and provider.refresh_token_absolute_lifetime is not None:
        end = now + timedelta(seconds=provider.refresh_token_absolute_lifetime)
    elif end is None and not new_grant:
        end = previous_end
    keep_alive = None
    if provider.refresh_token_idle_lifetime is not None:
        idle = timedelta(seconds=provider.refresh_token_idle_lifetime)
        keep_alive = now + idle - min(idle / 4, KEEP_ALIVE_LEAD)
        if end is not None and keep_alive >= end:
            keep_alive = None
    return end, keep_alive


def expiry_warning_due(integration: Integration, now: datetime) -> bool:
    """Whether `integration.expiring_soon` is due: the refresh token ends within EXPIRY_WARNING and no event was
    emitted for this end yet (once per window; SqlRefreshStore.warn_expiring says the same in SQL)."""
    end = integration.refresh_token_expires_at
    return (
        integration.status == Status.ACTIVE
        and end is not None
        and end - now <= EXPIRY_WARNING
        and integration.expiry_warned_for != end
    )


def should_refresh(
    integration: Integration, provider: Provider, now: datetime, *, min_ttl: int = 0, force: bool = False,
    quiet: timedelta = timedelta(0),
) -> tuple[bool, str]:  # fmt: skip
    """Decide whether to refresh now, and say why (the reason is logged and counted). `quiet`: a forced refresh
    this soon after the last refresh is not made (callers pass FORCE_REFRESH_QUIET)."""
    if integration.credential_type != CredentialType.OAUTH2:
        return False, "static_credentials"
    if integration.status != Status.ACTIVE:
        return False, f"status_{integration.status.value}"
    if integration.secret_ref is None or integration.secret_version is None:
        return False, "no_refresh_token"
    if integration.next_attempt_after is not None and now < integration.next_attempt_after:
        return False, "cooling_down"
    if force:
        last = integration.last_refreshed_at
        if last is not None and now - last < quiet and integration.access_token_ciphertext is not None:
            return False, "just_refreshed"
        return True, "forced"
    if integration.keep_alive_at is not None and integration.keep_alive_at <= now:
        return True, "keep_alive"  # the refresh token's idle window ends soon: a refresh renews it
    expires_at = integration.token_expires_at
    if expires_at is None:
        return False, "does_not_expire"
    if expires_at <= now:
        return True, "expired"
    ttl = effective_min_ttl(integration, min_ttl)
    if expires_at - now <= timedelta(seconds=max(provider.refresh_margin, ttl)):
        return True, "expires_soon"
    return False, "fresh"


def effective_min_ttl(integration: Integration, min_ttl: int) -> int:
    """`min_ttl`, capped when even a fresh token could not meet it.

    The provider's lifetime is read off the current token (expiry minus when it was obtained). When `min_ttl` is at
    least that long, a refresh cannot produce a token that satisfies it, so it is capped at half the lifetime: each
    token is refreshed for `min_ttl` at most once, and the answer carries the token's real `expires_at`.
    """
    if min_ttl <= 0 or integration.token_expires_at is None or integration.last_refreshed_at is None:
        return max(0, min_ttl)
    lifetime = int((integration.token_expires_at - integration.last_refreshed_at).total_seconds())
    return min_ttl if min_ttl < lifetime else max(0, lifetime // 2)


def token_usable(integration: Integration, now: datetime, min_ttl: int = 0) -> bool:
    """Whether the stored access token can still be handed out (even if a refresh is due or failed)."""
    if integration.access_token_ciphertext is None:
        return False
    expires_at = integration.token_expires_at
    ttl = effective_min_ttl(integration, min_ttl)
    return expires_at is None or expires_at - now > timedelta(seconds=ttl)


def servable_until(now: datetime, max_margin: int, min_ttl: int) -> datetime:
    """A token valid past this instant can be handed out with no refresh decision for any provider whose margin is
    at most `max_margin` (the catalog's largest) and for `min_ttl` (one second of slack for the clock moving on)."""
    return now + timedelta(seconds=max(max_margin, min_ttl) + 1)


def servable_as_is(integration: Integration, until: datetime) -> bool:
    """Whether the stored access token can be handed out as it is: an active OAuth integration whose token is
    valid past `until` (servable_until). The token hot path audits a read in the read's own transaction exactly
    when this holds (PgTokenReads says the same in SQL)."""
    return (
        integration.status == Status.ACTIVE
        and integration.credential_type == CredentialType.OAUTH2
        and integration.access_token_ciphertext is not None
        and integration.token_expires_at is not None
        and integration.token_expires_at > until
    )


def backoff(failures: int, retry_after: float | None = None, rng: random.Random | None = None) -> timedelta:
    """Exponential backoff with full jitter (30 s · 2^(n-1), capped at 1 h); never sooner than Retry-After."""
    ceiling = min(BACKOFF_CAP, BACKOFF_BASE * (2 ** max(0, failures - 1)))
    delay = timedelta(seconds=(rng or random).uniform(ceiling.total_seconds() / 2, ceiling.total_seconds()))
    if retry_after is not None:
        delay = max(delay, timedelta(seconds=min(retry_after, BACKOFF_CAP.total_seconds())))
    return delay


def classify_failure(
    oauth_error: str, transient: bool, provider_permanent: Collection[str], refusals_before: int
) -> tuple[Failure, int]:
    """What a failed refresh means, and the count of definitive refusals in a row after it.

    `permanent`: the grant is gone (a standard error, one the catalog lists for this provider, or the pinned secret
    is missing). `refused`: a refusal without a transient marker that has not yet repeated
    REFUSALS_BEFORE_PERMANENT times (it becomes `permanent` when it has). `transient`: try again after a backoff.
    """
    if oauth_error in PERMANENT_ERRORS or oauth_error in PERMANENT_BROKER_ERRORS:
        return "permanent", refusals_before
    if oauth_error in provider_permanent:  # the catalog's provider-specific ones (GitHub's bad_refresh_token)
        return "permanent", refusals_before
    if transient:
        return "transient", 0
    refusals = refusals_before + 1
    return ("permanent" if refusals >= REFUSALS_BEFORE_PERMANENT else "refused"), refusals
