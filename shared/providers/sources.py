"""The catalog's sources (the schema, the built-in catalog, the deployment's file) and the records of sources
validated before, each named by the digest of exactly what was validated (and of the code that validated it)."""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

from shared.errors import CatalogError

BUILTIN = "builtin"  # one YAML file per provider (or family), read in file-name order
RECORDS = Path(__file__).resolve().parent / "validated"  # written by the image build (`broker check-catalog`)
CODE = ("catalog.py", "sources.py", "validation.py")  # a change of how sources are read invalidates every record


@dataclass(frozen=True)
class Sources:
    schema: str
    builtin: tuple[tuple[str, str], ...]  # (file name under builtin/, its text), sorted by name
    override_file: str | None
    override: str | None

    @property
    def digest(self) -> str:
        package = resources.files("shared.providers")
        hasher = hashlib.sha256()
        parts = [package.joinpath(name).read_text(encoding="utf-8") for name in CODE]
        files = [part for name, text in self.builtin for part in (name, text)]
        for part in (*parts, self.schema, *files, self.override_file or "", self.override or ""):
            hasher.update(part.encode())
            hasher.update(b"\0")
        return hasher.hexdigest()

    def recorded(self) -> dict[str, dict[str, Any]] | None:
        """The merged entries, if exactly these sources were validated and recorded before."""
        try:
            entries: dict[str, dict[str, Any]] = json.loads((RECORDS / f"{self.digest}.json").read_text("utf-8"))
        except (OSError, ValueError):
            return None
        return entries

    def record(self, entries: dict[str, dict[str, Any]]) -> Path:
        import tempfile  # only the image build records: a cold start that reads a record does not load it

        RECORDS.mkdir(exist_ok=True)
        path = RECORDS / f"{self.digest}.json"
        with tempfile.NamedTemporaryFile("w", dir=RECORDS, suffix=".tmp", delete=False, encoding="utf-8") as out:
            json.dump(entries, out, sort_keys=True)
        os.replace(out.name, path)  # atomic: a reader never sees half a record
        return path


def read_sources(override_file: str | None) -> Sources:
    package = resources.files("shared.providers")
    override = None
    if override_file is not None:
        try:
            override = Path(override_file).read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise CatalogError(f"{override_file}: cannot read the catalog file: {exc}") from exc
    folder = package.joinpath(BUILTIN)
    files = sorted((entry.name, entry) for entry in folder.iterdir() if entry.name.endswith(".yaml"))
    return Sources(
        schema=package.joinpath("schema.json").read_text(encoding="utf-8"),
        builtin=tuple((name, entry.read_text(encoding="utf-8")) for name, entry in files),
        override_file=override_file,
        override=override,
    )
