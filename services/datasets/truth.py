"""A demo's planted truth (``truth.jsonl``, never imported): one JSON object per line.

Lines without a ``kind`` are queries (their planted positives, false negatives, wrong positives,
bad queries); other lines say their kind (``"kind": "duplicate"``: an item planted as a copy of
another). Readers take the lines of the kind they know and leave the others alone.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

QUERY = "query"


def truth_rows(path: Path | str, kind: str = QUERY) -> list[dict[str, Any]]:
    """The lines of ``kind`` of a truth file, in file order (``query``: the lines without a kind)."""
    rows = [json.loads(line) for line in Path(path).read_text(encoding="utf-8").splitlines() if line.strip()]
    return [row for row in rows if row.get("kind", QUERY) == kind]
