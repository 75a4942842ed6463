"""Which characters untrusted text may hold, by field kind. One place, so labels, identities, URLs and filters
refuse the same things for the same reasons.

- Display text (labels, field names, config keys, filters) refuses control characters (C0 U+0000-U+001F, DEL,
  C1 U+0080-U+009F; NUL also breaks PostgreSQL text), bidi controls (U+061C, U+200E, U+200F, U+202A-U+202E,
  U+2066-U+2069: they reorder what a person reads) and the line/paragraph separators U+2028, U+2029.
- URLs and keys refuse everything invisible: those, every format character (zero-width, BOM) and all spaces.
- Identifiers (account subjects) refuse controls, format characters and separators, and edge whitespace.
"""

from __future__ import annotations

import re
import unicodedata

# Written as escapes, so the same text is a Python, a Rust (pydantic) and an ECMA-262 (OpenAPI) character class.
REFUSED_IN_DISPLAY = r"\x00-\x1f\x7f-\x9f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069\u2028\u2029"
DISPLAY_TEXT_PATTERN = rf"^[^{REFUSED_IN_DISPLAY}]+$"  # pydantic `pattern=` (Rust regex: `$` is the very end)
_REFUSED_IN_DISPLAY = re.compile(f"[{REFUSED_IN_DISPLAY}]")


def is_display_text(value: str) -> bool:
    """No control, bidi or separator character (the label rule); the empty string is not text."""
    return bool(value) and _REFUSED_IN_DISPLAY.search(value) is None


def has_invisible(value: str) -> bool:
    """Any character a person cannot see or that changes how the rest reads: controls, format characters
    (bidi, zero-width, BOM), separators and spaces of every kind, and lone surrogates."""
    return any(unicodedata.category(ch) in _INVISIBLE_CATEGORIES or ch.isspace() for ch in value)


_INVISIBLE_CATEGORIES = frozenset({"Cc", "Cf", "Cs", "Zs", "Zl", "Zp"})


def is_identifier(value: str, max_length: int) -> bool:
    """An identity claim used as a key (an account subject): 1..max_length characters, no control, format
    (bidi, zero-width) or separator character, no surrounding whitespace. Refused rather than cleaned: cleaning
    would make `alice\n` the same account as `alice`."""
    if not 1 <= len(value) <= max_length or value != value.strip():
        return False
    return not any(unicodedata.category(ch) in _NOT_IN_IDENTIFIERS for ch in value)


_NOT_IN_IDENTIFIERS = frozenset({"Cc", "Cf", "Cs", "Zl", "Zp"})
