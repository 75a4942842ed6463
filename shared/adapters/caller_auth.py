"""Who is calling a browser-facing function: the entity id, from a verified ID token or (dev) a header."""

from __future__ import annotations

import re

import flask

from shared.errors import Unauthenticated

ENTITY_ID_RE = re.compile(r"^[\x21-\x7e]{1,255}$")  # printable ASCII, no spaces: safe in logs and labels


class DevHeaderAuthenticator:
    """AUTH_MODE=dev: the entity id comes from `X-Entity-Id` (settings refuse this mode in production)."""

    def entity_id(self, request: flask.Request) -> str:
        value = request.headers.get("X-Entity-Id", "")
        if not ENTITY_ID_RE.match(value):
            raise Unauthenticated("dev auth mode: send the entity id in the X-Entity-Id header (1-255 printable)")
        return value
