"""The CLI's parser sits on every function's cold start (`broker function` is the image's command): building it
imports no table library and no database or cloud client."""

from __future__ import annotations

import subprocess
import sys

PROBE = """
import sys
from shared.cli import build_parser
build_parser().parse_args(["function", "--target", "token_fetch"])
heavy = sorted(m for m in ("rich", "sqlalchemy.orm", "google.cloud.secretmanager_v1", "shared.bootstrap", "flask")
               if m in sys.modules)
print(",".join(heavy))
"""


def test_parsing_a_command_imports_nothing_heavy():
    done = subprocess.run([sys.executable, "-c", PROBE], capture_output=True, text=True, timeout=60, check=True)
    assert done.stdout.strip() == ""


def test_python_dash_m_shared_cli_is_broker():
    done = subprocess.run(
        [sys.executable, "-m", "shared.cli", "--help"], capture_output=True, text=True, timeout=60, check=False
    )
    assert done.returncode == 0
    for command in ("migrate", "serve", "function", "scheduler", "integrations", "audit", "providers",
                    "sweep-secrets"):  # fmt: skip
        assert command in done.stdout
