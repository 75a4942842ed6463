"""What an instance checks before it serves: client credentials against the catalog (pure, no process)."""

from __future__ import annotations

import pytest

from shared.providers.catalog import load_catalog
from shared.startup import client_problems

CATALOG = load_catalog()


@pytest.mark.parametrize(
    ("environ", "client_secrets", "expected"),
    [
        ({"GITHUB_CLIENT_ID": "cid-value-1", "GITHUB_CLIENT_SECRET": "cs-value-2"}, True, []),
        ({"GITHUB_CLIENT_ID": "cid-value-1"}, False, []),
        ({"GITHUB_CLIENT_ID": "cid-value-1"}, True, ["GITHUB_CLIENT_SECRET: required with GITHUB_CLIENT_ID"]),
        ({"GITHUB_CLIENT_ID": "cid-value-1", "GITHUB_CLIENT_SECRET": "  "}, True, ["GITHUB_CLIENT_SECRET: required"]),
        ({"GITHUB_CLIENT_SECRET": "cs-value-2"}, False, ["GITHUB_CLIENT_SECRET: set without GITHUB_CLIENT_ID"]),
        ({"AZURE_AD_CLIENT_ID": "cid-value-1"}, False, ["AZURE_AD_CLIENT_ID: 'azure-ad' is an alias"]),
        ({"STRIPE_CLIENT_ID": "not ours"}, True, []),  # not a catalog provider: another program's variable
        ({"OPENAI_CLIENT_SECRET": "x"}, True, []),  # a static-credential provider has no OAuth client
    ],
)
def test_client_credentials_come_in_pairs_named_by_provider_id(environ, client_secrets, expected):
    found = client_problems(CATALOG, environ, client_secrets=client_secrets)
    assert len(found) == len(expected), found
    for problem, start in zip(found, expected, strict=True):
        assert problem.startswith(start)
        assert "value-" not in problem, "names, never values"
