"""Query parameters of the internal endpoints, parsed strictly (bad input is a 4xx, never a 500)."""

from __future__ import annotations

import re
from uuid import UUID

import flask

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
    unknown = set(request.args) - {"min_ttl", "force_refresh"}
    if unknown:
        raise BadRequest(f"unknown query parameter(s): {', '.join(sorted(unknown))[:200]}", code="unknown_parameter")
    raw_ttl = request.args.get("min_ttl", "0")
    if not TTL_DIGITS.fullmatch(raw_ttl) or int(raw_ttl) > MAX_MIN_TTL:
        raise ValidationFailed(f"min_ttl must be an integer from 0 to {MAX_MIN_TTL} (seconds)")
    force = request.args.get("force_refresh", "false").lower()
    if force not in ("true", "false", "1", "0"):
        raise ValidationFailed("force_refresh must be true or false")
    return int(raw_ttl), force in ("true", "1")
