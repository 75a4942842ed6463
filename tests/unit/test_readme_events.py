"""The README's webhook verification snippet works: it accepts what the broker signs (with either of two secrets),
and refuses a changed body, a stranger's secret and an old timestamp."""

from __future__ import annotations

import base64
import re
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from shared.domain import webhooks

README = Path(__file__).resolve().parents[2] / "README.md"
SECRET = "whsec_" + base64.b64encode(b"a" * 32).decode()
ROTATED = "whsec_" + base64.b64encode(b"b" * 32).decode()


def snippet() -> Callable[..., bool]:
    text = README.read_text(encoding="utf-8")
    (code,) = re.findall(r"```python\n(import base64, hashlib, hmac, time\n.*?)```", text, flags=re.DOTALL)
    assert len(code.splitlines()) <= 20, "the documented helper stays short"
    namespace: dict[str, Any] = {}
    exec(compile(code, "README.md", "exec"), namespace)  # noqa: S102 - the README's own example, run as documented
    return namespace["verify_webhook"]  # type: ignore[no-any-return]


def test_the_readme_snippet_verifies_what_the_broker_signs():
    verify = snippet()
    body = b'{"type":"integration.connected","timestamp":"2026-06-01T12:00:00.000Z","data":{}}'
    keys = [webhooks.parse_secret(SECRET), webhooks.parse_secret(ROTATED)]
    headers = webhooks.headers(keys, "01970a2c-5e1b-7a3e-9c51-2b6f0d3e8a10", int(time.time()), body)
    capitalised = {name.title(): value for name, value in headers.items()}
    assert verify(SECRET, headers, body)
    assert verify(ROTATED, capitalised, body), "either secret, any header case"
    assert not verify(SECRET, headers, body + b" ")
    assert not verify("whsec_" + base64.b64encode(b"c" * 32).decode(), headers, body)
    old = webhooks.headers(keys, "id", int(time.time()) - 301, body)
    assert not verify(SECRET, old, body)
