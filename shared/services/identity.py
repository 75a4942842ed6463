"""Who the connected account is: from the verified ID token, the userinfo endpoint or the token response."""

from __future__ import annotations

from typing import Any

from shared.domain.models import Account
from shared.domain.oauth import TokenSet
from shared.domain.ports import ProviderDirectory, TokenEndpoint
from shared.errors import ProviderError
from shared.providers.catalog import Provider


def read_path(document: Any, path: str | None) -> str | None:
    """A dotted path into nested JSON (`authed_user.id`); numbers become strings (GitHub ids are numbers)."""
    if not path:
        return None
    for part in path.split("."):
        if not isinstance(document, dict):
            return None
        document = document.get(part)
    if isinstance(document, bool) or document is None:
        return None
    if isinstance(document, int | str):
        text = str(document).strip()
        return text[:320] if text else None
    return None


def read_account(
    provider: Provider, tokens: TokenSet, client_id: str, directory: ProviderDirectory, endpoint: TokenEndpoint
) -> Account:
    identity = provider.identity
    if identity is None:
        return Account(subject=None)
    if identity.source == "id_token":
        if tokens.id_token is None:
            raise ProviderError("the provider sent no ID token", oauth_error="missing_id_token", transient=False)
        document: dict[str, Any] = directory.verify_id_token(provider, tokens.id_token, client_id)
    elif identity.source == "userinfo":
        document = endpoint.userinfo(directory.resolve(provider), tokens.access_token)
    else:
        document = tokens.raw
    subject = read_path(document, identity.subject)
    if subject is None:
        raise ProviderError(
            "the provider did not say who the account is", oauth_error="missing_subject", transient=False
        )
    return Account(subject, read_path(document, identity.email), read_path(document, identity.login))
