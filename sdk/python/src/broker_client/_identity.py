"""How the client proves who it is to the token endpoint: an API key, a Google-signed ID token, or both.

With both, the ID token goes in `X-Serverless-Authorization` (Cloud Run's invoker check) and the key in
`Authorization` (the broker's own check); with an ID token only, it goes in `Authorization`, where both Cloud Run
and the broker (`TOKEN_INVOKERS`) accept it.
"""

from __future__ import annotations

import threading
from typing import Any


class GoogleIdToken:
    """An ID token for `audience` from the runtime's Google credentials (the metadata server on Cloud Run and GKE,
    or a service-account key in GOOGLE_APPLICATION_CREDENTIALS), fetched when needed and reused until google-auth
    says it is about to expire."""

    def __init__(self, audience: str) -> None:
        try:
            import google.auth.transport.requests  # noqa: F401 - fail at construction, not on the first fetch
        except ImportError as missing:
            raise ImportError(
                "id_token_audience needs google-auth: pip install 'integrations-broker-client[google]'"
            ) from missing
        self.audience = audience
        self._credentials: Any = None
        self._lock = threading.Lock()

    @property
    def stale(self) -> bool:
        """Whether the next `value()` makes a network call (the async client then runs it in a thread)."""
        return self._credentials is None or not self._credentials.valid

    def value(self) -> str:
        from google.auth.transport.requests import Request
        from google.oauth2 import id_token

        with self._lock:
            if self._credentials is None:
                self._credentials = id_token.fetch_id_token_credentials(  # type: ignore[no-untyped-call]
                    self.audience, request=Request()
                )
            if not self._credentials.valid:
                self._credentials.refresh(Request())
            return str(self._credentials.token)


class CallerIdentity:
    def __init__(self, api_key: str | None, id_token_audience: str | None) -> None:
        if not api_key and not id_token_audience:
            raise ValueError("give api_key, id_token_audience, or both")
        self._api_key = api_key
        self.id_token = GoogleIdToken(id_token_audience) if id_token_audience else None

    @property
    def stale(self) -> bool:
        return self.id_token is not None and self.id_token.stale

    def headers(self) -> dict[str, str]:
        if self.id_token is None:
            return {"Authorization": f"Bearer {self._api_key}"}
        token = self.id_token.value()
        if self._api_key is None:
            return {"Authorization": f"Bearer {token}"}
        return {"Authorization": f"Bearer {self._api_key}", "X-Serverless-Authorization": f"Bearer {token}"}

    def __repr__(self) -> str:  # never the key
        return f"CallerIdentity(api_key={'set' if self._api_key else None}, id_token={self.id_token is not None})"
