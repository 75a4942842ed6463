"""`broker rotate-key [--check]`: re-encrypt every ciphertext under the newest data-key version, or count them."""

from __future__ import annotations

import argparse
from typing import Any

from shared.cli.common import add_json, bounded


def register(commands: Any) -> None:
    rotate = commands.add_parser(
        "rotate-key", help="re-encrypt every ciphertext under the current data key (or --check: count them)",
        description="Re-encrypt access tokens, pending rotated refresh tokens, PKCE verifiers of live flows and "
        "embedded-vault secret versions under the data key version that encrypts (the highest of DATA_KEYS, or "
        "DATA_KEY_CURRENT, or DATA_KEY_SECRET's pinned version, or the DATA_KEY_TRANSIT key's latest version). "
        "Batched, resumable (run it again after an interruption), idempotent, and safe while the service runs.",
    )  # fmt: skip
    rotate.add_argument("--check", action="store_true", help="only count ciphertexts per key version and kind")
    rotate.add_argument("--batch-size", type=bounded(1, 10_000), default=200, help="rows per transaction (200)")
    rotate.add_argument(
        "--pause", type=float, default=0.0, metavar="SECONDS", help="sleep between batches, to spread the load"
    )
    add_json(rotate)
    rotate.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from shared.cli.common import operator_container, print_json, progress, table
    from shared.domain.envelope import CIPHERTEXT_KINDS
    from shared.services import key_rotation

    app = operator_container()
    current = app.keyring.current_version
    if args.check:
        counts = key_rotation.check(app.ciphertexts, app.clock)
        counts.setdefault(current, dict.fromkeys(CIPHERTEXT_KINDS, 0))
        if args.json:
            print_json({str(version): kinds for version, kinds in sorted(counts.items())})
            return 0
        rows = [
            [str(v) + (" (encrypts)" if v == current else ""), *(str(kinds[k]) for k in CIPHERTEXT_KINDS)]
            for v, kinds in sorted(counts.items())
        ]
        table("ciphertexts per data-key version", ["key version", *CIPHERTEXT_KINDS], rows)
        older = sum(sum(kinds.values()) for version, kinds in counts.items() if version != current)
        print("nothing uses another key version: older keys can be retired" if not older
              else f"{older} ciphertext(s) use another key version: run `broker rotate-key`")  # fmt: skip
        return 0
    total = key_rotation.pending_count(app.ciphertexts, app.keyring, app.clock)
    with progress(f"re-encrypting under key version {current}", total) as advance:
        report = key_rotation.rotate(
            app.ciphertexts, app.keyring, app.clock, CIPHERTEXT_KINDS, batch_size=args.batch_size, pause=args.pause,
            advance=advance,
        )  # fmt: skip
    if args.json:
        print_json(report.as_dict())
    else:
        print(f"re-encrypted under key version {current}: "
              + ", ".join(f"{kind} {report.rotated[kind]}" for kind in CIPHERTEXT_KINDS))  # fmt: skip
        if any(report.changed.values()):
            print("changed meanwhile and left for the next run (a refresh or a worker's lease): "
                  + ", ".join(f"{k} {n}" for k, n in report.changed.items() if n))  # fmt: skip
        if any(report.failed.values()):
            print("could not be opened (their key version is not available, or they are corrupted; see the log): "
                  + ", ".join(f"{k} {n}" for k, n in report.failed.items() if n))  # fmt: skip
    return 1 if any(report.failed.values()) else 0
