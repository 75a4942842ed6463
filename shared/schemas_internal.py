"""Query parameters of the internal endpoints, parsed strictly (bad input is a 4xx, never a 500)."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from uuid import UUID

import flask

from shared.domain.models import AuditQuery
from shared.errors import BadRequest, NotFound, ValidationFailed

TOKEN_PATH = re.compile(r"/token/([^/]+)/?")
MAX_MIN_TTL = 86400
TTL_DIGITS = re.compile(r"[0-9]{1,6}")  # ASCII digits only: str.isdigit() also says yes to "²", "①" and "٣"


def token_target(request: flask.Request) -> UUID:
    match = TOKEN_PATH.fullmatch(request.path)
    if match is None:
        raise NotFound("expected GET /token/{integration_id}", code="not_found")
    try:
        return UUID(match.group(1))
    except ValueError:
        raise NotFound("integration not found", code="integration_not_found") from None


def token_options(request: flask.Request) -> tuple[int, bool]:
    """(min_ttl seconds, force_refresh) from the query string."""
    unknown = set(request.args) - {"min_ttl", "force_refresh", "scopes"}
    if unknown:
        raise BadRequest(f"unknown query parameter(s): {', '.join(sorted(unknown))[:200]}", code="unknown_parameter")
    raw_ttl = request.args.get("min_ttl", "0")
    if not TTL_DIGITS.fullmatch(raw_ttl) or int(raw_ttl) > MAX_MIN_TTL:
        raise ValidationFailed(f"min_ttl must be an integer from 0 to {MAX_MIN_TTL} (seconds)")
    force = request.args.get("force_refresh", "false").lower()
    if force not in ("true", "false", "1", "0"):
        raise ValidationFailed("force_refresh must be true or false")
    return int(raw_ttl), force in ("true", "1")


SCOPE_TOKEN = re.compile(r"[\x21\x23-\x2b\x2d-\x5b\x5d-\x7e]{1,200}")  # RFC 6749 scope characters, no comma
MAX_REQUIRED_SCOPES = 50


def token_scopes(request: flask.Request) -> tuple[str, ...]:
    """`?scopes=a,b`: the scopes the grant must hold (none when absent)."""
    values = request.args.getlist("scopes")
    if not values:
        return ()
    if len(values) > 1:
        raise ValidationFailed("scopes: give it once, comma-separated (scopes=a,b)")
    scopes = tuple(values[0].split(","))
    if len(scopes) > MAX_REQUIRED_SCOPES or not all(SCOPE_TOKEN.fullmatch(scope) for scope in scopes):
        raise ValidationFailed(
            f"scopes must be 1-{MAX_REQUIRED_SCOPES} comma-separated scope names (visible characters, no spaces)",
            code="invalid_scope",
        )
    return scopes


AUDIT_PARAMETERS = frozenset({"integration_id", "entity_id", "action", "since", "limit", "page_token"})
MAX_AUDIT_LIMIT = 500
ID_DIGITS = re.compile(r"[0-9]{1,19}")
MAX_ID = 2**63 - 1
ACTION_RE = re.compile(r"[a-z_]{1,32}(\.[a-z_]{1,32}){0,3}")


def audit_query(request: flask.Request) -> AuditQuery:
    """GET /audit's filters, strictly: unknown or repeated parameters and malformed values are a 4xx."""
    unknown = set(request.args) - AUDIT_PARAMETERS
    if unknown:
        raise BadRequest(f"unknown query parameter(s): {', '.join(sorted(unknown))[:200]}", code="unknown_parameter")
    repeated = sorted(name for name, values in request.args.lists() if len(values) > 1)
    if repeated:
        raise ValidationFailed(f"{', '.join(repeated)}: give each query parameter once")
    args = request.args
    integration_id = None
    if "integration_id" in args:
        try:
            integration_id = UUID(args["integration_id"])
        except ValueError:
            raise ValidationFailed("integration_id must be a UUID") from None
    entity = args.get("entity_id")
    if entity is not None and not 1 <= len(entity) <= 255:
        raise ValidationFailed("entity_id must be 1-255 characters")
    action = args.get("action")
    if action is not None and not ACTION_RE.fullmatch(action):
        raise ValidationFailed("action must look like token.read or integration.delete")
    limit = args.get("limit", "100")
    if not TTL_DIGITS.fullmatch(limit) or not 1 <= int(limit) <= MAX_AUDIT_LIMIT:
        raise ValidationFailed(f"limit must be an integer from 1 to {MAX_AUDIT_LIMIT}")
    page = args.get("page_token")
    if page is not None and not (ID_DIGITS.fullmatch(page) and int(page) <= MAX_ID):  # an audit id is a BIGINT
        raise BadRequest("page_token is not one this endpoint gave", code="invalid_page_token")
    return AuditQuery(
        integration_id=integration_id, entity_id=entity, action=action, since=_since(args.get("since")),
        before_id=int(page) if page is not None else None, limit=int(limit),
    )  # fmt: skip


def _since(raw: str | None) -> datetime | None:
    if raw is None:
        return None
    try:
        moment = datetime.fromisoformat(raw)
    except ValueError:
        moment = None
    if moment is None or moment.tzinfo is None:
        raise ValidationFailed("since must be an RFC 3339 time with its offset (2025-01-31T12:00:00Z)")
    return moment.astimezone(UTC)
