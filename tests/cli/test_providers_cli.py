"""`broker providers list|validate`: the catalog as this deployment sees it, and the start-up validation of a file."""

from __future__ import annotations

import json

import pytest

from shared.cli import main

BAD = """providers:
  gitlab:
    display_name: GitLab
    auth_mode: oauth2
    authorization_url: https://gitlab.com/oauth/authorize
    token_url: https://gitlab.com/oauth/token
    scopes: read_user
    colour: orange
  acme:
    display_name: Acme
    auth_mode: carrier-pigeon
"""
GOOD = """providers:
  gitlab:
    display_name: GitLab
    auth_mode: oauth2
    authorization_url: https://gitlab.com/oauth/authorize
    token_url: https://gitlab.com/oauth/token
    scopes: [read_user]
    refresh_token_rotates: true
    default_token_lifetime: 7200
"""


@pytest.fixture(autouse=True)
def _environment(monkeypatch, tmp_path):
    for name in ("PROVIDERS_FILE", "GITHUB_CLIENT_ID", "GITHUB_CLIENT_SECRET", "GITLAB_CLIENT_ID"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("DATABASE_URL", f"sqlite:///{tmp_path}/unused.db")
    monkeypatch.setenv("GOOGLE_CLIENT_ID", "google-client")
    monkeypatch.setenv("GOOGLE_CLIENT_SECRET", "google-client-secret-value")


def test_list_says_what_is_configured_and_how_each_provider_refreshes(capsys):
    assert main(["providers", "list", "--json"]) == 0
    providers = {p["id"]: p for p in json.loads(capsys.readouterr().out)}
    assert providers["google"]["configured"] is True
    assert providers["github"]["configured"] is False
    assert providers["github"]["auth_mode"] == "oauth2"
    assert {p["auth_mode"] for p in providers.values()} >= {"oauth2", "api_key"}
    assert all(p["configured"] for p in providers.values() if p["auth_mode"] != "oauth2"), "nothing to configure"
    assert isinstance(providers["google"]["refresh_token_rotates"], bool)
    assert main(["providers", "list"]) == 0
    table = capsys.readouterr().out
    assert "google" in table
    assert "OAuth providers configured" in table


def test_validate_lists_every_error_and_exits_1(tmp_path, capsys):
    path = tmp_path / "providers.yaml"
    path.write_text(BAD, encoding="utf-8")
    assert main(["providers", "validate", str(path)]) == 1
    err = capsys.readouterr().err
    assert f"{path}: 3 problem(s)" in err, err
    assert "providers.gitlab.scopes" in err
    assert "colour" in err
    assert "providers.acme.auth_mode" in err


def test_validate_accepts_a_good_file_and_checks_it_against_the_environment(tmp_path, capsys, monkeypatch):
    path = tmp_path / "providers.yaml"
    path.write_text(GOOD, encoding="utf-8")
    assert main(["providers", "validate", str(path)]) == 0
    assert capsys.readouterr().out.startswith(f"{path}: valid (")
    monkeypatch.setenv("GITLAB_CLIENT_ID", "gitlab-client")  # an id without its secret: refused at start
    assert main(["providers", "validate", str(path)]) == 1
    assert "GITLAB_CLIENT_SECRET: required with GITLAB_CLIENT_ID" in capsys.readouterr().err
    monkeypatch.setenv("PROVIDERS_FILE", str(path))
    monkeypatch.delenv("GITLAB_CLIENT_ID")
    assert main(["providers", "validate"]) == 0, "default: PROVIDERS_FILE"


def test_validate_of_a_missing_or_broken_file_is_an_error_not_a_trace(tmp_path, capsys):
    assert main(["providers", "validate", str(tmp_path / "nope.yaml")]) == 1
    err = capsys.readouterr().err
    assert "cannot read the catalog file" in err
    (tmp_path / "broken.yaml").write_text("providers: [", encoding="utf-8")
    assert main(["providers", "validate", str(tmp_path / "broken.yaml")]) == 1
    assert "not valid YAML" in capsys.readouterr().err
