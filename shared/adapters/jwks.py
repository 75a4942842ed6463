"""JSON Web Key Sets fetched under the egress rules (PyJWT's client through a `requests` session).

Apart from shared.adapters.egress so that a provider call (the refresh job, a code exchange) loads no PyJWT.
"""

from __future__ import annotations

import time
from typing import Any

import jwt
import requests


class SessionJwksClient(jwt.PyJWKClient):
    """PyJWT's JWKS client (caching, key selection) fetching through a session instead of urllib, so key sets
    obey the egress rules too (`fetch_data` is the documented override point)."""

    def __init__(self, uri: str, session: requests.Session, **kwargs: Any) -> None:
        super().__init__(uri, **kwargs)
        self._session = session

    def fetch_data(self) -> Any:
        try:
            response = self._session.get(
                self.uri, headers={"Accept": "application/json", **self.headers}, timeout=self.timeout,
                allow_redirects=False,
            )  # fmt: skip
        except requests.RequestException as exc:
            raise jwt.PyJWKClientConnectionError(f"the JWKS is unreachable: {type(exc).__name__}") from None
        if response.status_code != 200:
            raise jwt.PyJWKClientConnectionError(f"the JWKS endpoint answered HTTP {response.status_code}")
        try:
            document = response.json()
        except ValueError:
            raise jwt.PyJWKClientError("the JWKS endpoint did not answer JSON") from None
        self._last_successful_fetch = time.monotonic()  # as the base class does: starts the refetch cooldown
        return document
