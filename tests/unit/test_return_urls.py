"""The return-URL rule: normalised as a browser would (WHATWG URL Standard), then matched against the allowlist."""

from __future__ import annotations

import pytest

from shared.domain.urls import check_url, match_return_url, normalise_web_url

ALLOWLIST = ["https://app.example.com/settings/", "https://app.example.com/done", "https://xn--bcher-kva.example/x/"]


@pytest.mark.parametrize(
    ("candidate", "expected"),
    [
        ("https://app.example.com/settings/integrations?tab=1", "https://app.example.com/settings/integrations?tab=1"),
        ("https://app.example.com/settings/", "https://app.example.com/settings/"),
        ("https://app.example.com/done", "https://app.example.com/done"),
        # Normalised before matching, and the normalised form is what the browser is sent to.
        ("HTTPS://APP.Example.COM:443/settings/./a/../b?x=1", "https://app.example.com/settings/b?x=1"),
        ("https://app.example.com/settings/a\\b", "https://app.example.com/settings/a/b"),
        ("https://app.example.com/settings/%2e/b", "https://app.example.com/settings/b"),
        ("https://bücher.example/x/y", "https://xn--bcher-kva.example/x/y"),
        ("https://\uff41pp.example.com/settings/", "https://app.example.com/settings/"),  # full-width letters
        ("https://app.example.com/settings/caf\u00e9", "https://app.example.com/settings/caf%C3%A9"),
        # Dot segments that climb out of the allowed path, in every spelling a browser resolves.
        ("https://app.example.com/settings/../admin", None),
        ("https://app.example.com/settings/%2e%2e/admin", None),
        ("https://app.example.com/settings/%2E%2e/admin", None),
        ("https://app.example.com/settings/.%2e/admin", None),
        ("https://app.example.com/settings/..", None),
        ("https://app.example.com/settings/%2e%2e", None),
        ("https://app.example.com/settings\\..\\admin", None),
        ("https://app.example.com/settings/x/../../admin", None),
        ("https://app.example.com/done/..", None),
        ("https://app.example.com/done/.", None),
        # Encoded separators: a server that decodes them would climb out too.
        ("https://app.example.com/settings/..%2fadmin", None),
        ("https://app.example.com/settings/..%5Cadmin", None),
        # Origin and path rules.
        ("https://app.example.com/settingsx", None),
        ("https://app.example.com:444/settings/", None),
        ("http://app.example.com/settings/", None),
        ("https://evil.example.com/settings/", None),
        ("https://app.example.com.evil.example/settings/", None),
        ("https://app.example.com./settings/", None),
        ("https://user@app.example.com/settings/", None),
        ("https://user:pw@app.example.com/settings/", None),
        ("https://app.example.com/settings/#frag", None),
        ("https://app.example.com/settings/#", None),
        ("https://app.example.com/done/more", None),
        ("javascript:alert(1)", None),
        ("//app.example.com/settings/", None),
        ("/settings/", None),
        # Crafted input: refused, never an exception.
        ("https://app.example.com\uff03.evil/settings/", None),
        ("https://app.example.com\uff0fsettings/", None),
        ("https://[app.example.com/settings/", None),
        ("https://app.example.com]/settings/", None),
        ("https://app.example.com:99999/settings/", None),
        ("https://app.example.com/settings/\x00", None),
        ("https://app.example.com/settings/a\x00b", None),
        ("https://app.example.com/settings/\ta", None),
        ("https://app.example.com/settings/\na", None),
        (" https://app.example.com/settings/", None),
        ("https://app.example.com/settings/ a", None),
        ("https://app.example.com/settings/\u0085", None),
        ("https://app.example.com/settings/\u202e", None),
        ("https://app.example.com/settings/\u2066", None),
        ("https://app.example.com/settings/\ud800", None),
        ("https://app.example.com/settings/" + "a" * 2100, None),
        ("https://app.example.com/settings/" + "\u00e9" * 700, None),  # over 2048 once percent-encoded
        ("", None),
    ],
)
def test_return_urls_are_normalised_then_matched(candidate, expected):
    assert match_return_url(candidate, ALLOWLIST) == expected


def test_allowlist_entries_are_normalised_too():
    assert match_return_url("https://app.example.com/a/b", ["HTTPS://App.Example.com:443/a/./"]) == (
        "https://app.example.com/a/b"
    )
    assert match_return_url("https://app.example.com/other", ["https://app.example.com"]) == (
        "https://app.example.com/other"
    )
    assert match_return_url("https://app.example.com/a/", ["https://[bad/"]) is None


@pytest.mark.parametrize(
    ("url", "problem"),
    [
        ("https://app.example.com/x/../y", None),
        ("http://127.0.0.1:8080/", None),
        ("http://[::1]/", None),
        ("http://app.example.com/", "http is accepted only for loopback hosts (127.0.0.1, ::1, localhost); use https"),
        ("https://[app/", "must be an absolute http(s) URL"),
        ("https://app\uff03.x/", "must be an absolute http(s) URL"),
        ("https://app.example.com/\x00", "must not contain control, format or space characters"),
        ("https://app.example.com/\u202e", "must not contain control, format or space characters"),
    ],
)
def test_web_urls_are_normalised_or_refused_with_a_reason(url, problem):
    if problem is None:
        assert normalise_web_url(url).startswith(("https://", "http://"))
    else:
        with pytest.raises(ValueError, match="^" + problem.replace("(", r"\(").replace(")", r"\)")):
            normalise_web_url(url)


@pytest.mark.parametrize(
    "url", ["https://[broken/", "https://a\uff03b/", "https://a\uff0fb/", "https://app/\x00", "http://[::1/"]
)
def test_check_url_answers_a_reason_for_crafted_urls_instead_of_raising(url):
    assert check_url(url) is not None
