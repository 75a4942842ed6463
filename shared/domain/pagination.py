"""Cursor pagination on (created_at, id): opaque page tokens bound to the filters they were issued for."""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
from dataclasses import dataclass
from datetime import datetime
from uuid import UUID

from shared.errors import BadRequest

MAX_TOKEN_LENGTH = 512


@dataclass(frozen=True)
class Cursor:
    """The last item of a page: the next page starts strictly after it."""

    created_at: datetime
    id: UUID


def filters_key(**filters: str | None) -> str:
    """A short digest of the filters, so a token cannot be replayed with other filters (it would skip rows)."""
    text = "&".join(f"{name}={value or ''}" for name, value in sorted(filters.items()))
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def encode_cursor(cursor: Cursor, key: str) -> str:
    payload = {"c": cursor.created_at.isoformat(), "i": str(cursor.id), "f": key}
    raw = json.dumps(payload, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(token: str, key: str) -> Cursor:
    """The cursor in `token`; BadRequest `invalid_page_token` when it is not one this API issued for `key`."""
    invalid = BadRequest(
        "page_token is not a next_page_token from this listing (with the same filters)", code="invalid_page_token"
    )
    if not token or len(token) > MAX_TOKEN_LENGTH:
        raise invalid
    try:
        payload = json.loads(base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)))
        created_at = datetime.fromisoformat(payload["c"])
        cursor = Cursor(created_at, UUID(payload["i"]))
        same_filters = payload["f"] == key
    except (binascii.Error, ValueError, KeyError, TypeError, UnicodeDecodeError):
        raise invalid from None
    if not same_filters or created_at.tzinfo is None:
        raise invalid
    return cursor
