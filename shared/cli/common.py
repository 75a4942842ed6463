"""What every command shares: the operator's container and identity, durations, JSON and table output.

Nothing heavy is imported here at module level: `broker function` (the image's command) parses its arguments
through this package, so the functions' cold starts never pay for rich, SQLAlchemy sessions or the container.
"""

from __future__ import annotations

import argparse
import getpass
import json
import re
import sys
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from shared.bootstrap import Container

DURATION_RE = re.compile(r"(?:(\d{1,6})([smhdw]))+")  # fullmatch: 90s, 15m, 1h30m, 7d, 2w
UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}
ACTOR_RE = re.compile(r"[\x21-\x7e]{1,200}")  # fullmatch: visible ASCII, no spaces


_built: list[Container] = []


def operator_container() -> Container:
    """A container read from this process's environment (the same settings the service reads), built per command
    so that a test can run commands in process with different environments; `release` disposes of it."""
    from shared.bootstrap import Container
    from shared.config import load_settings

    built = Container(load_settings())
    _built.append(built)
    return built


def release() -> None:
    """Close the database pools the command's containers opened (a long-lived caller, such as a test, runs many)."""
    while _built:
        built = _built.pop()
        if "engine" in built.__dict__:
            built.engine.dispose()


def duration(text: str) -> timedelta:
    """`1h`, `30m`, `1h30m`, `7d`: argparse's type for --since and --expiring-within."""
    if not DURATION_RE.fullmatch(text):
        raise argparse.ArgumentTypeError(f"expected a duration such as 90s, 15m, 1h, 1h30m, 7d or 2w, got {text!r}")
    seconds = sum(int(n) * UNITS[unit] for n, unit in re.findall(r"(\d+)([smhdw])", text))
    return timedelta(seconds=seconds)


def actor_name(text: str) -> str:
    if not ACTOR_RE.fullmatch(text):
        raise argparse.ArgumentTypeError("expected 1-200 visible ASCII characters without spaces")
    return text


def add_actor(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--actor", type=actor_name, default=None,
        help="who is acting, for the audit trail (recorded as operator:<actor>; default: the OS user)",
    )  # fmt: skip


def actor(args: argparse.Namespace) -> str:
    name = args.actor
    if name is None:
        try:
            name = getpass.getuser()
        except (KeyError, OSError):  # no user name in this environment (a container without /etc/passwd entry)
            name = "unknown"
    return f"operator:{name}"


def add_json(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--json", action="store_true", help="print JSON (for scripts) instead of a table")


def print_json(value: Any) -> None:
    print(json.dumps(value, indent=2, default=str, sort_keys=False))


def when(moment: datetime | None) -> str | None:
    return moment.isoformat() if moment is not None else None


def relative(moment: datetime | None, now: datetime) -> str:
    """`in 12m`, `3h ago`, `—`: for tables (JSON gives the timestamp)."""
    if moment is None:
        return "—"
    seconds = int((moment - now).total_seconds())
    span = abs(seconds)
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if span >= size:
            text = f"{span // size}{unit}"
            break
    else:
        text = f"{span}s"
    return f"in {text}" if seconds >= 0 else f"{text} ago"


def table(title: str | None, columns: Sequence[str], rows: Sequence[Sequence[str]]) -> None:
    """A table on stdout with rich (imported here only: never on a function's cold start)."""
    from rich.console import Console
    from rich.table import Table

    view = Table(title=title, show_lines=False, header_style="bold")
    for column in columns:
        view.add_column(column, overflow="fold")
    for row in rows:
        view.add_row(*row)
    Console(width=None if sys.stdout.isatty() else 200).print(view)


def fail(message: str) -> int:
    print(f"broker: {message}", file=sys.stderr)
    return 1


@contextmanager
def progress(description: str, total: int | None) -> Iterator[Callable[[int], None]]:
    """A progress bar on stderr (stdout stays for results); yields `advance(n)`."""
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
    with Progress(*columns, console=Console(stderr=True)) as bar:
        task = bar.add_task(description, total=total)
        yield lambda n: bar.advance(task, n)


def bounded(low: int, high: int) -> Callable[[str], int]:
    """argparse's type for an integer from `low` to `high`."""

    def parse(text: str) -> int:
        if not text.isascii() or not text.isdigit() or not low <= int(text) <= high:
            raise argparse.ArgumentTypeError(f"expected an integer from {low} to {high}, got {text[:32]!r}")
        return int(text)

    return parse
