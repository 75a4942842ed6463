"""A refresh worker that dies (os._exit, no cleanup, lease still held) right after a named step.

    python -m tests.support.refresh_worker <integration_id> <step>

Run with the broker's environment; used to prove a crash between any two steps of the write order is recovered.
"""

from __future__ import annotations

import dataclasses
import os
import sys
from uuid import UUID

from shared.bootstrap import Container
from shared.config import load_settings

KILLED = 3


def main() -> None:
    integration_id, crash_at = UUID(sys.argv[1]), sys.argv[2]

    def step(name: str) -> None:
        if name == crash_at:
            os._exit(KILLED)

    app = Container(load_settings())
    refresher = dataclasses.replace(app.refresher, step=step)
    result = refresher.refresh(integration_id, force=True)
    print(result.outcome)


if __name__ == "__main__":
    main()
