"""Pure pieces of the integrations API: revocation requests (RFC 7009 and hooks) and page tokens."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime
from uuid import uuid4

import pytest

from shared.domain.models import ClientCredentials
from shared.domain.pagination import Cursor, decode_cursor, encode_cursor, filters_key
from shared.domain.revocation import Tokens, revocation_request
from shared.errors import BrokerError
from shared.providers.catalog import load_catalog

CATALOG = load_catalog()
CLIENT = ClientCredentials("client-id", "client-secret-value")
BOTH = Tokens("refresh-token-value", "access-token-value")


def test_rfc7009_prefers_the_refresh_token_with_basic_client_auth():
    request = revocation_request(CATALOG.get("google"), CLIENT, BOTH)
    assert request is not None
    assert (request.method, request.url) == ("POST", "https://oauth2.googleapis.com/revoke")
    assert request.form == {"token": "refresh-token-value", "token_type_hint": "refresh_token"}
    assert request.basic_auth == ("client-id", "client-secret-value")
    assert "refresh-token-value" not in repr(request)
    assert "client-secret-value" not in repr(request)


def test_rfc7009_with_post_auth_and_json_encoding():
    salesforce = revocation_request(CATALOG.get("salesforce"), CLIENT, Tokens(None, "access-token-value"))
    assert salesforce is not None
    assert salesforce.basic_auth is None
    assert salesforce.form == {
        "token": "access-token-value", "token_type_hint": "access_token",
        "client_id": "client-id", "client_secret": "client-secret-value",
    }  # fmt: skip
    notion = revocation_request(CATALOG.get("notion"), CLIENT, BOTH)
    assert notion is not None
    assert (notion.form, notion.json_body) == (
        None,
        {"token": "refresh-token-value", "token_type_hint": "refresh_token"},
    )
    assert notion.headers["Notion-Version"]


def test_hooks_for_github_and_dropbox():
    github = revocation_request(CATALOG.get("github"), CLIENT, BOTH)
    assert github is not None
    assert (github.method, github.url) == ("DELETE", "https://api.github.com/applications/client-id/token")
    assert github.json_body == {"access_token": "access-token-value"}
    dropbox = revocation_request(CATALOG.get("dropbox"), CLIENT, BOTH)
    assert dropbox is not None
    assert dropbox.headers["Authorization"] == "Bearer access-token-value"
    assert (dropbox.form, dropbox.json_body) == (None, None)


def test_nothing_to_send_without_an_endpoint_or_a_token():
    assert revocation_request(CATALOG.get("microsoft"), CLIENT, BOTH) is None
    assert revocation_request(CATALOG.get("google"), CLIENT, Tokens(None, None)) is None
    assert revocation_request(CATALOG.get("github"), CLIENT, Tokens("refresh-token-value", None)) is None
    no_url = replace(CATALOG.get("google"), revocation_url=None)
    assert revocation_request(no_url, CLIENT, BOTH) is None


def test_page_tokens_round_trip_and_are_bound_to_their_filters():
    cursor = Cursor(datetime(2026, 1, 2, 3, 4, 5, 678901, tzinfo=UTC), uuid4())
    key = filters_key(provider="openai", status=None)
    token = encode_cursor(cursor, key)
    assert decode_cursor(token, key) == cursor
    assert filters_key(provider="openai", status="active") != key
    with pytest.raises(BrokerError) as caught:
        decode_cursor(token, filters_key(provider=None, status=None))
    assert caught.value.code == "invalid_page_token"


@pytest.mark.parametrize("token", ["", "!!!", "e30", "x" * 600, "eyJjIjoieCIsImkiOiJ5IiwiZiI6InoifQ"])
def test_garbage_page_tokens_are_a_400(token):
    with pytest.raises(BrokerError) as caught:
        decode_cursor(token, "z")
    assert (caught.value.code, caught.value.http_status) == ("invalid_page_token", 400)
