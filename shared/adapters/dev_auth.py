"""AUTH_MODE=dev's authenticator, apart from the OIDC one: a dev-mode function loads neither PyJWT nor requests."""

from __future__ import annotations

import re

import flask

from shared.errors import Unauthenticated

ENTITY_ID_RE = re.compile(r"[\x21-\x7e]{1,255}")  # printable ASCII, no spaces: safe in logs and labels (fullmatch)


class DevHeaderAuthenticator:
    """AUTH_MODE=dev: the entity id comes from `X-Entity-Id` (settings refuse this mode in production)."""

    def entity_id(self, request: flask.Request) -> str:
        value = request.headers.get("X-Entity-Id", "")
        if not ENTITY_ID_RE.fullmatch(value):
            raise Unauthenticated("dev auth mode: send the entity id in the X-Entity-Id header (1-255 printable)")
        return value
