"""The README's configuration table lists exactly the settings the code reads."""

from __future__ import annotations

import re
from pathlib import Path

from shared.config import Settings

README = Path(__file__).resolve().parents[2] / "README.md"


def test_every_setting_is_documented_and_every_documented_variable_exists():
    text = README.read_text(encoding="utf-8")
    documented = set(re.findall(r"^\| `([A-Z_<>]+)` \|", text, flags=re.MULTILINE))
    expected = {name.upper() for name in Settings.model_fields} | {"<PROVIDER>_CLIENT_ID", "<PROVIDER>_CLIENT_SECRET"}
    assert documented == expected
