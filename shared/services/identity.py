"""Who the connected account is: from the verified ID token, the userinfo endpoint or the token response."""

from __future__ import annotations

from typing import Any

from shared.domain.models import Account
from shared.domain.oauth import TokenSet
from shared.domain.ports import ProviderDirectory, TokenEndpoint
from shared.domain.text import is_display_text, is_identifier
from shared.errors import ProviderError
from shared.providers.catalog import Provider

# The columns that keep them (entity_integrations.account_*).
MAX_SUBJECT, MAX_EMAIL, MAX_LOGIN = 255, 320, 255


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
        return str(document) or None
    return None


def _shown(value: str | None, limit: int) -> str | None:
    """An email or login kept for display only: dropped (not cleaned) when it is too long or holds control or
    bidi characters."""
    return value if value is not None and len(value) <= limit and is_display_text(value) else None


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
    if not is_identifier(subject, MAX_SUBJECT):  # the subject keys the integration: never trimmed or cut
        raise ProviderError(
            f"the provider named the account with control characters, spaces at its ends or over {MAX_SUBJECT} "
            "characters", oauth_error="invalid_subject", transient=False,
        )  # fmt: skip
    email, login = read_path(document, identity.email), read_path(document, identity.login)
    return Account(subject, _shown(email, MAX_EMAIL), _shown(login, MAX_LOGIN))
