"""The one error hierarchy. Every error carries a stable machine `code` and an HTTP status.

`shared.http.error_response` is the single place that turns these into responses; messages must never
contain a secret (tokens, client secrets, state, verifiers, codes), so they say what was expected and what
was found in terms of names and shapes, not values.
"""

from __future__ import annotations

from typing import Any


class BrokerError(Exception):
    code = "internal_error"
    http_status = 500

    def __init__(self, message: str, *, code: str | None = None, details: dict[str, Any] | None = None):
        super().__init__(message)
        self.message = message
        if code is not None:
            self.code = code
        self.details = details or {}


class ConfigurationError(BrokerError):
    """Settings are missing, malformed or contradictory; raised at start-up, never per request."""

    code = "configuration_error"
    http_status = 500


class BadRequest(BrokerError):
    code = "bad_request"
    http_status = 400


class ValidationFailed(BrokerError):
    code = "validation_failed"
    http_status = 422


class Unauthenticated(BrokerError):
    code = "unauthenticated"
    http_status = 401


class Forbidden(BrokerError):
    code = "forbidden"
    http_status = 403


class NotFound(BrokerError):
    code = "not_found"
    http_status = 404


class MethodNotAllowed(BrokerError):
    code = "method_not_allowed"
    http_status = 405


class Conflict(BrokerError):
    code = "conflict"
    http_status = 409


class PayloadTooLarge(BrokerError):
    code = "payload_too_large"
    http_status = 413


class UnsupportedMediaType(BrokerError):
    code = "unsupported_media_type"
    http_status = 415


class RateLimited(BrokerError):
    code = "rate_limited"
    http_status = 429


class UnknownProvider(NotFound):
    code = "unknown_provider"


class ProviderNotConfigured(Conflict):
    code = "provider_not_configured"


class CatalogError(ConfigurationError):
    """The provider catalog (built-in or the deployment's file) does not match its schema."""

    code = "catalog_invalid"


class SecretNotFound(BrokerError):
    """A secret or secret version the row points at does not exist (or was destroyed)."""

    code = "secret_not_found"
    http_status = 500


class SecretCorrupted(BrokerError):
    """A payload failed its integrity check (CRC32C or AES-GCM tag)."""

    code = "secret_corrupted"
    http_status = 500


class DependencyUnavailable(BrokerError):
    """A backing service (database, secret store, provider) cannot be reached right now."""

    code = "dependency_unavailable"
    http_status = 503


class SecretStoreUnavailable(DependencyUnavailable):
    """The secret store failed or cannot be reached (an outage, a quota, a missing grant): try again later."""

    code = "secret_store_unavailable"


class TaskQueueUnavailable(DependencyUnavailable):
    """The task queue service (Cloud Tasks) failed or cannot be reached: the dispatch is tried again."""

    code = "task_queue_unavailable"


class QueueNotFound(TaskQueueUnavailable):
    """A provider's refresh queue does not exist (terraform creates one per configured provider)."""

    code = "queue_not_found"


class FanoutNotConfigured(Conflict):
    """The refresh fan-out was asked for, but TASKS_LOCATION (the queues' region) is not set."""

    code = "fanout_not_configured"


class ProviderError(BrokerError):
    """The provider refused or failed a request. `transient` says whether trying again later can help."""

    code = "provider_error"
    http_status = 502

    def __init__(self, message: str, *, oauth_error: str, transient: bool, retry_after: float | None = None):
        super().__init__(message, details={"retry_after": retry_after} if retry_after is not None else None)
        self.oauth_error = oauth_error
        self.transient = transient


class SessionInvalid(Unauthenticated):
    """A connect session token that is unknown, malformed or tampered with."""

    code = "invalid_session"


class SessionExpired(Unauthenticated):
    """A connect session past its expiry (at most 30 minutes after it was minted)."""

    code = "session_expired"


class SessionNotPermitted(Forbidden):
    """A connect session asked for what it was not minted for (another provider, another integration, an
    operation the Connect page does not need)."""

    code = "session_not_permitted"


class OriginNotAllowed(BadRequest):
    """A connect session's `allowed_origin`, or a popup flow's opener, is not in ALLOWED_ORIGINS."""

    code = "origin_not_allowed"


class FlowNotFound(NotFound):
    """No connect flow with this id for this entity (another entity's flow is not found either)."""

    code = "flow_not_found"
