"""The catalog's named hooks, pure: the quirks data cannot express, each a small function named in an entry's
`hooks:` (schema.json lists the names; a test keeps the list and IMPLEMENTED equal).

- slack_authed_user: oauth.v2.access answers the bot token at the top level and the user token under
  `authed_user`; with `scope_param: user_scope` the user token is the grant's (`token_fields`).
- salesforce_instance_url: API calls go to the org's `instance_url`, given with every token response; it and the
  identity URL `id` are kept as the integration's provider metadata (`kept_metadata`).
- microsoft_tenant_issuer: ID tokens from the common/organizations endpoints carry the user's tenant issuer
  `https://login.microsoftonline.com/{tid}/v2.0`; `iss` must be exactly that for the token's own `tid`
  (`expected_issuer`).
- github_token_revocation, dropbox_bearer_revocation: revocation requests (shared.domain.revocation).
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from shared.domain.oauth import TokenSet
    from shared.providers.catalog import Provider

SLACK_AUTHED_USER = "slack_authed_user"
SALESFORCE_INSTANCE_URL = "salesforce_instance_url"
MICROSOFT_TENANT_ISSUER = "microsoft_tenant_issuer"
REVOCATION_HOOKS = frozenset({"github_token_revocation", "dropbox_bearer_revocation"})
IMPLEMENTED = frozenset({SLACK_AUTHED_USER, SALESFORCE_INSTANCE_URL, MICROSOFT_TENANT_ISSUER}) | REVOCATION_HOOKS

_TENANT_ID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
_HTTPS_URL = re.compile(r"https://[A-Za-z0-9.-]+(:[0-9]+)?(/[\x21-\x7e]*)?")
_SLACK_USER_FIELDS = ("access_token", "refresh_token", "expires_in", "scope", "token_type")


def token_fields(provider: Provider, params: dict[str, Any]) -> dict[str, Any]:
    """The token response as the grant's fields: Slack's user token lifted from `authed_user` when the entry asks
    for user scopes. A Slack error (HTTP 200, `ok: false`) keeps its `error` for the parser to refuse."""
    if not provider.has_hook(SLACK_AUTHED_USER) or "error" in params:
        return params
    user = params.get("authed_user")
    if provider.scope_param != "user_scope" or not isinstance(user, dict) or "access_token" not in user:
        return params
    lifted = {key: value for key, value in params.items() if key not in _SLACK_USER_FIELDS}
    lifted.update({key: user[key] for key in _SLACK_USER_FIELDS if key in user})
    lifted.setdefault("token_type", "Bearer")
    return lifted


def kept_metadata(provider: Provider, tokens: TokenSet) -> dict[str, str]:
    """What an integration keeps from a token response for its callers (never a secret): Salesforce's hosts."""
    if not provider.has_hook(SALESFORCE_INSTANCE_URL):
        return {}
    kept = {"instance_url": tokens.raw.get("instance_url"), "identity_url": tokens.raw.get("id")}
    return {
        key: value for key, value in kept.items()
        if isinstance(value, str) and len(value) <= 2048 and _HTTPS_URL.fullmatch(value)
    }  # fmt: skip


def expected_issuer(provider: Provider, claims: dict[str, Any]) -> str | None:
    """The `iss` an ID token of `provider` must carry (its claims already signature-checked); None: none is
    acceptable, so the token is refused."""
    if provider.has_hook(MICROSOFT_TENANT_ISSUER):
        tenant = claims.get("tid")
        if isinstance(tenant, str) and _TENANT_ID.fullmatch(tenant):
            return f"https://login.microsoftonline.com/{tenant}/v2.0"
        return None
    return provider.issuer or provider.id_token_issuer
