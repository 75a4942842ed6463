"""The catalog's named hooks: every name the schema allows is implemented, and each does what it says."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from importlib import resources
from pathlib import Path

import pytest
import yaml

from shared.domain import hooks, oauth
from shared.errors import CatalogError, ProviderError
from shared.providers.catalog import Provider, load_catalog

SCHEMA = json.loads(resources.files("shared.providers").joinpath("schema.json").read_text(encoding="utf-8"))
NOW = datetime(2026, 1, 1, tzinfo=UTC)


def _provider(**fields: object) -> Provider:
    return Provider(
        id="p", display_name="P", auth_mode="oauth2", authorization_url="https://p.example/a",
        token_url="https://p.example/t", **fields,  # type: ignore[arg-type]
    )  # fmt: skip


def test_every_hook_the_schema_allows_is_implemented_and_no_other():
    assert set(SCHEMA["$defs"]["hook"]["enum"]) == hooks.IMPLEMENTED


def test_every_hook_a_builtin_entry_names_is_implemented():
    named = {hook for provider in load_catalog() for hook in provider.hooks}
    assert named <= hooks.IMPLEMENTED


def test_an_entry_naming_an_unknown_hook_is_refused(tmp_path: Path):
    entry = {"display_name": "A", "auth_mode": "oauth2", "authorization_url": "https://a.example/a",
             "token_url": "https://a.example/t", "hooks": ["acme_magic"]}  # fmt: skip
    path = tmp_path / "providers.yaml"
    path.write_text(yaml.safe_dump({"providers": {"acme": entry}}), encoding="utf-8")
    with pytest.raises(CatalogError) as refused:
        load_catalog(str(path))
    assert "acme_magic" in refused.value.message


SLACK_REPLY = {
    "ok": True, "access_token": "xoxb-bot", "token_type": "bot", "scope": "channels:read",
    "authed_user": {"id": "U1", "scope": "search:read,users:read", "access_token": "xoxp-user",
                    "token_type": "user", "refresh_token": "xoxe-1-user", "expires_in": 43200},
}  # fmt: skip


def test_slack_user_tokens_are_read_from_authed_user():
    slack = _provider(hooks=("slack_authed_user",), scope_param="user_scope", scope_separator=",")
    tokens = oauth.parse_token_reply(slack, 200, json.dumps(SLACK_REPLY), NOW)
    assert (tokens.access_token, tokens.refresh_token) == ("xoxp-user", "xoxe-1-user")
    assert tokens.scopes == ["search:read", "users:read"]
    assert tokens.expires_at is not None
    assert int((tokens.expires_at - NOW).total_seconds()) == 43200
    only_user = {k: v for k, v in SLACK_REPLY.items() if k not in ("access_token", "token_type", "scope")}
    assert oauth.parse_token_reply(slack, 200, json.dumps(only_user), NOW).access_token == "xoxp-user"
    assert oauth.parse_token_reply(slack, 200, json.dumps(only_user), NOW).raw["authed_user"]["id"] == "U1"


def test_slack_bot_tokens_stay_at_the_top_level():
    slack = _provider(hooks=("slack_authed_user",), scope_separator=",")
    tokens = oauth.parse_token_reply(slack, 200, json.dumps(SLACK_REPLY), NOW)
    assert tokens.access_token == "xoxb-bot"
    assert tokens.scopes == ["channels:read"]


def test_slack_errors_answered_with_200_are_refusals():
    slack = _provider(hooks=("slack_authed_user",))
    with pytest.raises(ProviderError) as refused:
        oauth.parse_token_reply(slack, 200, json.dumps({"ok": False, "error": "invalid_refresh_token"}), NOW)
    assert refused.value.oauth_error == "invalid_refresh_token"


def test_salesforce_keeps_the_instance_url_and_identity_url():
    salesforce = _provider(hooks=("salesforce_instance_url",))
    reply = {"access_token": "00D!x", "instance_url": "https://acme.my.salesforce.com", "token_type": "Bearer",
             "id": "https://login.salesforce.com/id/00D/005", "issued_at": "1", "signature": "s"}  # fmt: skip
    tokens = oauth.parse_token_reply(salesforce, 200, json.dumps(reply), NOW)
    assert hooks.kept_metadata(salesforce, tokens) == {
        "instance_url": "https://acme.my.salesforce.com", "identity_url": "https://login.salesforce.com/id/00D/005",
    }  # fmt: skip
    assert hooks.kept_metadata(_provider(), tokens) == {}, "without the hook nothing is kept"
    hostile = {**reply, "instance_url": "javascript:alert(1)"}
    assert hooks.kept_metadata(salesforce, oauth.parse_token_reply(salesforce, 200, json.dumps(hostile), NOW)) == {
        "identity_url": "https://login.salesforce.com/id/00D/005"
    }, "only https URLs are kept"


def test_revocation_token_access_token_sends_the_access_token_even_with_a_refresh_token():
    from shared.domain.models import ClientCredentials
    from shared.domain.revocation import Tokens, revocation_request

    provider = _provider(revocation_url="https://p.example/revoke", revocation_token="access_token")
    request = revocation_request(provider, ClientCredentials("c", "s"), Tokens("rt", "at"))
    assert request is not None
    assert request.form is not None
    assert (request.form["token"], request.form["token_type_hint"]) == ("at", "access_token")
    default = revocation_request(_provider(revocation_url="https://p.example/revoke"), ClientCredentials("c", "s"),
                                 Tokens("rt", "at"))  # fmt: skip
    assert default is not None
    assert default.form is not None
    assert default.form["token"] == "rt"
