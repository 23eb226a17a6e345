"""The export folder as it is being written: files under one root, each remembered for the manifest.

Everything written is a function of its input: JSON with sorted keys, ``\\n`` line endings.
"""

from __future__ import annotations

import csv
import io
import json
import re
import shutil
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import pandas as pd


def to_json(obj: Any) -> str:
    return json.dumps(obj, ensure_ascii=False, sort_keys=True)


def csv_text(header: Sequence[str], rows: Iterable[Sequence[Any]]) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(header)
    writer.writerows(rows)
    return buffer.getvalue()


class Folder:
    """Writes files under one root and remembers them."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.files: set[str] = set()

    def path(self, rel: str) -> Path:
        path = self.root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        self.files.add(rel)
        return path

    def text(self, rel: str, content: str) -> None:
        self.path(rel).write_bytes(content.encode("utf-8"))

    def jsonl(self, rel: str, rows: Iterable[dict[str, Any]]) -> None:
        self.text(rel, "".join(to_json(r) + "\n" for r in rows))

    def csv(self, rel: str, header: Sequence[str], rows: Iterable[Sequence[Any]]) -> None:
        self.text(rel, csv_text(header, rows))

    def parquet(self, rel: str, frame: pd.DataFrame) -> None:
        frame.to_parquet(self.path(rel), engine="pyarrow", index=False)

    def copy(self, src: Path, rel: str) -> None:
        if rel not in self.files:
            shutil.copyfile(src, self.path(rel))


def slug(name: str) -> str:
    return re.sub(r"[^a-z0-9]+", "_", name.lower()).strip("_") or "dataset"
