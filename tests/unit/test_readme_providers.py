"""The README's Providers table lists exactly the built-in catalog (regenerate it with
`python -m tests.unit.test_readme_providers` and paste it between the markers)."""

from __future__ import annotations

from pathlib import Path

from shared.providers.catalog import Provider, load_catalog

README = Path(__file__).resolve().parents[2] / "README.md"
BEGIN, END = "<!-- providers-table:begin -->", "<!-- providers-table:end -->"


def _lifetime(seconds: int | None) -> str:
    if seconds is None:
        return ""
    return f"{seconds // 86400} d" if seconds >= 86400 else f"{seconds // 3600} h"


def _row(p: Provider) -> str:
    mode = p.auth_mode if p.issuer_template is None else "oauth2 (per tenant)"
    refresh = ", ".join(
        part for part in (
            f"idle {_lifetime(p.refresh_token_idle_lifetime)}" if p.refresh_token_idle_lifetime else "",
            f"ends {_lifetime(p.refresh_token_absolute_lifetime)}" if p.refresh_token_absolute_lifetime else "",
            "rotates" if p.auth_mode == "oauth2" and p.refresh_token_rotates else "",
        ) if part
    )  # fmt: skip
    aliases = ", ".join(f"`{a}`" for a in p.aliases)
    docs = f"[docs]({p.docs})" if p.docs else ""
    return f"| `{p.id}` | {p.display_name} | {mode} | {aliases} | {refresh} | {docs} |"


def providers_table() -> str:
    lines = ["| id | provider | auth | aliases | refresh token | docs |", "|---|---|---|---|---|---|"]
    return "\n".join([*lines, *(_row(p) for p in load_catalog())])


def test_the_readme_lists_every_builtin_provider():
    text = README.read_text(encoding="utf-8")
    assert BEGIN in text and END in text, f"the README's Providers section needs {BEGIN} … {END}"  # noqa: PT018
    documented = text.split(BEGIN, 1)[1].split(END, 1)[0].strip()
    assert documented == providers_table(), "regenerate: python -m tests.unit.test_readme_providers"


if __name__ == "__main__":
    print(providers_table())
