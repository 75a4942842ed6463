"""The JS SDK's own tests (sdk/js/test, `node --test`: fakes of the window and fetch), run in pytest so `make test`
includes them; the real browser runs are tests/browser."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

SDK = Path(__file__).resolve().parents[2] / "sdk" / "js"


def test_the_js_sdk_tests_pass():
    node = shutil.which("node")
    if node is None:
        pytest.fail("node (Node.js >= 20) not found: `make node-deps` installs it")
    done = subprocess.run([node, "--test", "test/"], cwd=SDK, capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-2000:]
    assert "# fail 0" in done.stdout
    assert "# pass 5" in done.stdout
