"""How a connect flow's callback ends: the return URL's parameters, the popup's result message, and the words for
each failure (never a secret: codes and descriptions only)."""

from __future__ import annotations

from dataclasses import dataclass

from shared.domain.models import OAuthState
from shared.errors import BrokerError, DependencyUnavailable, ProviderError

MESSAGE_TYPE = "broker:connect"
MESSAGE_FIELDS = ("integration_id", "error", "error_description")
REFUSALS = {
    "unknown": "this sign-in link is not valid: start again from the application",
    "used": "this sign-in link was already used: start again from the application",
    "expired": "this sign-in link has expired: start again from the application",
    "foreign_browser": "this sign-in was started in another browser: start again from the application",
}


@dataclass(frozen=True)
class Ending:
    """How a callback ends: a redirect to `location`, or (popup flows) the result page posting `message` to
    exactly `origin`."""

    location: str
    message: dict[str, str] | None = None
    origin: str | None = None


def ending(record: OAuthState, result: dict[str, str]) -> Ending:
    """`result`: `integration_id`, `status`, `refreshable`, or `error` and `error_description`."""
    from oauthlib.common import add_params_to_uri  # here: a refused callback (unknown state) does not load it

    location = str(add_params_to_uri(record.return_to, list(result.items()))) if record.return_to else ""
    if record.message_origin is None:
        return Ending(location)
    status = "connected" if "integration_id" in result else "failed"
    message = {"type": MESSAGE_TYPE, "flow_id": str(record.id), "status": status}
    message |= {name: result[name] for name in MESSAGE_FIELDS if name in result}
    return Ending(location, message, record.message_origin)


def redirect_error(error: BrokerError) -> str:
    if isinstance(error, ProviderError):
        return "temporarily_unavailable" if error.transient else "provider_error"
    if isinstance(error, DependencyUnavailable):  # the secret store (or another backing service) is down: retry
        return "temporarily_unavailable"
    return error.code if error.http_status < 500 else "server_error"


def describe(error: BrokerError) -> str:
    if isinstance(error, ProviderError):
        return f"the provider could not complete the connection ({error.oauth_error})"
    if error.http_status >= 500:
        return "the connection could not be saved; nothing was stored, please try again"
    return error.message[:200]
